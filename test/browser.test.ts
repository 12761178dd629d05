// The browser bundle (dist/qllm.browser.js, `qllm/browser`) in headless
// Chromium on SwiftShader's WebGPU (no shader-f16, subgroups): the same model
// API as Node, the model read from a URL with Range requests or from a Blob,
// and llama.cpp's greedy ids. The page must come from http://127.0.0.1 (a
// secure context) and Chromium needs --enable-unsafe-webgpu.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendFile } from '../src/serve/files.ts';
import { CHROMIUM, haveChromium, WEBGPU_FLAGS } from './chromium.ts';
import { hasShared, repoRoot, sharedModel, sharedRef } from './shared.ts';

if (!haveChromium && !process.env.CI) console.log(`skipping the browser bundle test: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set QLLM_CHROMIUM)`);

const PAGE = `<!doctype html><title>qllm bundle test</title><script type="module">
import { loadModel, UsageError } from '/qllm.browser.js';
window.generate = async (how) => {
  const source = how === 'blob' ? await (await fetch('/model.gguf')).blob() : '/model.gguf';
  const m = await loadModel(source, { contextLength: 64 });
  const ids = [];
  let text = '';
  for await (const t of m.generate('Once upon a time', { temperature: 0, maxTokens: 48 })) { ids.push(t.tokenId); text += t.text; }
  const out = { ids, text, adapter: m.info.adapter, memory: m.memory(), f16: m.info.f16WeightBytes, name: m.info.name };
  m.dispose();
  return out;
};
window.chat = async () => {
  const m = await loadModel('/model.gguf', { contextLength: 128 });
  const g = m.chat([{ role: 'system', content: 'Tell stories.' }, { role: 'user', content: 'Once upon a time' }], { temperature: 0.8, seed: 7, maxTokens: 8 });
  const ids = [];
  for await (const t of g) ids.push(t.tokenId);
  const out = { promptIds: await g.promptIds, ids, bos: m.detokenize(m.tokenize('Hello world', { addBos: true })) };
  m.dispose();
  return out;
};
window.bad = async () => {
  try { await loadModel('/missing.gguf'); return 'loaded'; } catch (e) { return e.name + ': ' + e.message; }
};
window.usageErrorClass = typeof UsageError;
</script>`;

describe.skipIf(!hasShared || (!haveChromium && !process.env.CI))('the browser bundle in headless Chromium', () => {
  let server: Server;
  let url = '';
  const ranges: number[] = [];
  let fullReads = 0;
  const dir = mkdtempSync(join(tmpdir(), 'qllm-browser-'));
  const bundle = join(dir, 'qllm.browser.js');
  let browser: import('playwright-core').Browser;
  let page: import('playwright-core').Page;
  const errors: string[] = [];

  beforeAll(async () => {
    const b = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build.mjs'), '--browser', `--outfile=${bundle}`], { encoding: 'utf8' });
    expect(b.status, b.stderr).toBe(0);
    server = createServer(async (req, res) => {
      if (req.url === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end(PAGE);
      } else if (req.url === '/qllm.browser.js') {
        await sendFile(req, res, bundle, 'text/javascript');
      } else if (req.url === '/model.gguf') {
        const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        if (m) ranges.push(Number(m[2]) - Number(m[1]) + 1);
        else fullReads++;
        await sendFile(req, res, sharedModel('stories260K.gguf'), 'application/octet-stream');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBGPU_FLAGS });
    page = await browser.newPage();
    page.on('pageerror', (e: Error) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => typeof (window as unknown as { generate?: unknown }).generate === 'function');
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ref = hasShared ? (JSON.parse(readFileSync(sharedRef('stories260K-f32.kvf32.greedy48.json'), 'utf8')) as { generated_ids: number[]; generated_text: string }) : undefined;

  it('loads from a URL by Range requests and generates llama.cpp greedy ids', async () => {
    const r = (await page.evaluate(() => (window as unknown as { generate(h: string): Promise<unknown> }).generate('url'))) as {
      ids: number[];
      text: string;
      adapter: string;
      memory: { weights: number; total: number };
      name: string;
    };
    expect(r.ids).toEqual(ref?.generated_ids);
    expect(r.text).toBe(ref?.generated_text);
    expect(r.adapter).toMatch(/browser/);
    expect(r.memory.weights).toBeGreaterThan(1_000_000); // stories260K's F32 weights on the GPU
    expect(r.name).toBe('llama'); // the file's general.name
    // Every model read was a Range request (never the whole file at once), and few.
    expect(fullReads).toBe(0);
    expect(ranges.length).toBeGreaterThan(0);
    expect(ranges.length).toBeLessThan(40);
    expect(errors).toEqual([]);
  }, 120_000);

  it('loads from a Blob the same way', async () => {
    const r = (await page.evaluate(() => (window as unknown as { generate(h: string): Promise<unknown> }).generate('blob'))) as { ids: number[] };
    expect(r.ids).toEqual(ref?.generated_ids);
  }, 120_000);

  it('renders chat templates and samples there as in Node', async () => {
    const r = (await page.evaluate(() => (window as unknown as { chat(): Promise<unknown> }).chat())) as { promptIds: number[]; ids: number[]; bos: string };
    const { loadModel } = await import('../src/model-api.ts');
    const m = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 128 });
    try {
      const g = m.chat([{ role: 'system', content: 'Tell stories.' }, { role: 'user', content: 'Once upon a time' }], { maxTokens: 1 });
      for await (const _ of g);
      expect(r.promptIds).toEqual(await g.promptIds);
    } finally {
      m.dispose();
    }
    expect(r.ids).toHaveLength(8);
    expect(r.bos).toBe('Hello world'); // control tokens are not text
  }, 120_000);

  it('names a missing model in one line', async () => {
    const msg = await page.evaluate(() => (window as unknown as { bad(): Promise<string> }).bad());
    expect(msg).toMatch(/^GgufError: cannot fetch missing\.gguf: HTTP 404/);
    expect(msg).not.toContain('\n');
  });
});
