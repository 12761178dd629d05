// The llama model's GPU-side records: its steps, layers and activation
// buffers (src/models/llama.ts builds and runs them).
import type { GpuWeight } from '../gpu/weights.ts';
import type { Kernel } from './kernels.ts';

export type Step = Pick<Kernel, 'encode'>;

/** A product with its profile label ('attn_q+attn_k+attn_v' when tensors of one type were concatenated). */
export interface Product { label: string; step: Step & { normFused: boolean; ropeFused: boolean; gluStored: boolean }; w: GpuWeight }

/**
 * One block's steps in the order they run. Optional ones exist only where the
 * family has them: pre-norms (absent for OLMo2), `between` (q/k/v biases and
 * q/k norms, between the products and RoPE), and the residual adds that norm
 * or scale a branch output before it joins x (without them, o and down add
 * into x themselves).
 */
export interface Layer {
  attnNorm?: Step; qkv: Product[]; between: Step[]; ropeKv: Step; attention: Step; o: Step; attnAdd?: Step;
  ffnNorm?: Step; gateUp: Product[]; swiglu: Step; down: Step & { gluFused: boolean }; ffnAdd?: Step;
  /** Small steps one token skips because the products do them (decided at load). */
  fused: { attnNorm: boolean; ropeKv: boolean; ffnNorm: boolean; swiglu: boolean };
}

/** Byte size rounded up to the storage-binding offset alignment (256 on every adapter we know, at most). */
export const align256 = (n: number) => Math.ceil(n / 256) * 256;

/** Activations, f32 unless noted; B = maxBatch. */
export interface Acts {
  ids: GPUBuffer; // u32 [B]
  x: GPUBuffer; // residual [B, dim]
  xn: GPUBuffer; // normed [B, dim]
  qkv: GPUBuffer; // regions q [B, nHeads*headDim], k [B, nKv*headDim], v [B, nKv*headDim] at offsets qkvOff
  qkvOff: [number, number, number];
  att: GPUBuffer; // attention output [B, nHeads*headDim]
  gu: GPUBuffer; // regions gate [B, ffn], up [B, ffn] at offsets guOff
  guOff: [number, number];
  lastX: GPUBuffer; // the last token's normed row [dim]
  branch?: GPUBuffer; // [B, dim]: o's or down's output before its post-norm/scale and residual add (families that have them)
  logits: GPUBuffer; // [B, vocab]
  best: GPUBuffer; // u32 [1] argmax
  params: GPUBuffer; // uniform {nTokens, pos}
  paramsOne: GPUBuffer; // uniform {1, 0}: the last-token-only tail
  readLogits: GPUBuffer; // MAP_READ [B, vocab]
  readBest: [GPUBuffer, GPUBuffer]; // MAP_READ u32: two, so a step queued ahead can copy its argmax while the previous one is read
}

/** onProgress that passes on only fractions above the last one it passed (callers draw bars from them). */
export function increasing(onProgress?: (fraction: number, label: string) => void): (fraction: number, label: string) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (f, label) => {
    if (!(f > last)) return;
    last = f;
    onProgress?.(f, label);
  };
}
