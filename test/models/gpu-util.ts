// Small GPU helpers for the model tests: an engine (or undefined to skip),
// upload/readback of f32 data, and error measures.
import { Engine, type EngineOptions } from '../../src/gpu/engine.ts';

const engines = new Map<string, Promise<Engine | undefined>>();

/** One engine per option set per test process; undefined when no adapter exists. */
export function testEngine(opts: EngineOptions = {}): Promise<Engine | undefined> {
  const key = JSON.stringify(opts);
  let e = engines.get(key);
  if (!e) {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    e = Engine.create(opts).catch((err) => {
      console.warn(`[qllm tests] no WebGPU engine (${(err as Error).message}): GPU model tests skipped`);
      return undefined;
    });
    engines.set(key, e);
  }
  return e;
}

export const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function upload(engine: Engine, data: Float32Array | Uint32Array, label = 'test'): GPUBuffer {
  const b = engine.createBuffer('activations', label, data.byteLength, STORAGE());
  engine.device.queue.writeBuffer(b, 0, data as Float32Array<ArrayBuffer>);
  return b;
}

export function zeros(engine: Engine, bytes: number, label = 'test'): GPUBuffer {
  return engine.createBuffer('activations', label, bytes, STORAGE());
}

export function paramsBuffer(engine: Engine, nTokens: number, pos: number): GPUBuffer {
  const b = engine.createBuffer('other', 'params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  engine.device.queue.writeBuffer(b, 0, new Uint32Array([nTokens, pos, 0, 0]));
  return b;
}

export async function readback(engine: Engine, src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const st = engine.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = engine.device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, st, 0, bytes);
  engine.device.queue.submit([enc.finish()]);
  await st.mapAsync(GPUMapMode.READ);
  const out = st.getMappedRange().slice(0);
  st.destroy();
  return out;
}

export const readF32 = async (e: Engine, b: GPUBuffer, n: number) => new Float32Array(await readback(e, b, n * 4));

/** Runs encode() in one compute pass and waits. */
export async function runPass(engine: Engine, encode: (pass: GPUComputePassEncoder) => void): Promise<void> {
  const enc = engine.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encode(pass);
  pass.end();
  engine.device.queue.submit([enc.finish()]);
  await engine.device.queue.onSubmittedWorkDone();
  engine.check();
}

/** Seeded uniform random in [-a, a). */
export function rand(n: number, seed: number, a = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32 * 2 - 1) * a;
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Number.POSITIVE_INFINITY : m;
}

/** Normalized mean squared error: Σ(a-b)² / Σb². */
export function nmse(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return den === 0 ? num : num / den;
}
