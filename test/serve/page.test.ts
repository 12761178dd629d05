// The chat page in headless Chromium (playwright-core): type a message, watch the
// reply stream in, press Stop mid-stream, check the memory panel, screenshot;
// and a reasoning model's reply: its thinking in a "Thinking…" block above the
// answer, sent back as reasoning_content apart from content.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenizerConfig } from '../../src/config.ts';
import { templateOf } from '../../src/serve/model-meta.ts';
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
    // Served before the page opens: its tok/s must not show on a fresh page.
    await fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'earlier client', max_tokens: 3 }) });
    const page = await browser.newPage();
    const errors: string[] = [];
    const failed: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    page.on('response', (r: import('playwright-core').Response) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
    await page.goto(s.url);
    // Memory panel: every category, and the f16 comparison.
    await page.waitForSelector('#memrows .row');
    const mem = await page.textContent('#memory');
    for (const label of ['weights', 'KV cache', 'activations', 'total', 'weights as f16']) expect(mem).toContain(label);
    expect(mem).toContain('119.21 MiB'); // fake weights: 125,000,000 bytes
    expect(mem).toContain('419.62 MiB'); // fake f16 weights: 440,000,000 bytes
    expect(await page.textContent('#model')).toContain('fake-model');
    // The CLI's wording for weights beside f16 (125,000,000 vs 440,000,000 bytes).
    expect(await page.textContent('#memnote')).toBe('weights: 119.21 MiB, f16 would need 419.62 MiB (3.52x smaller)');
    expect(await page.textContent('#toks')).toBe('– tok/s');
    expect(await page.inputValue('#maxtokens')).toBe('512');

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
    expect(await page.$$('.think')).toHaveLength(0); // a model without reasoning: no empty thinking block
    expect(await page.$$eval('.msg.user', (els: Element[]) => els.map((e) => e.textContent))).toEqual(['please talk forever', 'hello page']);
    // The page sent the whole conversation, including the stopped partial reply,
    // with its own reply length (the API default would run to the end of the context).
    expect(s.fake.lastPrompt).toContain('<|assistant|> tick0 tick1');
    expect(s.fake.lastOpts?.maxTokens).toBe(512);

    // A reply cut at the page's reply length says so, and the note is in view, not under the input box.
    // A short window, so that the conversation overflows and the last bubble must be scrolled to.
    await page.setViewportSize({ width: 1100, height: 320 });
    await page.fill('#maxtokens', '3');
    await page.dispatchEvent('#maxtokens', 'change');
    await page.fill('#input', 'forever again');
    await page.press('#input', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 3 && !document.querySelector('.msg.streaming'));
    expect(s.fake.lastOpts?.maxTokens).toBe(3);
    const cut = page.locator('.msg.assistant').nth(2).locator('.note');
    expect(await cut.textContent()).toMatch(/^cut at the reply length \(3 tokens\)/);
    const noteBox = await cut.boundingBox();
    const formBox = await page.locator('#form').boundingBox();
    const listBox = await page.locator('#messages').boundingBox();
    expect(noteBox && formBox && listBox).toBeTruthy();
    expect(noteBox!.y + noteBox!.height).toBeLessThanOrEqual(formBox!.y);
    expect(noteBox!.y + noteBox!.height).toBeLessThanOrEqual(listBox!.y + listBox!.height);
    await page.setViewportSize({ width: 1100, height: 700 });

    const shot = join(dir, 'chat-page.png');
    await page.screenshot({ path: shot });
    console.log(`chat page screenshot: ${shot}`);
    expect(existsSync(shot)).toBe(true);
    // The setting survives a reload.
    await page.reload();
    expect(await page.inputValue('#maxtokens')).toBe('3');

    await page.click('#new');
    expect(await page.$$('.msg')).toHaveLength(0);
    expect(errors).toEqual([]);
    expect(failed).toEqual([]); // no favicon 404, nothing else missing
  });

  it("shows a reasoning model's thinking apart from its answer, and sends it back as reasoning_content", async () => {
    // Qwen3's template and <think> replies: the server streams delta.reasoning_content, then delta.content.
    const QWEN3 = readFileSync(new URL('../tools/templates/Qwen-Qwen3-0.6B.jinja', import.meta.url), 'utf8');
    const template = templateOf({
      model: 'gpt2', pre: undefined, tokens: ['<|endoftext|>', '<|im_end|>'], scores: new Float32Array(2), tokenTypes: Int32Array.of(3, 3),
      merges: [], bosId: undefined, eosId: 1, unkId: undefined, padId: undefined, eotId: undefined, addBos: false, addEos: false, chatTemplate: QWEN3,
    } as TokenizerConfig);
    const script = (prompt: string) => {
      const last = prompt.slice(prompt.lastIndexOf('<|im_start|>user'));
      // Thinking that goes on until stopped (max_tokens is far beyond what the test waits for).
      if (last.includes('think long')) return ['<think>', '\nStep 0', ...Array.from({ length: 2000 }, (_, i) => ` step ${i + 1}`), '\n</think>\n\n', 'never'];
      // Markup in both parts: shown as text, never as HTML.
      return ['<think>', '\nIs <b>x</b>', ' safe', '?\n</th', 'ink>\n\n', 'Answer', ' <i>ok</i>', '.'];
    };
    const r = await startFake({ meta: { template } }, { delayMs: 20, script });
    const page = await browser.newPage();
    try {
      const errors: string[] = [];
      page.on('pageerror', (e: Error) => errors.push(e.message));
      const bodies: { messages: Record<string, unknown>[] }[] = [];
      page.on('request', (q: import('playwright-core').Request) => { if (q.url().endsWith('/v1/chat/completions')) bodies.push(q.postDataJSON()); });
      await page.goto(r.url);
      await page.waitForSelector('#memrows .row');

      // While it thinks: an open "Thinking…" block, no answer yet; Stop collapses it.
      await page.fill('#input', 'think long');
      await page.press('#input', 'Enter');
      await page.waitForFunction(() => {
        const d = document.querySelector('.msg.assistant.streaming details.think') as HTMLDetailsElement | null;
        return !!d && d.open && d.querySelector('summary')?.textContent === 'Thinking…' && (d.querySelector('.think-body')?.textContent ?? '').includes('step 3');
      });
      expect(await page.textContent('.msg.assistant .answer')).toBe('');
      expect(await page.textContent('.msg.assistant .think-body')).toMatch(/^Step 0 step 1 step 2 step 3/);
      await page.click('#stop');
      await page.waitForFunction(() => document.querySelector('.msg.assistant .note')?.textContent === 'stopped');
      expect(await page.$eval('.msg.assistant details.think', (d) => (d as HTMLDetailsElement).open)).toBe(false);
      expect(await page.textContent('.msg.assistant .think summary')).toMatch(/^Thought for \d+\.\d s$/);

      // A whole reply: every change to the answer finds the thinking collapsed (watched, not timed).
      await page.evaluate(() => {
        const w = window as unknown as { seen: { answer: string; open: boolean; summary: string }[] };
        w.seen = [];
        new MutationObserver(() => {
          const m = document.querySelectorAll('.msg.assistant')[1];
          const d = m?.querySelector('details.think') as HTMLDetailsElement | null;
          if (d) w.seen.push({ answer: m.querySelector('.answer')?.textContent ?? '', open: d.open, summary: d.querySelector('summary')?.textContent ?? '' });
        }).observe(document.getElementById('messages') as HTMLElement, { subtree: true, childList: true, characterData: true, attributes: true });
      });
      await page.fill('#input', 'Hi there');
      await page.press('#input', 'Enter');
      await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 2 && !document.querySelector('.msg.streaming'));
      const second = page.locator('.msg.assistant').nth(1);
      expect(await second.locator('.think-body').textContent()).toBe('Is <b>x</b> safe?');
      expect(await second.locator('.answer').textContent()).toBe('Answer <i>ok</i>.');
      expect(await second.locator('b, i').count()).toBe(0);
      expect(await second.locator('details.think').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
      expect(await second.locator('.think summary').textContent()).toMatch(/^Thought for \d+\.\d s$/);
      const seen = await page.evaluate(() => (window as unknown as { seen: { answer: string; open: boolean; summary: string }[] }).seen);
      expect(seen.some((v) => v.answer === '' && v.open && v.summary === 'Thinking…')).toBe(true);
      expect(seen.filter((v) => v.answer !== '').length).toBeGreaterThan(0);
      expect(seen.filter((v) => v.answer !== '').every((v) => !v.open && v.summary.startsWith('Thought for'))).toBe(true);

      // The next request carries each reply's thinking as reasoning_content, apart from content.
      await page.fill('#input', 'Hi again');
      await page.press('#input', 'Enter');
      await page.waitForFunction(() => document.querySelectorAll('.msg.assistant').length === 3 && !document.querySelector('.msg.streaming'));
      expect(bodies).toHaveLength(3);
      const sent = bodies[2].messages;
      expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
      expect(sent[1].content).toBe('');
      expect(sent[1].reasoning_content).toMatch(/^Step 0 step 1 step 2 step 3/);
      expect(sent[3]).toEqual({ role: 'assistant', content: 'Answer <i>ok</i>.', reasoning_content: 'Is <b>x</b> safe?' });
      // The server took it, and the template left the earlier thinking out of the prompt.
      expect(await page.$$('.msg.error')).toHaveLength(0);
      expect(r.fake.lastPrompt).toContain('<|im_start|>assistant\nAnswer <i>ok</i>.<|im_end|>');
      expect(r.fake.lastPrompt).not.toContain('Is <b>x</b>');
      expect(await page.locator('.msg.assistant').nth(2).locator('.answer').textContent()).toBe('Answer <i>ok</i>.');
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      await r.close();
    }
  });
});
