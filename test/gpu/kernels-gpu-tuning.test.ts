// The kernels as a real GPU runs them (split matvec, 64-wide workgroups, no
// CPU-rasteriser shortcuts), forced on whatever adapter this machine has, so
// that the GPU configuration is checked against the CPU reference even where
// no GPU is present.
import { kernelSuite } from './kernel-suite.ts';

kernelSuite([['gpu tuning', { tuning: 'gpu' }]]);
