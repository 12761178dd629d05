// Where the shared real test data lives (../shared beside the checkout), and a
// way to skip — loudly — the tests that need it when it is absent.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const sharedDir = resolve(repoRoot, '..', 'shared');
export const hasShared = existsSync(join(sharedDir, 'models', 'stories260K.gguf'));
if (!hasShared) console.warn(`[qllm tests] ${sharedDir} is absent: tests that use the shared real models are skipped`);

export const sharedModel = (name: string) => join(sharedDir, 'models', name);
export const sharedRef = (name: string) => join(sharedDir, 'reference', name);
