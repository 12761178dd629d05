// The chat page's in-browser mode, in headless Chromium on SwiftShader's
// WebGPU: `qllm serve` hosts the library bundle (/qllm.browser.js) and its
// model (/model.gguf, by Range requests); the page switches to "run in this
// browser", loads stories260K onto the page's own adapter, answers a message
// without the server's model, and shows that adapter and its memory.
// A stand-in bundle whose chat() thinks (Token.reasoning) checks that the page
// shows the thinking apart and hands it back as ChatMessage.reasoning.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateOptions } from '../../src/api.ts';
import { loadModel, type QllmModel } from '../../src/model-api.ts';
import { createServer, type QllmServer } from '../../src/serve/server.ts';
import { CHROMIUM, haveChromium, WEBGPU_FLAGS } from '../chromium.ts';
import { hasShared, repoRoot, sharedModel } from '../shared.ts';
import { startFake } from './helpers.ts';

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

/**
 * A stand-in for /qllm.browser.js with the library's shapes (loadModel, Model.chat
 * yielding Token.reasoning, Generation.stats): it records each chat()'s messages
 * and thinks until the test calls window.release().
 */
const THINKING_BUNDLE = `
const chats = (globalThis.chats = []);
let open = null;
globalThis.release = () => open?.();
export const formatWeightSavings = () => 'stand-in weights';
export async function loadModel(url, opts) {
  opts?.onProgress?.(1);
  return {
    info: { name: 'thinker', architecture: 'qwen3', contextLength: 2048, vocabSize: 10, adapter: 'stand-in adapter', f16WeightBytes: 2000 },
    memory: () => ({ weights: 1000, kv: 10, activations: 10, other: 0, total: 1020 }),
    chat(messages, o) {
      chats.push(JSON.parse(JSON.stringify(messages)));
      const gate = new Promise((r) => { open = r; });
      let done;
      const stats = new Promise((r) => { done = r; });
      async function* tokens() {
        yield { text: '', tokenId: 5, reasoning: 'Weigh <b>it</b>' };
        await gate;
        yield { text: 'Done', tokenId: 6, reasoning: ' up.' };
        yield { text: ' <i>now</i>.', tokenId: -1 };
        done({ promptTokens: 3, generatedTokens: 3, ttftMs: 1, prefillTokPerS: 100, decodeTokPerS: 50, stopReason: 'eos' });
      }
      const it = tokens();
      return { [Symbol.asyncIterator]: () => it, stats, promptIds: Promise.resolve([]), message: stats.then(() => ({ role: 'assistant', content: 'Done <i>now</i>.', reasoning: 'Weigh <b>it</b> up.' })) };
    },
  };
}
`;

describe.skipIf(!haveChromium && !process.env.CI)('the chat page in this browser with a model that thinks (stand-in bundle)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qllm-page-think-'));
  const bundle = join(dir, 'qllm.browser.js');
  let s: Awaited<ReturnType<typeof startFake>>;
  let browser: import('playwright-core').Browser;
  beforeAll(async () => {
    writeFileSync(bundle, THINKING_BUNDLE);
    // The bundle doubles as the "model file": the stand-in never reads it.
    s = await startFake({ modelPath: bundle, browserBundle: bundle });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBGPU_FLAGS });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows Token.reasoning in a Thinking… block apart from the answer, and passes it back as ChatMessage.reasoning', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    const errors: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    await page.goto(s.url);
    await page.waitForSelector('#whererow:not([hidden])');
    await page.selectOption('#where', 'browser');
    await page.waitForFunction(() => (document.querySelector('#adapter')?.textContent ?? '') === 'adapter (this browser): stand-in adapter');

    await page.fill('#input', 'Think first.');
    await page.press('#input', 'Enter');
    // The model is held mid-thought: an open block, no answer yet.
    await page.waitForFunction(() => document.querySelector('.msg.assistant.streaming .think-body')?.textContent === 'Weigh <b>it</b>');
    expect(await page.$eval('.msg.assistant details.think', (d) => (d as HTMLDetailsElement).open)).toBe(true);
    expect(await page.textContent('.msg.assistant .think summary')).toBe('Thinking…');
    expect(await page.textContent('.msg.assistant .answer')).toBe('');
    await page.evaluate(() => (window as unknown as { release: () => void }).release());
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 1 && !document.querySelector('.msg.streaming'));
    expect(await page.textContent('.msg.assistant .think-body')).toBe('Weigh <b>it</b> up.');
    expect(await page.textContent('.msg.assistant .answer')).toBe('Done <i>now</i>.');
    expect(await page.$$('.msg.assistant b, .msg.assistant i')).toHaveLength(0);
    expect(await page.$eval('.msg.assistant details.think', (d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await page.textContent('.msg.assistant .think summary')).toMatch(/^Thought for \d+\.\d s$/);

    // The next chat() gets the thinking as the library's `reasoning`, apart from content.
    await page.fill('#input', 'Again.');
    await page.press('#input', 'Enter');
    await page.waitForFunction(() => (window as unknown as { chats: unknown[] }).chats.length === 2);
    await page.evaluate(() => (window as unknown as { release: () => void }).release());
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 2 && !document.querySelector('.msg.streaming'));
    const chats = await page.evaluate(() => (window as unknown as { chats: Record<string, unknown>[][] }).chats);
    expect(chats[0]).toEqual([{ role: 'user', content: 'Think first.' }]);
    expect(chats[1]).toEqual([
      { role: 'user', content: 'Think first.' },
      { role: 'assistant', content: 'Done <i>now</i>.', reasoning: 'Weigh <b>it</b> up.' },
      { role: 'user', content: 'Again.' },
    ]);
    expect(s.fake.started).toBe(0); // the server's model was not asked
    expect(await page.$$('.msg.error')).toHaveLength(0);
    expect(errors).toEqual([]);
  }, 60_000);
});
