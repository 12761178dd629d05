// The llama-family transformer on the GPU, its load-time half: the model's
// state, and build(), which uploads the weights, allocates the KV cache and
// activations, and builds every pipeline and bind group. The forward passes
// are LlamaModel's (llama.ts).
import type { GpuBytes } from '../api.ts';
import type { Config } from '../config.ts';
import { UsageError } from '../errors.ts';
import type { GgufFile, TensorInfo } from '../gguf/types.ts';
import type { BufferCategory, Engine } from '../gpu/engine.ts';
import { createGather } from '../gpu/gather.ts';
import { createMatmul, gluInterleave, type MatmulIO } from '../gpu/matmul.ts';
import { quietly } from '../gpu/poll.ts';
import type { StepProfiler } from '../gpu/profiler.ts';
import { destroyWeight, type GpuWeight, uploadConcat, uploadTensor } from '../gpu/weights.ts';
import { dequantize } from '../quant/dequant.ts';
import { type AttentionOptions, PARAMS_BYTES, createArgmax, createAttention, createBiasAdd, createGroupNorm, createLogitsPost, createResidualAdd, createRmsnorm, createRopeKv, createSwiglu, type Kernel } from './kernels.ts';
import { type ChainLayer, createLayerChains, type LayerChains } from './llama-chain.ts';
import { type Acts, align256, increasing, type Layer, type Product, type Step } from './llama-parts.ts';
import type { ModelTensors } from './llama-tensors.ts';
import { isBlockKv, type KvType, kvBufferBytes } from './kv-cache.ts';
import { chainable, permutedRows } from './llama-plan.ts';
import { neoxOrder, permuteHeads, ropeTable } from './rope.ts';
import { StepBytes } from './step-bytes.ts';
import { createMoeBuffers, createMoeFfn } from './moe-layer.ts';
import { type BatchRow, BatchSteps } from './llama-batch.ts';
import { type BatchChains, createBatchChains } from './llama-batch-chain.ts';
import { Readback } from './readback.ts';
import { createTileMatmul, modelQ8xBytes, type TileMatmul } from './tile-matmul.ts';

export interface LlamaLoadOptions {
  /** KV-cache length in tokens. */
  contextLength: number;
  /** Most tokens per command buffer during prefill. Default 64. */
  maxBatch?: number;
  onProgress?: (fraction: number, label: string) => void;
  signal?: AbortSignal;
  /** Attention positions per chunk (0: no split). Default: split on real GPUs, not on CPU rasterisers. */
  attentionChunk?: number;
  /** One dispatch per layer for one-token steps on CPU kernels (llama-chain.ts). Default true; tests compare both paths. */
  chains?: boolean;
  /** KV cache type (kv-cache.ts). Default f16, or f32 where the engine has no shader-f16. */
  kvType?: KvType;
  /**
   * Sequences the KV cache holds (default 1), each of contextLength positions:
   * sequence s owns cache slots s·contextLength… of every layer, and
   * forwardBatch() runs tokens of several in one step (llama-batch.ts).
   */
  sequences?: number;
}

/**
 * The model's state and its construction: LlamaModel (llama.ts) adds the
 * forward passes. build() validates nothing itself (LlamaModel.load checks the
 * file and the plan first); it uploads the weights, allocates the caches and
 * activations, builds every pipeline and bind group, and warms them up
 * through the subclass's submit().
 */
export abstract class LlamaBuild {
  readonly config: Config;
  readonly contextLength: number;
  readonly maxBatch: number;
  /** Vocabulary size (token_embd rows). */
  readonly vocab: number;
  /** KV cache element type (kv-cache.ts); kvF16: it is f16. */
  readonly kvType: KvType;
  readonly kvF16: boolean;
  /** Sequences in the KV cache (LlamaLoadOptions.sequences). */
  readonly sequences: number;
  protected readonly engine: Engine;
  protected readonly owned: GPUBuffer[] = [];
  protected readonly weights: GpuWeight[] = [];
  protected acts!: Acts;
  protected embed!: Step;
  protected layers: Layer[] = [];
  protected finalNorm!: Step;
  protected outputAll!: Step & { normFused: boolean }; // logits for every token of the batch
  protected outputLast!: Step; // logits of lastX only
  protected argmax!: Step;
  /** The family's logit scale and final soft-cap, after the head (all rows, or the last one). */
  protected logitsPost?: { all: Step; one: Step };
  protected disposed = false;
  protected readonly readback: Readback;
  /** Batched steps' kernels and buffers (sequences > 1). */
  protected batch?: BatchSteps;
  /** Batched steps' products: each product step's matmul with a token tile of the sequences' count (tile-matmul.ts). */
  protected readonly tiles = new Map<Step, TileMatmul>();
  protected prof?: StepProfiler;
  /** One dispatch per layer for one token on CPU kernels (llama-chain.ts); undefined where not applicable. */
  protected chains?: LayerChains;
  /** Batched decode steps of up to `sequences` tokens as a dispatch per layer (llama-batch-chain.ts). */
  protected batchChains?: BatchChains;
  /** True when one-token steps run as one dispatch per layer (CPU kernels, llama-chain.ts). */
  get chained(): boolean {
    return !!this.chains;
  }
  /** True when batched steps of at most `sequences` tokens do the same (llama-batch-chain.ts). */
  get batchChained(): boolean {
    return !!this.batchChains;
  }
  /** File bytes of the weights each profiled step reads, summed over layers (for GB/s per step). */
  protected readonly stepBytes = new StepBytes();

