// Kernel benchmark: matvec (decode) time per product for each format at the
// TinyLlama shapes, effective GB/s of weights read, and the ratio to a plain
// copy kernel on the same adapter; plus the cost of one empty dispatch.
// Weights are rotated through >= 192 MB of copies so reads come from DRAM.
//   npm run bench:kernels -- [--formats Q4_0,Q8_0] [--shapes 2048x2048,5632x2048] [--iters 50] [--tokens 1] [--json]
// Shapes are rows x cols. Times come from GPU timestamps when the adapter has
// them, else from wall time over one submit of many dispatches.
import { parseArgs } from 'node:util';
import { Engine, fmtBytes } from '../src/gpu/engine.ts';
import { createMatmul } from '../src/gpu/matmul.ts';
import { quietly } from '../src/gpu/poll.ts';
import { destroyWeight, uploadTensor, type GpuWeight } from '../src/gpu/weights.ts';
import { typeByName, typeInfo } from '../src/quant/table.ts';
import { memGguf, randomTensor, rng } from '../test/gpu/fixture.ts';

const { values } = parseArgs({
  options: {
    formats: { type: 'string', default: 'Q4_0,Q4_K,Q6_K,Q8_0' },
    shapes: { type: 'string', default: '2048x2048,5632x2048,2048x5632,32000x2048' },
    iters: { type: 'string', default: '40' },
    tokens: { type: 'string', default: '1' },
    rotate: { type: 'string', default: String(192 << 20) },
    json: { type: 'boolean' },
  },
});
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const engine = await Engine.create();
const ts = engine.features.has('timestamp-query');
const iters = Number(values.iters);
const nTok = Number(values.tokens);
const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/**
 * Seconds per item for `n` items recorded by `record` into one compute pass.
 * `expectS`: expected seconds per item. Dawn's node binding busy-polls while
 * a promise is pending, taking one of lavapipe's two cores (shared notes:
 * 25-47% of throughput), so we sleep through most of the expected time first.
 */
async function timePass(n: number, record: (pass: GPUComputePassEncoder, i: number) => void, expectS = 0): Promise<number> {
  const dev = engine.device;
  const qs = ts ? dev.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const res = ts ? dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : undefined;
  const rd = ts ? dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : undefined;
  const enc = dev.createCommandEncoder();
  const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : undefined);
  for (let i = 0; i < n; i++) record(pass, i);
  pass.end();
  if (qs && res && rd) {
    enc.resolveQuerySet(qs, 0, 2, res, 0);
    enc.copyBufferToBuffer(res, 0, rd, 0, 16);
  }
  const t0 = performance.now();
  dev.queue.submit([enc.finish()]);
  if (expectS > 0) await new Promise((r) => setTimeout(r, expectS * n * 800));
  await quietly(engine, 0.1, () => dev.queue.onSubmittedWorkDone());
  const wall = (performance.now() - t0) / 1000;
  if (rd) {
    await rd.mapAsync(GPUMapMode.READ);
    const [a, b] = new BigUint64Array(rd.getMappedRange());
    const gpu = Number(b - a) / 1e9;
    rd.unmap();
    if (gpu > 0) return gpu / n;
  }
  return wall / n;
}

async function copyBandwidth(): Promise<number> {
  const size = 64 << 20;
  const n = Math.max(2, Math.ceil(Number(values.rotate) / size));
  const srcs = Array.from({ length: n }, (_, i) => engine.createBuffer('other', `copy.src${i}`, size, STORAGE));
  const dst = engine.createBuffer('other', 'copy.dst', size, STORAGE);
  const wg = engine.adapter.software ? 8 : 256;
  const nwg = engine.adapter.software ? 64 : 4096;
  const pipe = await engine.pipeline({ kind: 'bench-copy', wg }, engine.shader('copy'), { WG: wg });
  const bgs = srcs.map((s) => engine.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: s } }, { binding: 1, resource: { buffer: dst } }] }));
  const rec = (p: GPUComputePassEncoder, i: number) => {
    p.setPipeline(pipe);
    p.setBindGroup(0, bgs[i % n]);
    p.dispatchWorkgroups(nwg);
  };
  await timePass(2, rec); // warm-up (compile)
  const guess = await timePass(n, rec);
  const s = await timePass(Math.max(4, n * 2), rec, guess);
  for (const b of [...srcs, dst]) engine.destroyBuffer(b);
  return size / s / 1e9;
}

