// quantizeFile end to end on the real stories260K model and on a synthetic
// 256-column model (K-quant blocks), plus failure atomicity and bad inputs.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { openGguf } from '../../src/gguf/reader.ts';
import { kv, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { dequantize } from '../../src/quant/dequant.ts';
import { GgmlType, bytesFor } from '../../src/quant/table.ts';
import { TARGETS } from '../../src/quantize/mix.ts';
import { quantizeFile } from '../../src/quantize/quantize-file.ts';
import { hasShared, sharedModel } from '../shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-quantize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Minimum whole-model SNR (dB) per target on stories260K (measured values are ~3 dB higher;
 * the K targets mostly fall back to Q5_0/Q5_1/IQ4_NL/Q8_0 here: 64-wide rows). */
const MIN_SNR: Record<string, number> = {
  F16: 70, BF16: 52, Q8_0: 43, Q4_0: 21, Q4_1: 21, Q5_0: 27, Q5_1: 28, Q2_K: 22, Q3_K_M: 22, Q3_K: 22,
  Q4_K_S: 27, Q4_K_M: 27, Q4_K: 27, Q5_K_S: 28, Q5_K_M: 28, Q5_K: 28, Q6_K: 43, IQ4_NL: 22, IQ4_XS: 22,
  // stories260K has no experts: MXFP4_MOE quantizes everything else as Q8_0.
  MXFP4_MOE: 43,
};

async function floats(path: string, name: string): Promise<Float32Array> {
  const f = await openGguf(path);
  try {
    const t = f.tensor(name)!;
    return dequantize(t.type.id, await f.readTensor(t), t.nElements);
  } finally {
    await f.close();
  }
}

describe.skipIf(!hasShared)('quantizeFile on stories260K', () => {
  const src = sharedModel('stories260K.gguf');

  for (const target of TARGETS) {
    it(`${target.name}: reads back with the chosen types, sizes, metadata and close weights`, async () => {
      const out = join(dir, `s-${target.name}.gguf`);
      const notes: string[] = [];
      const r = await quantizeFile(src, out, target.name, { report: true, onNote: (n) => notes.push(n) });
      const a = await openGguf(src);
      const b = await openGguf(out);
      try {
        expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
        expect(b.kv.get('general.file_type')?.value).toBe(target.ftype);
        expect(b.kv.get('general.quantization_version')?.value).toBe(2);
        for (const [k, e] of a.kv) if (k !== 'general.file_type') expect(b.kv.get(k)?.value, k).toEqual(e.value);
        for (const [i, t] of b.tensors.entries()) {
          expect(t.type.name).toBe(r.tensors[i].to);
          expect(t.nBytes).toBe(bytesFor(t.type, t.nElements));
          if (t.dims.length === 1) expect(t.type.id).toBe(GgmlType.F32);
        }
        // ffn_down rows are 172 long: never a whole block of 32, always noted.
        expect(notes.filter((n) => n.includes('ffn_down')).length).toBe(target.base === GgmlType.F16 || target.base === GgmlType.BF16 ? 0 : 5);
      } finally {
        await a.close();
        await b.close();
      }
      expect(r.snrDb).toBeGreaterThan(MIN_SNR[target.name]);
      const x = await floats(src, 'blk.1.attn_q.weight');
      const y = await floats(out, 'blk.1.attn_q.weight');
      let e = 0;
      let s = 0;
      for (let i = 0; i < x.length; i++) {
        e += (x[i] - y[i]) ** 2;
        s += x[i] ** 2;
      }
      expect(10 * Math.log10(s / e)).toBeGreaterThan(MIN_SNR[target.name] - 5);
    });
  }

  // llama-quantize made these files from the same F32 model: our output must match them tensor for tensor.
  for (const [name, file] of [['Q4_0', 'q4_0'], ['Q4_1', 'q4_1'], ['Q8_0', 'q8_0'], ['Q4_K_M', 'q4_k_m']]) {
    it(`${name} is byte-identical to llama-quantize's stories260K-${file}.gguf tensors`, async () => {
      const out = join(dir, `cmp-${name}.gguf`);
      await quantizeFile(src, out, name);
      const a = await openGguf(out);
      const b = await openGguf(sharedModel(`stories260K-${file}.gguf`));
      try {
        expect(a.tensors.length).toBe(b.tensors.length);
        for (const t of b.tensors) {
          const u = a.tensor(t.name)!;
          expect(u.type.name, t.name).toBe(t.type.name);
          expect(Buffer.compare(Buffer.from(await a.readTensor(u)), Buffer.from(await b.readTensor(t))), t.name).toBe(0);
        }
        expect(a.kv.get('general.file_type')?.value).toBe(b.kv.get('general.file_type')?.value);
      } finally {
        await a.close();
        await b.close();
      }
    });
  }

  it('a failure mid-way leaves neither the output nor its .tmp file', async () => {
    const out = join(dir, 'fail.gguf');
    await expect(
      quantizeFile(src, out, 'Q4_K_M', {
        beforeTensor: (i) => {
          if (i === 20) throw new Error('injected failure');
        },
      }),
    ).rejects.toThrow('injected failure');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('fail.gguf'))).toEqual([]);
  });

  it('refuses an already-quantized input, a missing file and in == out', async () => {
    await expect(quantizeFile(sharedModel('stories260K-q4_0.gguf'), join(dir, 'x.gguf'), 'Q8_0')).rejects.toThrow(/already quantized \(Q[0-9]_0 in tensor \S+\); quantize from an F16\/F32 GGUF/);
    await expect(quantizeFile(join(dir, 'nope.gguf'), join(dir, 'x.gguf'), 'Q8_0')).rejects.toThrow(UsageError);
    await expect(quantizeFile(src, src, 'Q8_0')).rejects.toThrow(/is the input file/);
    await expect(quantizeFile(src, join(dir, 'x.gguf'), 'Q9')).rejects.toThrow(/unknown quantization type 'Q9'.*Q4_K_M/);
    expect(existsSync(join(dir, 'x.gguf'))).toBe(false);
  });
});

