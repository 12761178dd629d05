// Embedding lookup: out[t, :] = dequantized row ids[t] of a (quantized)
// token_embd × scale (f32), for t < nTokens. One dispatch per weight part.
import { GpuError } from '../errors.ts';
import type { Engine } from './engine.ts';
import { kernelParts, partInfo } from './matmul.ts';
import type { GpuWeight } from './weights.ts';

export interface GatherIO {
  /** u32[maxTokens] token ids (must be < w.rows). */
  ids: GPUBuffer;
  /** f32 [maxTokens, cols]. */
  out: GPUBuffer;
  params: GPUBuffer;
  maxTokens: number;
  /** Each row is multiplied by this in f32 (Gemma: sqrt(dim), Granite: embedding_scale). Default 1 (exact). */
  scale?: number;
}

const WG = 64;

export async function createGather(engine: Engine, w: GpuWeight, io: GatherIO): Promise<{ encode(pass: GPUComputePassEncoder, nTokens: number): void }> {
  if (io.out.size < io.maxTokens * w.cols * 4) throw new GpuError(`gather ${w.name}: out buffer (${io.out.size} B) is smaller than ${io.maxTokens} × ${w.cols} f32`);
  if (io.ids.size < io.maxTokens * 4) throw new GpuError(`gather ${w.name}: ids buffer (${io.ids.size} B) is smaller than ${io.maxTokens} u32`);
  const scale = io.scale ?? 1;
  if (!Number.isFinite(scale)) throw new GpuError(`gather ${w.name}: scale ${scale} must be finite`);
  const { snippet, enables, dequant } = kernelParts(engine, w, false);
  const code = engine.shader('gather_generic', { ENABLES: enables, DEQUANT: dequant });
  const pipe = await engine.pipeline({ kind: 'gather', format: snippet, f16: engine.f16, wg: WG, scale }, code, { WG, SCALE: scale });
  const groupsX = Math.ceil(Math.ceil(w.cols / 32) / WG);
  const bgs = w.parts.map((p, i) =>
    engine.device.createBindGroup({
      label: `${w.name}.gather[${i}]`,
      layout: pipe.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: p.buffer } },
        { binding: 1, resource: { buffer: io.ids } },
        { binding: 2, resource: { buffer: io.out } },
        { binding: 3, resource: { buffer: partInfo(engine, w, p, 0, [0], `${w.name}.ginfo[${i}]`) } },
      ],
    }),
  );
  return {
    encode(pass, nTokens) {
      if (!(nTokens >= 1 && nTokens <= io.maxTokens)) throw new GpuError(`gather ${w.name}: nTokens ${nTokens} is outside 1..${io.maxTokens}`);
      pass.setPipeline(pipe);
      for (const bg of bgs) {
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(groupsX, nTokens);
      }
    },
  };
}
