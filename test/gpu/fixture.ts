// GPU test helpers: an engine per option set (or undefined → tests skip, but
// on CI a missing adapter fails), an in-memory GgufFile, random quantized
// blocks with sane scales, readback and error measures.
import { Engine, type EngineOptions } from '../../src/gpu/engine.ts';
import type { GgufFile, TensorInfo } from '../../src/gguf/types.ts';
import { GgmlType, type TypeInfo, typeInfo } from '../../src/quant/table.ts';
import { f32ToF16, f32ToBf16 } from '../../src/quant/half.ts';

const engines = new Map<string, Promise<Engine | undefined>>();

/** An engine, or undefined (with the reason printed) when there is no adapter; on CI that throws unless `optional`. */
export function getTestEngine(opts: EngineOptions = {}, { optional = false } = {}): Promise<Engine | undefined> {
  const key = JSON.stringify(opts);
  let e = engines.get(key);
  if (!e) {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    e = Engine.create(opts).catch((err) => {
      if (process.env.CI && !optional) throw err;
      console.warn(`[qllm tests] no WebGPU engine for ${key} (${(err as Error).message}): GPU tests skipped`);
      return undefined;
    });
    engines.set(key, e);
  }
  return e;
}

/** A deterministic PRNG (mulberry32) so failures reproduce; seed printed by tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Byte offsets of the f16 scale fields inside one block, per type (ggml-common.h). */
const F16_FIELDS: Partial<Record<GgmlType, number[]>> = {
  [GgmlType.Q4_0]: [0], [GgmlType.Q4_1]: [0, 2], [GgmlType.Q5_0]: [0], [GgmlType.Q5_1]: [0, 2], [GgmlType.Q8_0]: [0],
  [GgmlType.Q2_K]: [80, 82], [GgmlType.Q3_K]: [108], [GgmlType.Q4_K]: [0, 2], [GgmlType.Q5_K]: [0, 2], [GgmlType.Q6_K]: [208],
  [GgmlType.IQ4_NL]: [0], [GgmlType.IQ4_XS]: [0],
};

/** Random tensor bytes of `type` for rows×cols: random quants, scales in ±[0.005, 0.05] (never NaN/Inf). */
export function randomTensor(type: GgmlType, rows: number, cols: number, rand: () => number): Uint8Array {
  const t = typeInfo(type)!;
  const n = rows * cols;
  const out = new Uint8Array((n / t.blockElems) * t.blockBytes);
  const dv = new DataView(out.buffer);
  if (type === GgmlType.F32) {
    for (let i = 0; i < n; i++) dv.setFloat32(4 * i, rand() * 2 - 1, true);
    return out;
  }
  if (type === GgmlType.F16 || type === GgmlType.BF16) {
    for (let i = 0; i < n; i++) dv.setUint16(2 * i, (type === GgmlType.F16 ? f32ToF16 : f32ToBf16)(rand() * 2 - 1), true);
    return out;
  }
  for (let i = 0; i < out.length; i++) out[i] = (rand() * 256) | 0;
  if (type === GgmlType.MXFP4) {
    // e8m0 exponent byte first: e in 119..123 → levels up to 12·2^(e-128), 0.02..0.38.
    for (let b = 0; b < out.length / t.blockBytes; b++) out[b * t.blockBytes] = 119 + Math.floor(rand() * 5);
    return out;
  }
  const fields = F16_FIELDS[type]!;
  for (let b = 0; b < out.length / t.blockBytes; b++) {
    for (const f of fields) dv.setUint16(b * t.blockBytes + f, f32ToF16((rand() < 0.5 ? -1 : 1) * (0.005 + rand() * 0.045)), true);
  }
  return out;
}

/** An in-memory GgufFile holding the given tensors (enough for uploadTensor). */
export function memGguf(tensors: { name: string; type: TypeInfo; dims: number[]; data: Uint8Array }[]): GgufFile {
  const infos: TensorInfo[] = tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, nElements: t.dims.reduce((a, b) => a * b, 1), nBytes: t.data.length, offset: 0 }));
  const data = new Map(tensors.map((t) => [t.name, t.data]));
  return {
    path: 'mem', version: 3, fileSize: 0, alignment: 32, dataOffset: 0, kv: new Map(), tensors: infos,
    tensor: (name) => infos.find((t) => t.name === name),
    async readTensor(t, start = 0, length) {
      const d = data.get(t.name)!;
      return d.slice(start, start + (length ?? d.length - start));
    },
    async close() {},
  };
}

export async function readF32(engine: Engine, src: GPUBuffer, bytes: number, offset = 0): Promise<Float32Array> {
  const rb = engine.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = engine.device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, rb, 0, bytes);
  engine.device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(rb.getMappedRange().slice(0));
  rb.unmap();
  rb.destroy();
  return out;
}

export function f32Buffer(engine: Engine, data: Float32Array | Uint32Array, label = 'test', extraBytes = 0): GPUBuffer {
  const b = engine.createBuffer('activations', label, data.byteLength + extraBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
  engine.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  return b;
}

export function paramsBuffer(engine: Engine, nTokens: number): GPUBuffer {
  const b = engine.createBuffer('other', 'params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  engine.device.queue.writeBuffer(b, 0, new Uint32Array([nTokens, 0, 0, 0]));
  return b;
}

/** Normalised mean squared error Σ(a-b)² / Σb². */
export function nmse(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    e += d * d;
    s += ref[i] * ref[i];
  }
  return s === 0 ? e : e / s;
}