  protected constructor(engine: Engine, config: Config, contextLength: number, maxBatch: number, vocab: number, kvType: KvType, sequences: number) {
    this.engine = engine;
    this.readback = new Readback(engine);
    this.sequences = sequences;
    this.config = config;
    this.contextLength = contextLength;
    this.maxBatch = maxBatch;
    this.vocab = vocab;
    this.kvType = kvType;
    this.kvF16 = kvType === 'f16';
  }

  protected buffer(category: BufferCategory, label: string, size: number, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST): GPUBuffer {
    const b = this.engine.createBuffer(category, label, size, usage);
    this.owned.push(b);
    return b;
  }

  protected async build(file: GgufFile, t: ModelTensors, opts: LlamaLoadOptions): Promise<void> {
    const c = this.config, e = this.engine, B = this.maxBatch, ctx = this.contextLength, plan = t.plan, fam = plan.family;
    const qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
    // NEOX RoPE: q and k rows (and what follows them row by row: biases, q/k
    // norm weights) are stored in the adjacent-pair order of rope.ts's
    // neoxOrder, so every kernel and fusion written for adjacent pairs serves.
    const order = fam.rope === 'neox' ? neoxOrder(c.headDim, c.ropeDim) : undefined;
    const src = order ? permutedRows(file, t.layers.flatMap((L) => [[L.q.name, c.nHeads], [L.k.name, c.nKvHeads]] as const), order) : file;

    // Weights: matrices keep their GGUF format; norm vectors become f32.
    const all = [t.tokenEmbd, t.outputNorm, ...(t.output ? [t.output] : []), ...t.layers.flatMap((l) => Object.values(l).filter((x): x is TensorInfo => !!x))];
    const total = all.reduce((s, x) => s + x.nBytes, 0);
    let done = 0;
    const report = increasing(opts.onProgress); // uploads fill 0..0.9, compiling is 0.95, ready 1
    const progress = (label: string) => report(0.9 * (total ? done / total : 1), label);
    const matrix = async (ti: TensorInfo, step?: string) => {
      const w = await uploadTensor(e, file, ti, { signal: opts.signal, onBytes: (n) => { done += n; progress(ti.name); } });
      this.weights.push(w);
      if (step) this.stepBytes.add(step, [ti], step !== 'output');
      return w;
    };
    // Tensors of one type and row length as one weight (a MoE layer's shared-expert gate|up).
    const group = async (ts: TensorInfo[], interleave?: number) => {
      const w = await uploadConcat(e, file, ts, `${ts[0].name}+${ts.length - 1}`, { signal: opts.signal, onBytes: (n) => { done += n; progress(ts[0].name); }, interleave });
      this.weights.push(w);
      return w;
    };
    // heads: the vector is per-head rows of q or k (a bias or a whole-vector norm) or one head's norm, reordered like the rows.
    const vector = async (ti: TensorInfo, heads = 0) => {
      if (opts.signal?.aborted) throw new UsageError(`loading ${file.path} was aborted`);
      let v = dequantize(ti.type.id, await file.readTensor(ti), ti.nElements);
      if (order && heads) v = permuteHeads(v, heads, order, 1);
      const b = this.buffer('weights', ti.name, v.byteLength);
      e.device.queue.writeBuffer(b, 0, v as Float32Array<ArrayBuffer>);
      done += ti.nBytes;
      progress(ti.name);
      return b;
    };

    // Activations and per-step uniforms.
    const f32 = (label: string, n: number) => this.buffer('activations', label, n * 4);
    const uniform = GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
    const read = GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;
    // q, k, v (and gate, up) are regions of one buffer each, so that one
    // product over concatenated weights can fill them in one dispatch.
    const kOff = align256(B * qDim * 4), vOff = kOff + align256(B * kvDim * 4), upOff = align256(B * c.ffnDim * 4);
    // A branch whose output is normed or scaled before the residual add lands in `branch` first.
    const direct = !fam.postNorm && plan.residualScale === 1;
    const a: Acts = {
      ids: f32('ids', B), x: f32('x', B * c.dim), xn: f32('xn', B * c.dim),
      qkv: f32('qkv', (vOff + B * kvDim * 4) / 4), qkvOff: [0, kOff, vOff], att: f32('att', B * qDim),
      gu: f32('gate|up', (upOff + B * c.ffnDim * 4) / 4), guOff: [0, upOff], lastX: f32('lastX', c.dim),
      branch: direct ? undefined : f32('branch', B * c.dim),
      logits: f32('logits', B * this.vocab), best: f32('best', 1),
      params: this.buffer('other', 'params', PARAMS_BYTES, uniform), paramsOne: this.buffer('other', 'paramsOne', PARAMS_BYTES, uniform),
      readLogits: this.buffer('staging', 'read logits', B * this.vocab * 4, read), readBest: [this.buffer('staging', 'read best 0', 4, read), this.buffer('staging', 'read best 1', 4, read)],
    };
    this.acts = a;
    e.device.queue.writeBuffer(a.paramsOne, 0, new Uint32Array([1, 0, 0, 0]));
    const factors = t.ropeFactors ? dequantize(t.ropeFactors.type.id, await file.readTensor(t.ropeFactors), t.ropeFactors.nElements) : undefined;
    const tables = plan.ropes.map((r, i) => {
      const table = this.buffer('other', `rope table ${i}`, ctx * c.ropeDim * 4);
      e.device.queue.writeBuffer(table, 0, ropeTable(ctx, c.ropeDim, r, r.factors === 'none' ? undefined : factors) as Float32Array<ArrayBuffer>);
      return table;
    });
    const io = (x: GPUBuffer, y: GPUBuffer, accumulate = false) => ({ x, y, params: a.params, maxTokens: B, accumulate });
    // Batched steps: the 8-bit x of their Q4_0 tiles (tile-matmul.ts), one product at a time.
    const q8x = this.sequences > 1 ? this.buffer('activations', 'batch 8-bit x', modelQ8xBytes(c, this.sequences)) : undefined;
    // A product; with several sequences also its batched-decode twin (tile-matmul.ts), which submit() swaps in.
    const mm = async (w: GpuWeight, mio: MatmulIO) => {
      const step = await createMatmul(e, w, mio);
      if (this.sequences > 1) this.tiles.set(step, this.adopt(await createTileMatmul(e, w, mio, this.sequences, q8x)));
      return step;
    };
    // Products that read the same input: runs of tensors of one type become one
    // concatenated weight and one dispatch (q|k|v, gate|up); y regions by offset.
    // normW: the norm before them, which one token's matvec applies on load
    // (MatmulIO.norm; the rmsnorm dispatch is then skipped in decode); absent,
    // they read x itself (OLMo2 has no pre-norms).
    // rope: q|k|v's RoPE + KV store done as one token's matvec stores its rows
    // (MatmulIO.rope; the rope+kv dispatch is then skipped in decode).
    // glu: gate|up of one type is uploaded interleaved so one token's matvec
    // can store silu(gate)·up (MatmulIO.gluStore; the swiglu dispatch is then skipped).
    const products = async (ts: TensorInfo[], y: GPUBuffer, offs: number[], normW: GPUBuffer | undefined, rope?: MatmulIO['rope'], glu = false): Promise<Product[]> => {
      const out: Product[] = [];
      for (let i = 0; i < ts.length; ) {
        let j = i + 1;
        while (j < ts.length && ts[j].type.id === ts[i].type.id && ts[j].dims[0] === ts[i].dims[0]) j++;
        const group = ts.slice(i, j);
        const label = group.map((t) => t.name.replace(/^blk\.\d+\./, '').replace(/\.weight$/, '')).join('+');
        this.stepBytes.add(label, group, true);
        const G = glu && group.length === 2 ? gluInterleave(e, group[0].type.id, group[0].dims[0]) : 0;
        const interleave = G && group[0].dims[1] % G === 0 ? G : undefined;
        const w = await uploadConcat(e, src, group, group.length > 1 ? `${group[0].name}+${group.length - 1}` : group[0].name, { signal: opts.signal, onBytes: (n) => { done += n; progress(group[0].name); }, interleave });
        this.weights.push(w);
        const norm = normW && { x: a.x, w: normW, eps: c.rmsEps };
        const r = rope && { ...rope, roles: rope.roles.slice(i, j) };
        const step = await mm(w, { x: normW ? a.xn : a.x, y, yOffset: offs[i], yOffsets: offs.slice(i, j), params: a.params, maxTokens: B, norm, rope: r, gluStore: !!interleave });
        out.push({ label, step, w });
        i = j;
      }
      return out;
    };
    const q: GPUBufferBinding = { buffer: a.qkv, offset: 0, size: B * qDim * 4 }; // attention reads q only: a read-only range is allowed
    const p = a.params, eps = c.rmsEps;
    // A branch's output into the residual: x += W·in, or through `branch` when the family norms or scales it first.
    const residual = async (w: GpuWeight, input: GPUBuffer, postNorm: TensorInfo | undefined, extra: Partial<MatmulIO> = {}) => {
      if (direct) return { product: await mm(w, { ...io(input, a.x, true), ...extra }), add: undefined };
      const product = await mm(w, io(input, a.branch!));
      const nw = postNorm && (await vector(postNorm));
      return { product, add: await createResidualAdd(e, { params: p, x: a.x, y: a.branch!, w: nw, dim: c.dim, eps, scale: plan.residualScale }) };
    };

    // Embedding, then the blocks, then the output head.
    const embd = await matrix(t.tokenEmbd);
    this.embed = await createGather(e, embd, { ids: a.ids, out: a.x, params: a.params, maxTokens: B, scale: plan.embedScale });
    const chunking = opts.attentionChunk === undefined ? {} : { split: opts.attentionChunk > 0, chunk: opts.attentionChunk || undefined };
    // Every sequence's cache is a region of one buffer per layer: slots = sequences · ctx.
    const slots = this.sequences * ctx;
    const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, kvF16: this.kvF16, kvType: this.kvType, contextLength: ctx, kvSlots: slots };
    const batch = this.sequences > 1 ? await BatchSteps.create(e, { sequences: this.sequences, maxBatch: B, dim: c.dim, vocab: this.vocab, logits: a.logits, buffer: (cat, label, bytes, usage) => this.buffer(cat, label, bytes, usage) }) : undefined;
    const blockKv = isBlockKv(this.kvType); // stored by rope_kv_quant.wgsl: no K/V store in the products, no decode chains
    const chainLayers: ChainLayer[] = [];
    // Mixture of experts (moe-layer.ts): buffers shared by every MoE layer.
    const moeBufs = plan.moe && createMoeBuffers(plan.moe, B, c.dim, (label, bytes) => this.buffer('activations', label, bytes));
    for (let i = 0; i < c.nLayers; i++) {
      const L = t.layers[i], lp = plan.layers[i];
      const table = tables[Math.max(0, lp.rope)];
      const ropeDim = lp.rope < 0 ? 0 : c.ropeDim; // 0: this layer has no RoPE (SmolLM3), the rope kernels only store k and v
      const kCache = this.buffer('kv', `k cache ${i}`, kvBufferBytes(this.kvType, slots, kvDim));
      const vCache = this.buffer('kv', `v cache ${i}`, kvBufferBytes(this.kvType, slots, kvDim));
      const attnNormW = L.attnNorm && (await vector(L.attnNorm));
      const ffnNormW = L.ffnNorm && (await vector(L.ffnNorm));
      // gpt-oss: attention sinks (attention-sinks.ts) and attn_output's bias.
      const sinksW = L.sinks && (await vector(L.sinks));
      const attend = async (o: AttentionOptions) => this.adopt(await createAttention(e, { ...o, sinks: sinksW }));
      const oBias = L.oBias && (await createBiasAdd(e, { params: p, buf: a.x, offset: 0, bias: await vector(L.oBias), n: c.dim }));
      // Biases and q/k norms come between the product and RoPE, so then the product cannot rotate as it stores.
      const between: Step[] = [];
      const biases = [L.qBias, L.kBias, L.vBias];
      for (const [j, bt] of biases.entries()) {
        if (bt) between.push(await createBiasAdd(e, { params: p, buf: a.qkv, offset: a.qkvOff[j], bias: await vector(bt, [c.nHeads, c.nKvHeads, 0][j]), n: [qDim, kvDim, kvDim][j] }));
      }
      for (const [j, nt] of [L.qNorm, L.kNorm].entries()) {
        if (!nt) continue;
        const heads = [c.nHeads, c.nKvHeads][j];
        const whole = fam.qkNorm === 'full';
        between.push(await createGroupNorm(e, { params: p, buf: a.qkv, offset: a.qkvOff[j], w: await vector(nt, whole ? heads : 1), groups: whole ? 1 : heads, size: whole ? heads * c.headDim : c.headDim, eps }));
      }
      const ropeIo = { roles: ['q', 'k', 'v'] as ('q' | 'k' | 'v')[], table, kCache, vCache, headDim: c.headDim, ropeDim, kvDim, kvF16: this.kvF16 };
      const qkv = await products([L.q, L.k, L.v], a.qkv, a.qkvOff, attnNormW, between.length || blockKv ? undefined : ropeIo);
      const silu = fam.act === 'silu';
      // A MoE layer's router and chosen experts take the FFN's slots: products, activation, down (+= into x).
      const moe = moeBufs && (await createMoeFfn(e, L, { plan: plan.moe!, bufs: moeBufs, params: p, maxTokens: B, xn: a.xn, x: a.x, upload: (ti) => matrix(ti), uploadVector: (ti) => vector(ti), uploadConcat: (ts, interleave) => group(ts, interleave), stepBytes: (s, ts) => this.stepBytes.add(s, ts, true) }));
      const gateUp = moe ? moe.gateUp : await products([L.gate, L.up], a.gu, a.guOff, ffnNormW, undefined, silu);
      const downW = moe ? undefined : await matrix(L.down, 'ffn_down');
      const oW = await matrix(L.o, 'attn_output');
      const o = await residual(oW, a.att, L.attnPostNorm);
      const down = downW ? await residual(downW, a.gu, L.ffnPostNorm, silu ? { gluUpOffset: upOff } : {}) : { product: moe!.down, add: undefined };
      if (downW) chainLayers.push({ qkv: qkv.map((p) => p.w), o: oW, gateUp: gateUp.map((p) => p.w), down: downW, attnNorm: attnNormW!, ffnNorm: ffnNormW!, kCache, vCache, ropeDim });
      // Batched decode: the same RoPE + store and attention, each token at its own sequence's position (seq_table.wgsl).
      if (batch) batch.layers.push({
        ropeKv: await createRopeKv(e, { ...shape, ropeDim, params: p, qkv: a.qkv, kOffset: kOff, vOffset: vOff, table, kCache, vCache, seqs: batch.seqs }),
        attention: await attend({ ...shape, params: p, q, kCache, vCache, out: a.att, maxTokens: B, contextLength: ctx, scale: plan.attnScale, softcap: plan.attnSoftcap, window: lp.window, seqs: batch.seqs }),
      });
      this.layers.push({
        attnNorm: attnNormW && (await createRmsnorm(e, { params: p, x: a.x, w: attnNormW, y: a.xn, dim: c.dim, eps })),
        qkv,
        between,
        ropeKv: await createRopeKv(e, { ...shape, ropeDim, params: p, qkv: a.qkv, kOffset: kOff, vOffset: vOff, table, kCache, vCache }),
        attention: await attend({ ...shape, params: p, q, kCache, vCache, out: a.att, maxTokens: B, contextLength: ctx, ...chunking, scale: plan.attnScale, softcap: plan.attnSoftcap, window: lp.window }),
        o: o.product,
        attnAdd: o.add ?? oBias,
        ffnNorm: ffnNormW && (await createRmsnorm(e, { params: p, x: a.x, w: ffnNormW, y: a.xn, dim: c.dim, eps })),
        gateUp,
        swiglu: moe ? moe.act : await createSwiglu(e, { params: p, gu: a.gu, upOffset: upOff, ffnDim: c.ffnDim, act: fam.act }),
        down: down.product,
        ffnAdd: down.add,
        fused: {
          attnNorm: qkv.every((p) => p.step.normFused),
          ropeKv: qkv.every((p) => p.step.ropeFused),
          ffnNorm: gateUp.every((p) => p.step.normFused),
          // gate|up stores silu(gate)·up (CPU kernels), or ffn_down applies it as it loads x (GPU kernels).
          swiglu: down.product.gluFused || gateUp.every((p) => p.step.gluStored),
        },
      });
    }
    const outNormW = await vector(t.outputNorm);
    this.finalNorm = await createRmsnorm(e, { params: p, x: a.x, w: outNormW, y: a.xn, dim: c.dim, eps });
    const outW = t.output ? await matrix(t.output, 'output') : embd; // tied embeddings
    if (!t.output) this.stepBytes.add('output', [t.tokenEmbd], false);
    this.outputAll = await mm(outW, { ...io(a.xn, a.logits), norm: { x: a.x, w: outNormW, eps } });
    this.outputLast = await createMatmul(e, outW, { x: a.lastX, y: a.logits, params: a.paramsOne, maxTokens: 1 });
    if (plan.logitScale !== 1 || plan.finalSoftcap > 0) {
      const post = { x: a.logits, n: this.vocab, scale: plan.logitScale, softcap: plan.finalSoftcap };
      this.logitsPost = { all: await createLogitsPost(e, { ...post, params: p }), one: await createLogitsPost(e, { ...post, params: a.paramsOne }) };
      if (batch) batch.post = await createLogitsPost(e, { ...post, params: batch.paramsOut });
    }
    // Batched steps: the head over each request's last row (llama-batch.ts).
    if (batch) {
      batch.head = this.adopt(await createTileMatmul(e, outW, { x: batch.headIn, y: a.logits, params: batch.paramsOut, maxTokens: this.sequences }, this.sequences, q8x));
    }
    this.argmax = await createArgmax(e, { params: a.paramsOne, x: a.logits, out: a.best, n: this.vocab });
    this.batch = batch;
    if (opts.chains !== false && !blockKv && chainable(t, c.headDim)) {
      this.chains = await createLayerChains(e, c, {
        layers: chainLayers, embedding: embd, output: outW, outNorm: outNormW, ids: a.ids, logits: a.logits, params: a.params, paramsOne: a.paramsOne,
        table: tables[0], kvF16: this.kvF16, split: chunking.split, buffer: (label, bytes) => this.buffer('activations', label, bytes),
      });
      for (const ch of this.chains?.chains ?? []) this.owned.push(...ch.buffers);
      if (this.chains && batch) {
        this.batchChains = await createBatchChains(e, c, {
          S: this.sequences, layers: chainLayers, embedding: embd, outNorm: outNormW, ids: a.ids, params: a.params, xn: a.xn, seqs: batch.seqs,
          table: tables[0], kvF16: this.kvF16, q8x: q8x!, buffer: (label, bytes) => this.buffer('activations', label, bytes),
        });
        for (const ch of this.batchChains?.chains ?? []) this.owned.push(...ch.buffers);
      }
    }
    report(0.95, 'compiling kernels');