describe('quantizeFile with K-quant blocks (synthetic 8-layer model, 256 columns)', () => {
  it('Q4_K_M gives Q6_K output, promoted attn_v/ffn_down, Q4_K elsewhere, small chunks stream correctly', async () => {
    let seed = 3;
    const rnd = (n: number) =>
      Float32Array.from({ length: n }, () => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return (seed / 2 ** 32 - 0.5) * 0.2;
      });
    const tensors: { name: string; dims: number[]; type: GgmlType; data: Uint8Array }[] = [];
    const add = (name: string, dims: number[]) => {
      const f = rnd(dims.reduce((a, b) => a * b, 1));
      tensors.push({ name, dims, type: GgmlType.F32, data: new Uint8Array(f.buffer) });
    };
    add('token_embd.weight', [256, 40]);
    for (let i = 0; i < 8; i++) {
      add(`blk.${i}.attn_norm.weight`, [256]);
      add(`blk.${i}.attn_v.weight`, [256, 16]);
      add(`blk.${i}.ffn_down.weight`, [256, 8]);
    }
    add('output.weight', [256, 40]);
    const inPath = join(dir, 'synthetic.gguf');
    writeFileSync(inPath, writeGgufToBytes({ kv: [kv.str('general.architecture', 'llama'), kv.u32('llama.attention.head_count', 8), kv.u32('llama.attention.head_count_kv', 2)], tensors }));
    const out = join(dir, 'synthetic-q4km.gguf');
    const r = await quantizeFile(inPath, out, 'Q4_K_M', { report: true, chunkElems: 1000 });
    const to = new Map(r.tensors.map((t) => [t.name, t.to]));
    expect(to.get('output.weight')).toBe('Q6_K');
    expect(to.get('token_embd.weight')).toBe('Q4_K');
    expect(to.get('blk.0.attn_norm.weight')).toBe('F32');
    // use_more_bits(i, 8): i < 1, i >= 7, (i - 1) % 3 == 2 → layers 0, 3, 6, 7.
    for (let i = 0; i < 8; i++) {
      const want = [0, 3, 6, 7].includes(i) ? 'Q6_K' : 'Q4_K';
      expect(to.get(`blk.${i}.attn_v.weight`), `attn_v ${i}`).toBe(want);
      expect(to.get(`blk.${i}.ffn_down.weight`), `ffn_down ${i}`).toBe(want);
    }
    for (const t of r.tensors) if (t.to !== 'F32') expect(t.snrDb!).toBeGreaterThan(t.to === 'Q6_K' ? 30 : 20);
    const x = await floats(inPath, 'blk.2.attn_v.weight');
    const y = await floats(out, 'blk.2.attn_v.weight');
    expect(Math.max(...x.map((v, i) => Math.abs(v - y[i])))).toBeLessThan(0.02);
    // Worker threads (or their single-thread fallback) must not change a byte.
    const out2 = join(dir, 'synthetic-q4km-t2.gguf');
    await quantizeFile(inPath, out2, 'Q4_K_M', { threads: 2 });
    expect(Buffer.compare(readFileSync(out), readFileSync(out2))).toBe(0);
  });
});
