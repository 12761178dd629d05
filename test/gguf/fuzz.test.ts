// Mutation fuzzing of the GGUF reader: every mutant must either parse or throw
// a one-line GgufError — never another error type, never a hang, never a huge
// allocation. Deterministic (seeded) so a failure reproduces.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufError } from '../../src/errors.ts';
import { openGgufBytes } from '../../src/gguf/reader.ts';
import { GgufValueType } from '../../src/gguf/types.ts';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { GgmlType } from '../../src/quant/table.ts';
import { hasShared, repoRoot, sharedModel } from '../shared.ts';

/** splitmix32-style PRNG: deterministic, fast. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  };
}

/** A small but varied file: every metadata shape the reader handles, several tensor types. */
function smallFile(): Uint8Array {
  return writeGgufToBytes({
    kv: [
      kv.str('general.architecture', 'llama'), kv.u32('llama.block_count', 1), kv.f32('eps', 1e-5),
      kv.u64('big', 12345n), kv.bool('b', true), kv.strArray('tokenizer.ggml.tokens', ['<unk>', '<s>', '▁a', 'bc']),
      kv.f32Array('tokenizer.ggml.scores', [0, -1, -2, -3]), kv.i32Array('tokenizer.ggml.token_type', [2, 3, 1, 1]),
      kv.array('nested', GgufValueType.ARRAY, [kv.arrayValue(GgufValueType.STRING, ['x']), kv.arrayValue(GgufValueType.UINT16, new Uint16Array([1, 2]))]),
    ],
    tensors: [
      { name: 'token_embd.weight', dims: [32, 4], type: GgmlType.Q8_0, data: new Uint8Array(4 * 34) },
      { name: 'norm', dims: [32], type: GgmlType.F32, data: new Uint8Array(128) },
      { name: 'k', dims: [256, 1], type: GgmlType.Q4_K, data: new Uint8Array(144) },
    ],
  });
}

/** Offsets of every u64 field (counts, string/array lengths, dims, tensor offsets) in a valid file. */
function u64Fields(b: Uint8Array): { fields: number[]; headerEnd: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fields: number[] = [8, 16];
  let p = 24;
  const skip = (n: number) => { p += n; };
  const u64 = () => { fields.push(p); const v = Number(dv.getBigUint64(p, true)); p += 8; return v; };
  const u32 = () => { const v = dv.getUint32(p, true); p += 4; return v; };
  const size: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (t: number): void => {
    if (t === 8) { skip(u64()); return; }
    if (t === 9) { const it = u32(); const n = u64(); for (let i = 0; i < n; i++) value(it); return; }
    skip(size[t]!);
  };
  const nT = Number(dv.getBigUint64(8, true));
  const nKv = Number(dv.getBigUint64(16, true));
  for (let i = 0; i < nKv; i++) { skip(u64()); value(u32()); }
  for (let i = 0; i < nT; i++) { skip(u64()); const nd = u32(); for (let d = 0; d < nd; d++) u64(); u32(); u64(); }
  return { fields, headerEnd: p };
}

