// MoE kernels as a real GPU runs them (split matvec, wide workgroups), forced on this adapter.
import { moeSuite } from './moe-suite.ts';

moeSuite([['gpu tuning', { tuning: 'gpu' }]]);
