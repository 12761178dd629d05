// Kernels on the plain path: no shader-f16, no subgroups.
import { kernelSuite } from './kernel-suite.ts';

kernelSuite([['f32, no subgroups', { noF16: true, noSubgroups: true }]]);