/** Parses a mutant; returns 'ok' or 'error', and fails the test on anything but GgufError. */
async function tryParse(b: Uint8Array, what: string): Promise<'ok' | 'error'> {
  try {
    const g = await openGgufBytes(b, 'mutant.gguf');
    for (const t of g.tensors) await g.readTensor(t, 0, Math.min(t.nBytes, 64));
    await g.close();
    return 'ok';
  } catch (e) {
    if (!(e instanceof GgufError)) throw new Error(`${what}: escaped as ${(e as Error)?.name}: ${(e as Error)?.message}`);
    if (e.message.includes('\n')) throw new Error(`${what}: multi-line message: ${e.message}`);
    if (!e.message.includes('GGUF')) throw new Error(`${what}: message does not say GGUF: ${e.message}`);
    return 'error';
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'qllm-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('GGUF reader mutation fuzz', () => {
  const base = smallFile();
  const { fields, headerEnd } = u64Fields(base);

  it('the walker agrees with the reader (sanity of the mutation map)', async () => {
    const g = await openGgufBytes(base);
    expect(Math.ceil(headerEnd / 32) * 32).toBe(g.dataOffset);
    expect(fields.length).toBeGreaterThan(20);
  });

  it('truncation at every byte of the header, and random points in the data', async () => {
    // Only the trailing padding after the last tensor may be cut without an error.
    const g = await openGgufBytes(base);
    const dataEnd = Math.max(...g.tensors.map((t) => t.offset + t.nBytes));
    const r = prng(1);
    const cuts = [...Array.from({ length: headerEnd + 40 }, (_, n) => n), ...Array.from({ length: 100 }, () => Math.floor(r() * base.length))];
    for (const n of cuts) expect(await tryParse(base.subarray(0, n), `truncate ${n}`)).toBe(n >= dataEnd ? 'ok' : 'error');
    expect(await tryParse(base, 'intact')).toBe('ok');
  });

  it('random byte flips in the header region', async () => {
    const r = prng(2);
    const stats = { ok: 0, error: 0 };
    for (let i = 0; i < 600; i++) {
      const m = base.slice();
      const flips = 1 + Math.floor(r() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(r() * headerEnd);
        m[at] = r() < 0.5 ? m[at]! ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
      }
      stats[await tryParse(m, `flip #${i}`)]++;
    }
    expect(stats.error).toBeGreaterThan(100);
    expect(stats.ok).toBeGreaterThan(10); // flips inside strings/floats still parse
  });

  it('u64 length/count/dim fields set huge or off by a little', async () => {
    const r = prng(3);
    const values = [2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 40n, 2n ** 32n, 2n ** 32n - 1n, 0n, 1n];
    let n = 0;
    for (const at of fields) {
      for (const v of [...values, BigInt(Math.floor(r() * 2 ** 20))]) {
        const m = base.slice();
        new DataView(m.buffer).setBigUint64(at, v, true);
        await tryParse(m, `u64 at ${at} = ${v}`);
        n++;
      }
    }
    expect(n).toBeGreaterThan(200);
  });

  it.skipIf(!hasShared)('random mutants of a real model header', async () => {
    const real = readFileSync(sharedModel('stories260K-q4_k_m.gguf'));
    const { fields: rf, headerEnd: rEnd } = u64Fields(real);
    const r = prng(4);
    for (let i = 0; i < 150; i++) {
      const m = real.slice(0, i % 3 === 0 ? real.length : Math.floor(r() * real.length));
      if (i % 2) new DataView(m.buffer, m.byteOffset).setBigUint64(rf[Math.floor(r() * rf.length)]!, BigInt(Math.floor(r() * 2 ** 52)) * 4096n, true);
      else for (let f = 0; f < 3; f++) m[Math.floor(r() * Math.min(rEnd, m.length))] = Math.floor(r() * 256);
      await tryParse(m, `real mutant #${i}`);
    }
  });

  // The CLI must turn any of these into exit code 1 and exactly one stderr line.
  const cli = join(repoRoot, 'bin', 'qllm.mjs');
  it.skipIf(!existsSync(cli))('qllm info on mutants: exit 1, one line on stderr naming GGUF', () => {
    const dv = (m: Uint8Array) => new DataView(m.buffer);
    const mutants: [string, Uint8Array][] = [
      ['truncated', base.slice(0, 100)],
      ['magic', (() => { const m = base.slice(); m[0] = 0x50; return m; })()],
      ['huge string', (() => { const m = base.slice(); dv(m).setBigUint64(24, 2n ** 62n, true); return m; })()],
      ['huge count', (() => { const m = base.slice(); dv(m).setBigUint64(16, 2n ** 50n, true); return m; })()],
      ['past end', base.slice(0, base.length - 20)],
      ['version', (() => { const m = base.slice(); m[4] = 9; return m; })()],
    ];
    for (const [name, m] of mutants) {
      const p = join(tmp, `${name.replace(/ /g, '_')}.gguf`);
      writeFileSync(p, m);
      const res = spawnSync(process.execPath, [cli, 'info', p], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
      const lines = res.stderr.split('\n').filter((l) => l.trim() !== '' && !/nodedir/.test(l));
      expect(res.status, `${name}: ${res.stderr}`).toBe(1);
      expect(lines, name).toHaveLength(1);
      expect(lines[0], name).toContain('GGUF');
    }
  }, 120_000);
});
