// The chat page in headless Chromium (playwright-core): type a message, watch the
// reply stream in, press Stop mid-stream, check the memory panel, screenshot.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFake } from './helpers.ts';

const CHROMIUM = process.env.QLLM_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) console.log(`skipping the chat page test: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set QLLM_CHROMIUM)`);

describe.skipIf(!haveChromium && !process.env.CI)('chat page in headless Chromium', () => {
  let s: Awaited<ReturnType<typeof startFake>>;
  const dir = mkdtempSync(join(tmpdir(), 'qllm-page-'));
  let browser: import('playwright-core').BrowserContext;
  beforeAll(async () => {
    s = await startFake({}, { delayMs: 40 });
    const { chromium } = await import('playwright-core');
    // A fresh profile directory per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1100, height: 700 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('streams a reply, stops it mid-stream, and shows GPU memory beside f16', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    await page.goto(s.url);
    // Memory panel: every category, and the f16 comparison.
    await page.waitForSelector('#memrows .row');
    const mem = await page.textContent('#memory');
    for (const label of ['weights', 'KV cache', 'activations', 'total', 'weights as f16']) expect(mem).toContain(label);
    expect(mem).toContain('119.21 MiB'); // fake weights: 125,000,000 bytes
    expect(mem).toContain('419.62 MiB'); // fake f16 weights: 440,000,000 bytes
    expect(await page.textContent('#model')).toContain('fake-model');

    // An endless reply, to be stopped once a few words have streamed in.
    await page.fill('#input', 'please talk forever');
    await page.click('#send');
    await page.waitForFunction(() => (document.querySelector('.msg.assistant')?.textContent ?? '').includes('tick3'));
    expect(await page.isEnabled('#stop')).toBe(true);
    await page.click('#stop');
    await page.waitForFunction(() => document.querySelector('.msg.assistant .note')?.textContent === 'stopped');
    const reply = (await page.textContent('.msg.assistant')) as string;
    expect(reply).toMatch(/^tick0 tick1 tick2 tick3/);
    const words = reply.replace('stopped', '').trim().split(' ').length;
    // The server saw the abort and freed the model.
    await page.waitForFunction(() => !document.querySelector('#send')?.hasAttribute('disabled'));
    const deadline = Date.now() + 5000;
    while (s.fake.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(s.fake.active).toBe(0);
    expect(s.fake.aborted).toBe(1);
    expect(words).toBeLessThan(200);
    expect(await page.textContent('#toks')).toMatch(/\d+(\.\d)? tok\/s/);

    // A normal reply streams to its end; the user's message is shown too.
    await page.fill('#input', 'hello page');
    await page.press('#input', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 2 && !document.querySelector('.msg.streaming'));
    const replies = await page.$$eval('.msg.assistant', (els: Element[]) => els.map((e) => e.textContent));
    expect(replies[1]).toBe('You said: hello page');
    expect(await page.$$eval('.msg.user', (els: Element[]) => els.map((e) => e.textContent))).toEqual(['please talk forever', 'hello page']);
    // The page sent the whole conversation, including the stopped partial reply.
    expect(s.fake.lastPrompt).toContain('<|assistant|> tick0 tick1');

    const shot = join(dir, 'chat-page.png');
    await page.screenshot({ path: shot });
    console.log(`chat page screenshot: ${shot}`);
    expect(existsSync(shot)).toBe(true);

    await page.click('#new');
    expect(await page.$$('.msg')).toHaveLength(0);
    expect(errors).toEqual([]);
  });
});
