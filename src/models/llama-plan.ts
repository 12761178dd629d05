// Load-time decisions of the forward pass that depend on the family: which
// models a decode chain can run, and the row order NEOX models upload in.
import type { GgufFile, TensorInfo } from '../gguf/types.ts';
import { tensorShape } from '../gpu/weights.ts';
import type { ModelTensors } from './llama-tensors.ts';
import { permuteHeads } from './rope.ts';

/**
 * A decode chain (llama-chain.ts) composes the llama pattern only: pre-norms
 * on load, RoPE and the KV store on the q|k|v rows' store, plain softmax
 * attention, SwiGLU stored by gate|up, branch outputs added straight into x,
 * one rope table (a layer may have none), no scales or caps, a dense FFN. Any
 * other family decodes step by step (the chains are not widened for it).
 */
export function chainable(t: ModelTensors, headDim: number): boolean {
  const p = t.plan, f = p.family;
  return (
    f.preNorm !== false && !f.postNorm && !f.qkNorm && f.act === 'silu' && !p.moe &&
    t.layers.every((L) => !L.qBias && !L.kBias && !L.vBias && L.attnNorm && L.ffnNorm) &&
    p.layers.every((l) => l.window === 0 && l.rope <= 0) &&
    p.embedScale === 1 && p.residualScale === 1 && p.logitScale === 1 && p.finalSoftcap === 0 && p.attnSoftcap === 0 &&
    p.attnScale === 1 / Math.sqrt(headDim)
  );
}

/**
 * A GGUF source whose listed tensors (q and k, by name, with their head count)
 * read with each head's rows in `order` (rope.ts neoxOrder). A tensor is read
 * whole once and reordered; the two most recent stay cached, since an upload
 * reads q|k|v in monotonic chunks that may straddle two tensors.
 */
export function permutedRows(file: GgufFile, heads: readonly (readonly [string, number])[], order: Int32Array): Pick<GgufFile, 'readTensor'> {
  const byName = new Map(heads);
  const cache: { name: string; bytes: Uint8Array }[] = [];
  return {
    async readTensor(t: TensorInfo, start = 0, length = t.nBytes - start): Promise<Uint8Array> {
      const h = byName.get(t.name);
      if (!h) return file.readTensor(t, start, length);
      let hit = cache.find((x) => x.name === t.name);
      if (!hit) {
        const raw = await file.readTensor(t);
        const rowBytes = raw.byteLength / tensorShape(t).rows;
        hit = { name: t.name, bytes: permuteHeads(raw, h, order, rowBytes) };
        cache.unshift(hit);
        cache.length = Math.min(cache.length, 2);
      }
      return hit.bytes.slice(start, start + length);
    },
  };
}
