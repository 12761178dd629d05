// Starts createServer(FakeModel) on 127.0.0.1 with a free port and collects its log lines.
import net from 'node:net';
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

/** Sends `text` as it is over a socket (for request lines fetch would refuse to send); the reply's status and body. */
export function rawRequest(url: string, text: string): Promise<{ status: number; headers: string; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => sock.end(text));
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => { data += d; });
    sock.on('error', reject);
    sock.on('close', () => {
      const cut = data.indexOf('\r\n\r\n');
      const head = data.slice(0, cut);
      let body = data.slice(cut + 4);
      // A chunked body: keep only the chunks' data.
      if (/transfer-encoding: chunked/i.test(head)) body = body.replace(/(^|\r\n)[0-9a-f]+\r\n/gi, '').replace(/\r\n$/, '');
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0), headers: head, body });
    });
  });
}
