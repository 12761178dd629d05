// Weight bytes (as in the file) that each profiled step reads per token,
// summed over layers: what `bench` turns into GB/s per step and in total.
import type { TensorInfo } from '../gguf/types.ts';

/** The profile label of a layer run as one dispatch (llama-chain.ts). */
export const CHAINED = 'layer (chained)';

export class StepBytes {
  private readonly bytes = new Map<string, number>();
  /** Labels of products inside the layers (a decode chain runs them as one step). */
  private readonly layer = new Set<string>();

  add(step: string, ts: readonly TensorInfo[], inLayer: boolean): void {
    if (inLayer) this.layer.add(step);
    this.bytes.set(step, (this.bytes.get(step) ?? 0) + ts.reduce((s, t) => s + t.nBytes, 0));
  }

  byStep(): ReadonlyMap<string, number> {
    return this.bytes;
  }

  /** By the steps a one-token profile shows: with chains, the layers' products as one CHAINED step. */
  byDecodeStep(chained: boolean): ReadonlyMap<string, number> {
    if (!chained) return this.bytes;
    const out = new Map<string, number>();
    let layers = 0;
    for (const [step, b] of this.bytes) {
      if (this.layer.has(step)) layers += b;
      else out.set(step, b);
    }
    return out.set(CHAINED, layers);
  }
}
