// Kernels with shader-f16 and subgroups on (where the adapter has them); the
// mixed combinations too when QLLM_GPU_ALL_PATHS=1 (~40 s more of cold LLVM compiles).
import type { EngineOptions } from '../../src/gpu/engine.ts';
import { kernelSuite } from './kernel-suite.ts';

kernelSuite([
  ['f16+subgroups', {}],
  ...(process.env.QLLM_GPU_ALL_PATHS ? ([['f16, no subgroups', { noSubgroups: true }], ['f32+subgroups', { noF16: true }]] as [string, EngineOptions][]) : []),
]);
