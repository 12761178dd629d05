// MoE kernels with shader-f16 and subgroups on (where the adapter has them).
import { moeSuite } from './moe-suite.ts';

moeSuite([['default', {}]]);
