import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.ts';
import { GgufError } from '../../src/errors.ts';
import { openGguf, openGgufBytes } from '../../src/gguf/reader.ts';
import { bytesByteSource } from '../../src/gguf/source.ts';
import { type GgufArray, GgufValueType } from '../../src/gguf/types.ts';
import { GgufWriter, kv, layoutGguf, writeGgufToBytes } from '../../src/gguf/writer.ts';
import { fileByteSource } from '../../src/gguf/source.ts';
import { syntheticVocab } from '../../src/synth/vocab.ts';
import { GgmlType } from '../../src/quant/table.ts';
import { hasShared, sharedModel } from '../shared.ts';
import { Raw } from './raw.ts';

const tmp = mkdtempSync(join(tmpdir(), 'qllm-gguf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const rnd = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 17 + ((i * i) >> 3)) & 255);

const allKv = [
  kv.u8('t.u8', 250), kv.i8('t.i8', -100), kv.u16('t.u16', 65000), kv.i16('t.i16', -30000),
  kv.u32('t.u32', 4_000_000_000), kv.i32('t.i32', -2_000_000_000), kv.f32('t.f32', 1.5), kv.f64('t.f64', Math.PI),
  kv.bool('t.bool', true), kv.bool('t.false', false), kv.str('t.str', 'héllo ▁wörld 🦙'), kv.str('t.empty', ''),
  kv.u64('t.u64', 2n ** 63n + 5n), kv.i64('t.i64', -(2n ** 62n)),
  kv.strArray('t.strs', ['a', '', '▁the', '<0x0A>', 'ü'.repeat(40)]),
  kv.f32Array('t.f32s', [0.5, -1, 3.25]), kv.i32Array('t.i32s', [-1, 2, 3]), kv.u32Array('t.u32s', [7, 8]),
  kv.array('t.u64s', GgufValueType.UINT64, new BigUint64Array([1n, 2n ** 60n])),
  kv.array('t.bools', GgufValueType.BOOL, [true, false, true]),
  kv.array('t.u8s', GgufValueType.UINT8, new Uint8Array([1, 2, 255])),
  kv.array('t.f64s', GgufValueType.FLOAT64, new Float64Array([1e300, -0.125])),
  kv.array('t.nested', GgufValueType.ARRAY, [
    kv.arrayValue(GgufValueType.INT32, new Int32Array([1, 2])),
    kv.arrayValue(GgufValueType.STRING, ['x', 'yz']),
    kv.arrayValue(GgufValueType.ARRAY, [kv.arrayValue(GgufValueType.UINT8, new Uint8Array([9]))]),
  ]),
  kv.array('t.emptyArr', GgufValueType.FLOAT32, new Float32Array(0)),
];

const tensors = [
  { name: 'a', dims: [64, 3], type: GgmlType.Q4_0 },
  { name: 'b', dims: [5], type: GgmlType.F32 },
  { name: 'c', dims: [256, 2, 1, 2], type: GgmlType.Q6_K },
  { name: 'd', dims: [7, 3], type: GgmlType.F16 },
].map((t, i) => ({ ...t, data: rnd(0, 0), seed: i }));
function withData(sizes: Record<string, number>) {
  return tensors.map((t) => ({ ...t, data: rnd(sizes[t.name]!, t.seed) }));
}
const sizes = { a: 2 * 18 * 3, b: 20, c: 4 * 210, d: 42 };

function expectSameKv(got: ReadonlyMap<string, { type: GgufValueType; value: unknown }>) {
  expect([...got.keys()].filter((k) => k !== 'general.alignment')).toEqual(allKv.map((k) => k.key));
  for (const k of allKv) {
    const g = got.get(k.key)!;
    expect(g.type, k.key).toBe(k.type);
    if (k.type === GgufValueType.FLOAT32) expect(g.value).toBe(Math.fround(k.value as number));
    else expect(norm(g.value), k.key).toEqual(norm(k.value));
  }
}
// Compare arrays by content regardless of typed-array vs plain-array container.
function norm(v: unknown): unknown {
  if (v && typeof v === 'object' && 'values' in v) {
    const a = v as GgufArray;
    return { t: a.itemType, v: Array.from(a.values as ArrayLike<unknown>, norm) };
  }
  return v;
}

describe('GGUF writer → reader round trip', () => {
  for (const alignment of [32, 64]) {
    it(`every value type, nested arrays, alignment ${alignment}`, async () => {
      const bytes = writeGgufToBytes({ kv: allKv, tensors: withData(sizes), alignment });
      const g = await openGgufBytes(bytes);
      expect(g.version).toBe(3);
      expect(g.alignment).toBe(alignment);
      expect(g.dataOffset % alignment).toBe(0);
      expectSameKv(g.kv);
      expect(typeof g.kv.get('t.u64')!.value).toBe('bigint');
      expect((g.kv.get('t.f32s')!.value as GgufArray).values).toBeInstanceOf(Float32Array);
      expect((g.kv.get('t.i32s')!.value as GgufArray).values).toBeInstanceOf(Int32Array);
      expect((g.kv.get('t.u32s')!.value as GgufArray).values).toBeInstanceOf(Uint32Array);
      expect((g.kv.get('t.u64s')!.value as GgufArray).values).toBeInstanceOf(BigUint64Array);
      expect(g.tensors.map((t) => t.name)).toEqual(['a', 'b', 'c', 'd']);
      for (const t of withData(sizes)) {
        const info = g.tensor(t.name)!;
        expect(info.dims).toEqual(t.dims);
        expect(info.type.id).toBe(t.type);
        expect(info.nBytes).toBe(sizes[t.name as keyof typeof sizes]);
        expect(info.offset % alignment).toBe(0);
        expect(await g.readTensor(info)).toEqual(t.data);
        expect(await g.readTensor(info, 3, 4)).toEqual(t.data.subarray(3, 7));
      }
      await expect(g.readTensor(g.tensor('b')!, 10, 11)).rejects.toThrow(GgufError);
    });
  }

  it('streams to a file in chunks, atomically', async () => {
    const path = join(tmp, 'stream.gguf');
    const data = withData(sizes);
    const w = await GgufWriter.create(path, { kv: allKv, tensors: data, atomic: true });
    expect(existsSync(w.tempPath!)).toBe(true);
    expect(existsSync(path)).toBe(false);
    for (const t of data) {
      if (t.name === 'c') for (let o = 0; o < t.data.length; o += 100) await w.write('c', t.data.subarray(o, o + 100));
      else await w.writeTensorData(t.name, t.data);
    }
    await w.close();
    expect(existsSync(w.tempPath!)).toBe(false);
    expect(readFileSync(path)).toEqual(Buffer.from(writeGgufToBytes({ kv: allKv, tensors: data })));
    const g = await openGguf(path);
    expectSameKv(g.kv);
    for (const t of data) expect(await g.readTensor(g.tensor(t.name)!)).toEqual(t.data);
    await g.close();
  });

  it('refuses out-of-order or missing tensor data and leaves no partial file', async () => {
    const path = join(tmp, 'bad.gguf');
    const data = withData(sizes);
    const w = await GgufWriter.create(path, { kv: [], tensors: data, atomic: true });
    await expect(w.writeTensorData('b', data[1]!.data)).rejects.toThrow(/declaration order/);
    await w.writeTensorData('a', data[0]!.data);
    await expect(w.close()).rejects.toThrow(/"b" and 2 after it were not written/);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(w.tempPath!)).toBe(false);
  });

  it('writer rejects bad input with GgufError', () => {
    expect(() => writeGgufToBytes({ kv: [kv.u8('x', 300)], tensors: [] })).toThrow(GgufError);
    expect(() => writeGgufToBytes({ kv: [kv.u8('x', 1), kv.u8('x', 2)], tensors: [] })).toThrow(/duplicate/);
    expect(() => writeGgufToBytes({ kv: [], tensors: [{ name: 'q', dims: [33], type: GgmlType.Q4_0, data: new Uint8Array(0) }] })).toThrow(/block size/);
  });
});

/** A small valid file: 2 kv, one F32 tensor [8, 2]. */
function good(): Uint8Array {
  return writeGgufToBytes({ kv: [kv.str('general.architecture', 'llama'), kv.u32('x', 1)], tensors: [{ name: 'w', dims: [8, 2], type: GgmlType.F32, data: rnd(64, 1) }] });
}
async function err(bytes: Uint8Array): Promise<string> {
  try {
    await openGgufBytes(bytes, 'test.gguf');
  } catch (e) {
    expect(e).toBeInstanceOf(GgufError);
    const m = (e as Error).message;
    expect(m).not.toContain('\n');
    return m;
  }
  throw new Error('expected a GgufError');
}
/** A file with one tensor whose info is given raw, followed by `dataBytes` of data. */
function oneTensor(dims: (number | bigint)[], type: number, offset: number | bigint, dataBytes = 64, kvs?: (r: Raw) => Raw, nKv = 0) {
  let r = new Raw().header(1, nKv);
  if (kvs) r = kvs(r);
  return r.tensor('w', dims, type, offset).padTo(32).zeros(dataBytes).done();
}

describe('GGUF reader errors', () => {
  it('wrong magic', async () => {
    const b = good();
    b.set([0x50, 0x4b, 3, 4], 0);
    expect(await err(b)).toMatch(/not a GGUF file \(magic "PK\\x03\\x04"/);
    expect(await err(new Uint8Array([1, 2]))).toMatch(/not a GGUF file/);
  });
  it('unsupported versions', async () => {
    expect(await err(new Raw().header(0, 0, 1).done())).toMatch(/unsupported version 1 .*re-convert/);
    expect(await err(new Raw().header(0, 0, 4).done())).toMatch(/unsupported GGUF version 4/);
    expect(await err(new Raw().header(0, 0, 0x03000000).done())).toMatch(/big-endian/);
    const v2 = new Raw().header(0, 1, 2).kvU32('a', 5).done();
    expect((await openGgufBytes(v2)).kv.get('a')!.value).toBe(5);
  });
  it('truncation names the offset and what was being read', async () => {
    const b = good();
    expect(await err(b.subarray(0, 10))).toMatch(/file truncated at byte 10 while reading tensor count.*download it again/);
    expect(await err(b.subarray(0, 95))).toMatch(/file truncated at byte 95 while reading .*tensor "w"/);
    expect(await err(b.subarray(0, b.length - 1))).toMatch(/tensor "w" data .* runs past the end .*download it again/);
  });
  it('string and array lengths beyond the file', async () => {
    expect(await err(new Raw().header(0, 1).u64(2n ** 40n).zeros(10).done())).toMatch(/string length 1099511627776 at byte 24 .*larger than/);
    expect(await err(new Raw().header(0, 1).str('k').u32(9).u32(4).u64(2n ** 62n).done())).toMatch(/array length .* \(metadata key "k"\) is larger than/);
    expect(await err(new Raw().header(0, 1).str('k').u32(9).u32(8).u64(1000).u64(1).zeros(100).done())).toMatch(/array length 1000/);
    expect(await err(new Raw().header(0, 2 ** 40).done())).toMatch(/metadata count 1099511627776 .*truncated/);
    expect(await err(new Raw().header(2 ** 40, 0).done())).toMatch(/tensor count 1099511627776 .*truncated/);
  });
  it('dimension count, zero and overflowing dims', async () => {
    expect(await err(oneTensor([1, 1, 1, 1, 1], 0, 0))).toMatch(/tensor "w" has 5 dimensions/);
    expect(await err(oneTensor([], 0, 0))).toMatch(/has 0 dimensions/);
    expect(await err(oneTensor([8, 0], 0, 0))).toMatch(/zero dimension/);
    expect(await err(oneTensor([2 ** 30, 2 ** 30], 0, 0))).toMatch(/overflow 2\^53/);
    expect(await err(oneTensor([2n ** 63n, 1], 0, 0))).toMatch(/overflow|past the end/);
    expect(await err(oneTensor([2 ** 20, 2 ** 20], 0, 0))).toMatch(/runs past the end/);
  });
  it('unknown type ids', async () => {
    expect(await err(oneTensor([8], 99, 0))).toMatch(/unknown ggml type id 99 for tensor "w"/);
    expect(await err(new Raw().header(0, 1).str('k').u32(13).zeros(8).done())).toMatch(/unknown metadata value type 13 for key "k" at byte 33/);
    expect(await err(new Raw().header(0, 1).str('k').u32(9).u32(77).u64(0).done())).toMatch(/unknown metadata value type 77 for the items/);
  });
  it('known but unsupported types are listed, with block-size checks', async () => {
    const g = await openGgufBytes(oneTensor([256], GgmlType.IQ2_XXS, 0, 66));
    expect(g.tensors[0]!.type.name).toBe('IQ2_XXS');
    expect(g.tensors[0]!.type.supported).toBe(false);
    expect(g.tensors[0]!.nBytes).toBe(66);
    expect(await err(oneTensor([40], GgmlType.Q4_0, 0))).toMatch(/row length 40 is not a multiple of the Q4_0 block size 32/);
  });
  it('misaligned offsets, bad alignment, duplicates', async () => {
    expect(await err(oneTensor([8], 0, 4))).toMatch(/offset 4 is not a multiple of the alignment 32/);
    expect(await err(oneTensor([8], 0, 0, 64, (r) => r.kvU32('general.alignment', 48), 1))).toMatch(/general.alignment = 48 .*power of two/);
    expect(await err(oneTensor([8], 0, 0, 64, (r) => r.kvU32('general.alignment', 0), 1))).toMatch(/general.alignment = 0/);
    expect(await err(new Raw().header(0, 2).kvU32('a', 1).kvU32('a', 2).done())).toMatch(/duplicate metadata key "a" at byte 41/);
    const dup = new Raw().header(2, 0).tensor('w', [8], 0, 0).tensor('w', [8], 0, 32).padTo(32).zeros(64).done();
    expect(await err(dup)).toMatch(/duplicate tensor name "w"/);
  });
  it('deeply nested arrays are refused, not a stack overflow', async () => {
    const r = new Raw().header(0, 1).str('k').u32(9);
    for (let i = 0; i < 100; i++) r.u32(9).u64(1);
    r.u32(4).u64(0);
    expect(await err(r.done())).toMatch(/nests arrays deeper/);
  });
  it('invalid UTF-8 decodes with replacement', async () => {
    const g = await openGgufBytes(new Raw().header(0, 1).str('k').u32(8).u64(3).bytes([0x61, 0xff, 0x62]).done());
    expect(g.kv.get('k')!.value).toBe('a\ufffdb');
  });
  it('missing file and directory', async () => {
    await expect(openGguf(join(tmp, 'nope.gguf'))).rejects.toThrow(/cannot open .*no such file/);
    await expect(openGguf(tmp)).rejects.toThrow(GgufError);
  });
  it('a source that throws a non-GgufError is wrapped with the offset', async () => {
    const src = { ...bytesByteSource(good()), read: async () => { throw new TypeError('boom'); } };
    await expect(openGguf(src, 'x.gguf')).rejects.toThrow(/cannot parse GGUF file x.gguf at byte 0: boom/);
  });
});

describe.skipIf(!hasShared)('GGUF reader on real files', () => {
  it('stories260K', async () => {
    const g = await openGguf(sharedModel('stories260K.gguf'));
    const c = readConfig(g);
    expect([c.arch, c.nLayers, c.dim, c.nHeads, c.nKvHeads, c.vocabSize]).toEqual(['llama', 5, 64, 8, 4, 512]);
    expect(g.tensors.length).toBe(48);
    const embd = g.tensor('token_embd.weight')!;
    expect(embd.dims).toEqual([64, 512]);
    const f = new Float32Array((await g.readTensor(embd, 0, 256)).slice().buffer);
    expect(f.every(Number.isFinite)).toBe(true);
    await g.close();
  });
  const counts: Record<string, Record<string, number>> = {
    'stories260K-q8_0.gguf': { Q8_0: 32, F32: 11, F16: 5 },
    'stories260K-q4_0.gguf': { Q4_0: 31, Q8_0: 1, F32: 11, F16: 5 },
    'stories260K-q4_1.gguf': { Q4_1: 31, Q8_0: 1, F32: 11, F16: 5 },
    'stories260K-q4_k_m.gguf': { Q5_0: 29, Q8_0: 3, F32: 11, F16: 5 },
  };
  for (const [file, want] of Object.entries(counts)) {
    it(`${file} per-type tensor counts`, async () => {
      const g = await openGguf(sharedModel(file));
      const got: Record<string, number> = {};
      for (const t of g.tensors) got[t.type.name] = (got[t.type.name] ?? 0) + 1;
      expect(got).toEqual(want);
      const last = g.tensors.reduce((a, t) => (t.offset > a.offset ? t : a));
      expect(last.offset + last.nBytes).toBeLessThanOrEqual(g.fileSize);
      await g.close();
    });
  }
  it('llama-spm vocabulary: 32000 tokens, no tensors', async () => {
    const g = await openGguf(sharedModel('ggml-vocab-llama-spm.gguf'));
    const c = readConfig(g);
    expect(c.tokenizer!.tokens.length).toBe(32000);
    expect(c.tokenizer!.scores.length).toBe(32000);
    expect(c.tokenizer!.tokens[1]).toBe('<s>');
    expect(g.tensors.length).toBe(0);
    await g.close();
  });
  it('quant test vectors list every type with .deq and .matvec', async () => {
    const g = await openGguf(sharedModel('quant-test-vectors-stories260K-64rows.gguf'));
    for (const t of ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'f16', 'bf16']) {
      expect(g.tensor(t)!.type.name.toLowerCase()).toBe(t.toLowerCase());
      expect(g.tensor(t)!.dims).toEqual([256, 64]);
      expect(g.tensor(`${t}.deq`)!.type.name).toBe('F32');
      expect(g.tensor(`${t}.matvec`)!.dims).toEqual([64]);
    }
    await g.close();
  });
  it('a copy re-written by the writer reads back identically', async () => {
    const g = await openGguf(sharedModel('stories260K-q4_0.gguf'));
    const out = join(tmp, 'copy.gguf');
    const w = await GgufWriter.create(out, { kv: [...g.kv.values()], tensors: g.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type })) });
    for (const t of g.tensors) await w.writeTensorData(t.name, await g.readTensor(t));
    await w.close();
    const h = await openGguf(out);
    expect(h.tensors.map((t) => [t.name, t.dims, t.type.id, t.nBytes])).toEqual(g.tensors.map((t) => [t.name, t.dims, t.type.id, t.nBytes]));
    expect(norm(h.kv.get('tokenizer.ggml.tokens')!.value)).toEqual(norm(g.kv.get('tokenizer.ggml.tokens')!.value));
    for (const t of g.tensors) expect(await h.readTensor(h.tensor(t.name)!)).toEqual(await g.readTensor(t));
    await g.close();
    await h.close();
    writeFileSync(join(tmp, 'unused'), '');
  });
});

