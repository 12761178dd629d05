// Starts createServer(FakeModel) on 127.0.0.1 with a free port and collects its log lines.
import { createServer, type ServerOptions } from '../../src/serve/server.ts';
import { FakeModel, type FakeModelOptions } from './fake-model.ts';

export async function startFake(opts: ServerOptions = {}, model: FakeModelOptions = {}) {
  const fake = new FakeModel(model);
  const logs: string[] = [];
  const srv = createServer(fake, { port: 0, log: (l) => logs.push(l), ...opts });
  const { url } = await srv.listen();
  return { fake, logs, url, srv, close: () => srv.close() };
}

/** Reads an SSE body into its `data:` payloads (strings as sent). */
export async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split('\n\n').filter((e) => e.trim() !== '').map((e) => {
    if (!e.startsWith('data: ')) throw new Error(`not an SSE data event: ${JSON.stringify(e)}`);
    return e.slice(6);
  });
}

export const until = async (cond: () => boolean, ms = 5000) => {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};
