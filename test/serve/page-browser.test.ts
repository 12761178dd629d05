// The chat page's in-browser mode, in headless Chromium on SwiftShader's
// WebGPU: `qllm serve` hosts the library bundle (/qllm.browser.js) and its
// model (/model.gguf, by Range requests); the page switches to "run in this
// browser", loads stories260K onto the page's own adapter, answers a message
// without the server's model, and shows that adapter and its memory.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateOptions } from '../../src/api.ts';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { CHROMIUM, haveChromium, WEBGPU_FLAGS } from '../chromium.ts';
import { hasShared, repoRoot, sharedModel } from '../shared.ts';

describe.skipIf(!hasShared || (!haveChromium && !process.env.CI))('the chat page running the model in the browser', () => {
  let model: QllmModel;
  let srv: QllmServer;
  let url = '';
  let serverChats = 0;
  const ranges: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'qllm-page-browser-'));
  let browser: import('playwright-core').Browser;

  beforeAll(async () => {
    const b = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build.mjs'), '--browser', `--outfile=${join(dir, 'qllm.browser.js')}`], { encoding: 'utf8' });
    expect(b.status, b.stderr).toBe(0);
    model = await loadModel(sharedModel('stories260K.gguf'), { contextLength: 256 });
    // Count the server model's generations: in-browser chat must not use it.
    const chat = model.chat.bind(model);
    model.chat = (m, o?: GenerateOptions) => {
      serverChats++;
      return chat(m, o);
    };
    srv = createServer(model, { port: 0, log: () => {}, modelPath: sharedModel('stories260K.gguf'), browserBundle: join(dir, 'qllm.browser.js') });
    srv.server.on('request', (req) => {
      if (req.url === '/model.gguf' && req.headers.range) ranges.push(req.headers.range);
    });
    ({ url } = await srv.listen());
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBGPU_FLAGS });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    model?.dispose();
    // QLLM_KEEP_SCREENSHOTS=1 keeps the screenshot to look at.
    if (!process.env.QLLM_KEEP_SCREENSHOTS) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the bundle and the model file with Range support', async () => {
    const js = await fetch(`${url}/qllm.browser.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await js.text()).length).toBeGreaterThan(10_000);
    const part = await fetch(`${url}/model.gguf`, { headers: { Range: 'bytes=0-3' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 0-3/${statSync(sharedModel('stories260K.gguf')).size}`);
    expect(new TextDecoder().decode(await part.arrayBuffer())).toBe('GGUF');
    const head = await fetch(`${url}/model.gguf`, { method: 'HEAD' });
    expect(head.headers.get('accept-ranges')).toBe('bytes');
  });

  it('answers a message in this browser, showing its adapter and memory', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    const errors: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    await page.goto(url);
    // Server mode first: the server's adapter (lavapipe here).
    await page.waitForSelector('#memrows .row');
    expect(await page.textContent('#adapter')).toMatch(/^adapter \(the server\): /);
    await page.waitForSelector('#whererow:not([hidden])');
    await page.selectOption('#where', 'browser');
    await page.waitForFunction(() => (document.querySelector('#adapter')?.textContent ?? '').startsWith('adapter (this browser)'), undefined, { timeout: 60_000 });
    expect(await page.textContent('#adapter')).toMatch(/swiftshader.*browser/i);
    const mem = (await page.textContent('#memory')) as string;
    expect(mem).toContain('1.12 MiB'); // stories260K's F32 weights, on the page's adapter
    expect(await page.textContent('#memnote')).toMatch(/^weights: 1\.12 MiB, f16 would need .*larger than f16/);
    expect(ranges.length).toBeGreaterThan(0);

    await page.fill('#input', 'Tell me a story.');
    await page.press('#input', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 1 && !document.querySelector('.msg.streaming'), undefined, { timeout: 60_000 });
    const reply = (await page.textContent('.msg.assistant')) as string;
    expect(reply.trim().length).toBeGreaterThan(0);
    expect(reply).not.toContain('<s>');
    expect(await page.$$('.msg.error')).toHaveLength(0);
    expect(await page.textContent('#toks')).toMatch(/\d+(\.\d)? tok\/s/);
    expect(serverChats).toBe(0); // the server's model was not asked

    const shot = join(dir, 'chat-page-in-browser.png');
    await page.screenshot({ path: shot });
    console.log(`in-browser chat page screenshot: ${shot}`);
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    expect(errors).toEqual([]);
  }, 120_000);
});
