// qllm's public library API.
export type * from './api.ts';
export { loadModel, QllmModel } from './model-api.ts';
export { GgufError, GpuError, UsageError } from './errors.ts';
export { describeModel, type ModelReport } from './info.ts';
