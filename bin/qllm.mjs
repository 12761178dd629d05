#!/usr/bin/env node
// The `qllm` command. qllm ships TypeScript sources; tsx compiles them on load
// (a few ms per file, cached), so there is no build step between a clone and `npx qllm`.
import { register } from 'tsx/esm/api';

register();
process.env.XDG_RUNTIME_DIR ??= '/tmp'; // Dawn's Vulkan loader warns without it on headless Linux
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
