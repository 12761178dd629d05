// Attention with sinks (gpt-oss; llama.cpp's ggml_soft_max_add_sinks): each
// head h has a learned logit sink_h that joins the softmax's denominator and
// weighs no value. With M = max(m, sink_h), m the running max of the scores:
//   out_h = Σ_j e^(s_j − M) v_j / (Σ_j e^(s_j − M) + e^(sink_h − M))
// (M as ggml-cpu takes it, so a sink far above the scores cannot overflow).
// Every attention kernel ends by normalising with 1/l; with sinks that one
// line changes: attention.wgsl unsplit, attention_subgroup.wgsl (lavapipe),
// attention_merge.wgsl (GPUs' split path). So gpt-oss runs the same fast
// paths as every other family, and the others' kernels stay as they were.
import { GpuError } from '../errors.ts';

type SinkKernel = 'attention' | 'attention_subgroup' | 'attention_merge';

// The kernel's normalisation (its exact text) and its replacement with the sink.
const EDITS: Record<SinkKernel, [string, string]> = {
  attention: ['let inv = 1.0 / l;', 'let ms = max(m, sinks[h]); let inv = exp(m - ms) / (l * exp(m - ms) + exp(sinks[h] - ms));'],
  attention_subgroup: [
    'let inv = 1.0 / l[g];',
    'let sk = sinks[h0 + g]; let ms = max(m[g], sk); let inv = exp(m[g] - ms) / (l[g] * exp(m[g] - ms) + exp(sk - ms));',
  ],
  attention_merge: [
    'out[idx] = acc / l;',
    'let sk = sinks[th % N_HEADS]; let ms = max(mx, sk); out[idx] = acc * (exp(mx - ms) / (l * exp(mx - ms) + exp(sk - ms)));',
  ],
};

/** `code` of `kernel` with the sinks (f32 [nHeads]) at `binding` in its normalisation. */
export function withSinks(kernel: SinkKernel, code: string, binding: number): string {
  const [line, sink] = EDITS[kernel];
  if (code.split(line).length !== 2) throw new GpuError(`internal error: ${kernel}.wgsl must have '${line}' once, which the sink variant replaces`);
  return `${code.replace(line, sink)}\n@group(0) @binding(${binding}) var<storage, read> sinks: array<f32>;`;
}
