// Kernels on Dawn's OpenGL ES backend in compatibility mode (no f16, no
// subgroups, another shader compiler). Skips where no GLES adapter exists
// (even on CI: the Vulkan path is the one CI requires).
import { kernelSuite } from './kernel-suite.ts';

kernelSuite([['opengles', { backend: 'opengles' }]]);
