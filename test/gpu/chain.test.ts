// composePhase: how a decode chain (src/gpu/chain.ts) turns an ordinary
// kernel's WGSL into one phase of its shader. The chains themselves are
// checked against the step-by-step decode in test/models/llama.test.ts.
import { describe, expect, it } from 'vitest';
import { composePhase } from '../../src/gpu/chain.ts';

const KERNEL = [
  'enable subgroups;',
  'struct Info { rows: u32, cols: u32 }',
  '@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;',
  '@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;',
  '@group(0) @binding(2) var<storage, read_write> y: array<f32>;',
  '@group(0) @binding(3) var<uniform> info: Info;',
  'override WG: u32 = 8u;',
  'var<private> ssq: f32 = 0.0;',
  'fn put(o: u32, v: f32) { y[o + y_base(o)] += v; }',
  'fn y_base(o: u32) -> u32 { return info.rows; }',
  'fn matvec(g: u32) { let q = w[g]; ssq += x[g].w; put(g * WG, f32(q.w) + ssq); }',
].join('\n');

describe('composePhase', () => {
  const out = composePhase(KERNEL, '_k3', { w: 20, info: 21, x: 'acts4', y: { f32of: 'acts4' } });

  it('drops directives and the shared resources, keeps its own at new bindings', () => {
    expect(out).not.toContain('enable subgroups');
    expect(out).not.toMatch(/var<storage, read> x/);
    expect(out).not.toMatch(/var<storage, read_write> y/);
    expect(out).toContain('@group(0) @binding(20) var<storage, read> w_k3: array<vec4<u32>>;');
    expect(out).toContain('@group(0) @binding(21) var<uniform> info_k3: Info_k3;');
  });

  it('suffixes module-scope names wherever they are used as names, not after a dot', () => {
    expect(out).toContain('struct Info_k3 { rows: u32, cols: u32 }');
    expect(out).toContain('override WG_k3: u32 = 8u;');
    expect(out).toContain('var<private> ssq_k3: f32 = 0.0;');
    expect(out).toContain('fn y_base_k3(o: u32) -> u32 { return info_k3.rows; }');
    expect(out).toContain('let q = w_k3[g]; ssq_k3 += acts4[g].w;');
  });

  it('reads and writes an f32 resource as components of the shared vec4 view, nested brackets included', () => {
    expect(out).toContain('fn put_k3(o: u32, v: f32) { acts4[(o + y_base_k3(o)) >> 2u][(o + y_base_k3(o)) & 3u] += v; }');
  });

  it('names an unmapped resource', () => {
    expect(() => composePhase(KERNEL, '_k0', { w: 20, info: 21, x: 'acts4' })).toThrow(/unmapped resource y/);
  });
});