describe('GGUF reader laziness', () => {
  it('a 4.4 GB (sparse) F32 TinyLlama-shaped file opens reading only its header', async () => {
    const tensors = [{ name: 'token_embd.weight', dims: [2048, 32000], type: GgmlType.F32 }];
    for (let i = 0; i < 22; i++) {
      for (const [n, d] of [['attn_q', [2048, 2048]], ['attn_k', [2048, 256]], ['attn_v', [2048, 256]], ['attn_output', [2048, 2048]], ['ffn_gate', [2048, 5632]], ['ffn_up', [2048, 5632]], ['ffn_down', [5632, 2048]]] as const) {
        tensors.push({ name: `blk.${i}.${n}.weight`, dims: [...d], type: GgmlType.F32 });
      }
    }
    const l = layoutGguf({ kv: [kv.str('general.architecture', 'llama'), ...syntheticVocab(32000)], tensors });
    const path = join(tmp, 'sparse.gguf');
    writeFileSync(path, l.header);
    truncateSync(path, l.totalSize); // a hole: no disk space used
    expect(l.totalSize).toBeGreaterThan(4e9);
    const src = await fileByteSource(path);
    let read = 0;
    const counting = { size: src.size, close: () => src.close(), read: (o: number, n: number) => { read += n; return src.read(o, n); } };
    const heap0 = process.memoryUsage().heapUsed;
    const g = await openGguf(counting, path);
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    expect(g.tensors.length).toBe(1 + 22 * 7);
    expect(g.fileSize).toBe(l.totalSize);
    expect(read).toBeLessThanOrEqual(Math.max(l.header.length, 1 << 20) + (1 << 20));
    expect(heapGrowth).toBeLessThan(32 << 20); // 32k tokens + scores; never the data
    const last = g.tensors.at(-1)!;
    expect((await g.readTensor(last, last.nBytes - 8, 8)).every((b) => b === 0)).toBe(true);
    await g.close();
  });
});