async function dispatchOverhead(): Promise<number> {
  const buf = engine.createBuffer('other', 'empty.src', 16, STORAGE);
  const buf2 = engine.createBuffer('other', 'empty.dst', 16, STORAGE);
  const pipe = await engine.pipeline({ kind: 'bench-empty' }, engine.shader('copy'), { WG: 1 });
  const bg = engine.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }, { binding: 1, resource: { buffer: buf2 } }] });
  const rec = (p: GPUComputePassEncoder) => {
    p.setPipeline(pipe);
    p.setBindGroup(0, bg);
    p.dispatchWorkgroups(1);
  };
  await timePass(4, rec);
  const s = await timePass(500, rec);
  engine.destroyBuffer(buf);
  engine.destroyBuffer(buf2);
  return s * 1e6;
}

const copyGBs = await copyBandwidth();
const overheadUs = await dispatchOverhead();
console.log(`adapter: ${engine.adapter.description} (${engine.adapter.backend}); f16 ${engine.f16}, subgroups ${engine.subgroups}; timing: ${ts ? 'GPU timestamps' : 'wall clock'}`);
console.log(`copy kernel: ${copyGBs.toFixed(2)} GB/s read; empty dispatch: ${overheadUs.toFixed(1)} µs`);

const rows: Record<string, string | number>[] = [];
for (const fname of values.formats!.split(',')) {
  const t = typeByName(fname.trim());
  if (!t) throw new Error(`unknown format ${fname}`);
  for (const shape of values.shapes!.split(',')) {
    const [r, c] = shape.split('x').map(Number);
    const bytesOne = (r * c * t.blockBytes) / t.blockElems;
    const copies = Math.max(2, Math.ceil(Number(values.rotate) / bytesOne));
    // One random tensor, uploaded `copies` times (identical bytes, distinct buffers).
    const data = randomTensor(t.id, r, c, rng(r + c));
    const file = memGguf([{ name: `${t.name}.${shape}`, type: typeInfo(t.id)!, dims: [c, r], data }]);
    const ws: GpuWeight[] = [];
    for (let i = 0; i < copies; i++) ws.push(await uploadTensor(engine, file, file.tensors[0]));
    const x = engine.createBuffer('activations', 'x', nTok * c * 4, STORAGE);
    engine.device.queue.writeBuffer(x, 0, new Float32Array(nTok * c).fill(0.01));
    const y = engine.createBuffer('activations', 'y', nTok * r * 4, STORAGE);
    const params = engine.createBuffer('other', 'params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    engine.device.queue.writeBuffer(params, 0, new Uint32Array([nTok, 0, 0, 0]));
    const mms = await Promise.all(ws.map((w) => createMatmul(engine, w, { x, y, params, maxTokens: nTok })));
    const rec = (p: GPUComputePassEncoder, i: number) => mms[i % copies].encode(p, nTok);
    await timePass(2, rec); // compile + warm
    const guess = await timePass(copies, rec);
    const n = Math.max(iters, copies * 2);
    const s = await timePass(n, rec, guess);
    engine.check();
    const gbs = bytesOne / s / 1e9;
    const row = { format: t.name, shape, weights: fmtBytes(bytesOne), us: +(s * 1e6).toFixed(1), GBs: +gbs.toFixed(2), vsCopy: +(gbs / copyGBs).toFixed(2), copies };
    rows.push(row);
    if (!values.json) console.log(`${t.name.padEnd(7)} ${shape.padEnd(11)} ${row.weights.padStart(10)}  ${String(row.us).padStart(9)} µs  ${row.GBs.toFixed(2).padStart(6)} GB/s  ${row.vsCopy.toFixed(2)}× copy`);
    for (const w of ws) destroyWeight(engine, w);
    for (const b of [x, y, params]) engine.destroyBuffer(b);
  }
}
if (values.json) console.log(JSON.stringify({ adapter: engine.adapter, copyGBs, overheadUs, tokens: nTok, rows }, null, 2));
engine.destroy();