    // Warm-up: the first dispatch of a pipeline is when lavapipe/LLVM compiles
    // it, so run the batched path (2 tokens) and the decode path (1 token) once.
    // They write KV slots 0-1, which any real forward from pos 0 overwrites.
    const warm = Math.min(2, ctx, B);
    this.submit([0, 0].slice(0, warm), 0, 'all');
    this.submit([0], 0, 'argmax');
    this.submit([0], 0, 'argmax', 1, true);
    if (batch) this.submitBatch([{ seq: 0, tokens: [0], pos: 0 }, { seq: 1, tokens: [0], pos: 0 }]);
    await quietly(e, 1, () => e.device.queue.onSubmittedWorkDone());
    e.check();
    report(1, 'ready');
  }

  /** Takes ownership of a kernel's own buffers. */
  protected adopt<K extends Kernel>(k: K): K {
    for (const b of k.buffers ?? []) this.owned.push(b);
    return k;
  }

  /** Records and submits one batch (LlamaModel.submit); the warm-up at the end of build() runs through it. */
  protected abstract submit(tokens: number[], pos: number, tail: 'none' | 'all' | 'last' | 'argmax' | 'hidden' | 'rows', slot?: number, idsOnGpu?: boolean, base?: number): void;
  protected abstract submitBatch(rows: readonly BatchRow[]): number;

  /** GPU bytes by category (the engine's accounting). */
  memory(): GpuBytes {
    const m = this.engine.memory().byCategory;
    return { weights: m.weights, kv: m.kv, activations: m.activations, other: m.other + m.staging, total: m.weights + m.kv + m.activations + m.other + m.staging };
  }

  /** Frees every buffer the model made. The model is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const w of this.weights) destroyWeight(this.engine, w);
    this.prof?.destroy();
    for (const b of this.owned) this.engine.destroyBuffer(b);
    this.weights.length = 0;
    this.owned.length = 0;
  }
}
