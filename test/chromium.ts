// Headless Chromium for page tests (playwright-core drives Debian's chromium).
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.QLLM_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

/** Flags that give headless Chromium a WebGPU adapter without a GPU: SwiftShader (subgroups, no shader-f16). */
export const WEBGPU_FLAGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'];
