#!/usr/bin/env node
// The `qllm` command. The npm package ships built JavaScript (dist/, from
// `npm run build`) and runs it with plain Node. A clone of the repository runs
// its TypeScript sources through tsx (a devDependency) instead, so that an edit
// needs no rebuild: src/ exists only in a clone.
import { existsSync } from 'node:fs';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // Dawn's Vulkan loader warns without it on headless Linux
const fromSources = existsSync(new URL('../src/cli/main.ts', import.meta.url));
if (fromSources) (await import('tsx/esm/api')).register();
const { main } = await import(fromSources ? '../src/cli/main.ts' : '../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
