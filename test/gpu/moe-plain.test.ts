// MoE kernels without shader-f16 or subgroups, and on Dawn's OpenGL ES
// compatibility backend (no f16, no subgroups; skipped where absent).
import { moeSuite } from './moe-suite.ts';

moeSuite([['f32, no subgroups', { noF16: true, noSubgroups: true }], ['opengles', { backend: 'opengles' }]]);
