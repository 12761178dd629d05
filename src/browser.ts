// qllm in a web page (`import { loadModel } from 'qllm/browser'`, or the
// bundle `qllm serve` hosts at /qllm.browser.js). The same model API as in
// Node; the model comes from a URL (read with HTTP Range requests) or a
// File/Blob (read by slices), and weights stream into GPU buffers in bounded
// chunks, so the page never holds the whole file. Shaders are compiled into
// the bundle (scripts/build.mjs provides `qllm:shaders`).
import shaders from 'qllm:shaders';
import type { LoadOptions } from './api.ts';
import { UsageError } from './errors.ts';
import { urlByteSource } from './gguf/http-source.ts';
import { openGguf } from './gguf/reader.ts';
import { blobByteSource } from './gguf/source.ts';
import { registerShaderSources } from './gpu/engine.ts';
import { loadGguf, type QllmModel } from './model-api.ts';

export type * from './api.ts';
export { GgufError, GpuError, UsageError } from './errors.ts';
export { formatBytes, formatWeightSavings } from './info.ts';
export type { QllmModel } from './model-api.ts';

registerShaderSources(shaders);

/** Where a page's model comes from: a URL (absolute or relative to the page), or a File/Blob. */
export type ModelSource = string | URL | Blob;

/** LoadOptions, plus headers for a URL's requests (e.g. `Authorization` for a `qllm serve --api-key`). */
export interface BrowserLoadOptions extends LoadOptions {
  headers?: Record<string, string>;
}

/** Loads a GGUF model onto this browser's GPU. Throws GgufError/GpuError/UsageError with a one-line fix. */
export async function loadModel(source: ModelSource, opts: BrowserLoadOptions = {}): Promise<QllmModel> {
  if (!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    throw new UsageError('this browser has no WebGPU (navigator.gpu): use a recent Chrome, Edge or Safari, served over https or from localhost');
  }
  let label: string;
  let file: Awaited<ReturnType<typeof openGguf>>;
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    label = (source as { name?: string }).name || 'model.gguf';
    file = await openGguf(blobByteSource(source, label), label);
  } else if (typeof source === 'string' || source instanceof URL) {
    const url = new URL(source, (globalThis as { location?: { href: string } }).location?.href).href;
    const last = url.replace(/[?#].*$/, '').replace(/^.*\//, '');
    try {
      label = decodeURIComponent(last) || url;
    } catch {
      label = last || url; // a stray % in the name
    }
    file = await openGguf(await urlByteSource(url, { label, headers: opts.headers }), label);
  } else {
    throw new UsageError('loadModel needs a URL, a File or a Blob of a .gguf model');
  }
  return loadGguf(file, label, opts);
}
