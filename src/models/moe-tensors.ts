// The tensors of a mixture-of-experts layer, as llama.cpp's loaders create
// them (qwen3moe.cpp, olmoe.cpp, llama.cpp with n_expert > 0): the router
// ffn_gate_inp [experts, dim] and three 3-D expert tensors, ggml dims
// [dim, ff, experts] (gate, up) and [ff, dim, experts] (down), i.e. per expert
// a [ff, dim] or [dim, ff] matrix, experts one after another. Qwen2-MoE
// (qwen2moe.cpp) adds a shared expert: its gate ffn_gate_inp_shexp, ggml dims
// [dim] (one logit a token), and a dense FFN ffn_{gate,up}_shexp [sharedFf,
// dim] and ffn_down_shexp [dim, sharedFf] (rows, cols); all four are required
// there, as llama.cpp's loader requires them.
import { tensorNames } from '../config.ts';
import type { TensorInfo } from '../gguf/types.ts';
import type { MoePlan } from './family.ts';

export interface MoeLayerTensors {
  gateInp: TensorInfo;
  gate: TensorInfo;
  up: TensorInfo;
  down: TensorInfo;
  /** gpt-oss (MoePlan.oai): the router's bias [E] and each expert's bias, ggml dims [ff, E] (gate, up) and [dim, E] (down). */
  gateInpBias?: TensorInfo;
  gateBias?: TensorInfo;
  upBias?: TensorInfo;
  downBias?: TensorInfo;
  /** Qwen2-MoE (MoePlan.sharedFf > 0): the shared expert's gate [dim] and FFN, [sharedFf, dim] (gate, up) and [dim, sharedFf] (down). */
  gateInpShexp?: TensorInfo;
  gateShexp?: TensorInfo;
  upShexp?: TensorInfo;
  downShexp?: TensorInfo;
}

/**
 * Finds and checks layer il's MoE tensors. need(name, why) returns a tensor or
 * throws naming it; shape(t, rows, cols) checks a 2-D one; fail(what) makes the
 * one-line error for a bad 3-D shape.
 */
export function moeTensors(
  il: number, m: MoePlan, dim: number,
  need: (name: string, why?: string) => TensorInfo,
  shape: (t: TensorInfo, rows: number, cols: number) => TensorInfo,
  fail: (what: string) => Error,
): MoeLayerTensors {
  const n = tensorNames.layer(il);
  const why = ` (a mixture-of-experts layer: ${m.experts} experts)`;
  const experts = (name: string, rows: number, cols: number) => {
    const t = need(name, why);
    const [c, r, e] = t.dims;
    if (t.dims.length !== 3 || c !== cols || r !== rows || e !== m.experts) {
      throw fail(`tensor ${name} has dims [${t.dims.join(', ')}] but the metadata implies [${cols}, ${rows}, ${m.experts}] (cols, rows, experts)`);
    }
    return t;
  };
  const biasWhy = ' (gpt-oss experts have biases)';
  const sharedWhy = ' (a layer with a shared expert: Qwen2-MoE)';
  const sf = m.sharedFf;
  return {
    gateInp: shape(need(n.ffn_gate_inp, why), m.experts, dim),
    gate: experts(n.ffn_gate_exps, m.ff, dim),
    up: experts(n.ffn_up_exps, m.ff, dim),
    down: experts(n.ffn_down_exps, dim, m.ff),
    ...(m.oai
      ? {
          gateInpBias: shape(need(n.ffn_gate_inp_bias, biasWhy), 1, m.experts),
          gateBias: shape(need(n.ffn_gate_exps_bias, biasWhy), m.experts, m.ff),
          upBias: shape(need(n.ffn_up_exps_bias, biasWhy), m.experts, m.ff),
          downBias: shape(need(n.ffn_down_exps_bias, biasWhy), m.experts, dim),
        }
      : {}),
    ...(sf
      ? {
          gateInpShexp: shape(need(n.ffn_gate_inp_shexp, sharedWhy), 1, dim),
          gateShexp: shape(need(n.ffn_gate_shexp, sharedWhy), sf, dim),
          upShexp: shape(need(n.ffn_up_shexp, sharedWhy), sf, dim),
          downShexp: shape(need(n.ffn_down_shexp, sharedWhy), dim, sf),
        }
      : {}),
  };
}
