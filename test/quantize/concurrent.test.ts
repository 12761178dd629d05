// Two quantize runs to the same output (issue 16): each writes a temp file of its
// own and renames it whole, so the output is always one complete run's file,
// no temp is left, and neither run fails with an internal error.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quantizeFile } from '../../src/quantize/quantize-file.ts';
import { qllm } from '../cli/helpers.ts';
import { hasShared, sharedModel } from '../shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-quantize-race-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hasShared)('concurrent quantize runs to one output', () => {
  const src = sharedModel('stories260K.gguf');
  // Two different types, so that "equal to one of them" tells the runs apart.
  const refs: Record<string, Buffer> = {};
  const ref = async (type: string) => {
    if (!refs[type]) {
      const p = join(dir, `ref-${type}.gguf`);
      await quantizeFile(src, p, type);
      refs[type] = readFileSync(p);
    }
    return refs[type];
  };
  const leftovers = (name: string) => readdirSync(dir).filter((f) => f.startsWith(`${name}.`));

  it('in one process: both finish, the output is one of the two files whole, no temp is left', async () => {
    const [a, b] = [await ref('Q8_0'), await ref('Q4_0')];
    expect(a.equals(b)).toBe(false);
    for (let i = 0; i < 3; i++) {
      const out = join(dir, `same-${i}.gguf`);
      const [ra, rb] = await Promise.all([quantizeFile(src, out, 'Q8_0'), quantizeFile(src, out, 'Q4_0')]);
      expect(ra.fileBytesOut).toBe(a.length);
      expect(rb.fileBytesOut).toBe(b.length);
      const got = readFileSync(out);
      expect(got.equals(a) || got.equals(b)).toBe(true);
      expect(leftovers(`same-${i}.gguf`)).toEqual([]);
    }
  });

  it('two qllm quantize processes: both exit 0 without a stack trace, the output is one of the two files whole', async () => {
    const [a, b] = [await ref('Q8_0'), await ref('Q4_0')];
    const out = join(dir, 'cli.gguf');
    const [ra, rb] = await Promise.all([qllm(['quantize', src, out, 'Q8_0', '--threads', '1']), qllm(['quantize', src, out, 'Q4_0', '--threads', '1'])]);
    for (const r of [ra, rb]) {
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(r.code).toBe(0);
    }
    const got = readFileSync(out);
    expect(got.equals(a) || got.equals(b)).toBe(true);
    expect(leftovers('cli.gguf')).toEqual([]);
  });
});
