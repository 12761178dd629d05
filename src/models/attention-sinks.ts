// Attention with sinks (gpt-oss; llama.cpp's ggml_soft_max_add_sinks): each
// head h has a learned logit sink_h that joins the softmax's denominator and
// weighs no value:
//   out_h = Σ_j e^(s_j − m) v_j / (Σ_j e^(s_j − m) + e^(sink_h − m))
// It is attention.wgsl run unsplit (one invocation per token and head, its
// one-pass online softmax; f16, f32 or block-type caches; window and scale as
// createAttention), with that denominator at the end. Only this family uses
// it, so the shared attention kernels keep their fast paths untouched; the
// cost is the general kernel instead of lavapipe's subgroup one. Batched
// decode (seqs: each token its own sequence's next) reads the per-token
// table as createAttention does (seq_table.wgsl).
import { GpuError } from '../errors.ts';
import type { Engine } from '../gpu/engine.ts';
import { type AttentionOptions, attentionScoreConstants, type Kernel } from './kernels.ts';
import { attentionKvSource, isBlockKv } from './kv-cache.ts';

/** The line of attention.wgsl that normalises an unsplit result, and its replacement with the sink. */
const NORMALISE = 'let inv = 1.0 / l;';
const WITH_SINK = 'let inv = 1.0 / (l + exp(sinks[h] - m));';

/** createAttention's unsplit kernel with `sinks` (f32 [nHeads]) in every softmax. */
export async function createSinkAttention(engine: Engine, o: AttentionOptions & { sinks: GPUBuffer }): Promise<Kernel> {
  const score = attentionScoreConstants(o);
  const kv = attentionKvSource((n) => engine.shader(n), o.kvType && isBlockKv(o.kvType) ? o.kvType : o.kvF16 ? 'f16' : 'f32', o.kvSlots ?? o.contextLength, o.nKvHeads * o.headDim);
  const half = o.headDim / 2;
  const base = engine.shader('attention', { HALF: half, KV: kv.code });
  if (!base.includes(NORMALISE)) throw new GpuError(`internal error: attention.wgsl lacks '${NORMALISE}', which the sink variant replaces`);
  const seq = o.seqs ? engine.shader('seq_table', { BINDING: 7 }) : engine.shader('seq_uniform');
  const code = `${base.replace(NORMALISE, WITH_SINK)}\n${seq}\n@group(0) @binding(8) var<storage, read> sinks: array<f32>;`;
  const WG = engine.cpuTuning ? 8 : 32;
  const c = { N_HEADS: o.nHeads, N_KV: o.nKvHeads, HEAD_DIM: o.headDim, ...kv.constants, ...score, SPLIT: 0, CHUNK: o.contextLength, WG };
  const pipeline = await engine.pipeline({ op: 'attention_sinks', seqs: !!o.seqs, ...c }, code, c);
  // The kernel's `dims` uniform and (unused unsplit) partials, as createAttention allocates them.
  const dims = engine.createBuffer('other', 'attention dims', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  engine.device.queue.writeBuffer(dims, 0, new Uint32Array([half, 0, 0, 0]));
  const part = engine.createBuffer('activations', 'attention partials', 16, GPUBufferUsage.STORAGE);
  const bind = (b: GPUBuffer | GPUBufferBinding): GPUBufferBinding => ('buffer' in b ? b : { buffer: b });
  const bindGroup = engine.device.createBindGroup({
    label: 'attention_sinks',
    layout: pipeline.getBindGroupLayout(0),
    entries: [o.params, o.q, o.kCache, o.vCache, o.out, dims, part, ...(o.seqs ? [o.seqs] : [])].map((b, binding) => ({ binding, resource: bind(b) })).concat({ binding: 8, resource: { buffer: o.sinks } }),
  });
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  return {
    label: 'attention',
    buffers: [dims, part],
    encode(pass, nTokens) {
      const groups = Math.ceil((nTokens * o.nHeads) / WG);
      const y = Math.ceil(groups / max);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.ceil(groups / y), y);
    },
  };
}
