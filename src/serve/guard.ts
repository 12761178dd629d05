// Who may talk to `qllm serve`. Without --api-key it trusts the machine, so it
// must not be reachable from web pages the user happens to visit:
// - Host: only loopback names (and --host's own). A page can point its own
//   name at 127.0.0.1 (DNS rebinding) and then read replies as same-origin;
//   its requests still carry its name in Host.
// - Origin: a browser names the page behind every cross-origin request; only
//   the server's own page, non-browser clients and --cors origins get through.
// (readJson's application/json rule closes the no-preflight "simple" POSTs.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiError, preview } from './errors.ts';
import { isLoopback } from './http-util.ts';

export interface GuardOptions { host: string; apiKey?: string; cors?: string }

/** The name in a Host header: lowercased, without port, brackets or a trailing dot. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') >>> 0) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined; // "null" (sandboxed frames, file: pages)
  }
}

/** Throws 403 for a foreign Host (without an API key) or a cross-origin page not allowed by --cors; sets the CORS headers. */
export function guard(req: IncomingMessage, res: ServerResponse, o: GuardOptions): void {
  const host = req.headers.host;
  if (!o.apiKey && host !== undefined) {
    const name = hostName(host);
    if (!isLoopback(name) && name !== hostName(o.host)) {
      throw apiError(403, `Host ${preview(host)} is not this machine's: without --api-key, qllm serve answers only requests addressed to localhost, 127.0.0.1 or [::1]; pass --api-key KEY to serve other names`, 'forbidden_host');
    }
  }
  if (o.cors) {
    res.setHeader('Access-Control-Allow-Origin', o.cors);
    if (o.cors !== '*') res.setHeader('Vary', 'Origin');
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  // The server's own page. Host only, not the scheme: behind a TLS proxy the page is https:// and the hop to us http.
  if (host !== undefined && originHost(origin) === host.toLowerCase()) return;
  if (o.cors === '*' || origin === o.cors) return;
  const o80 = origin.slice(0, 80);
  throw apiError(403, `cross-origin request from the page at ${o80}: qllm serve answers its own page and non-browser clients; start it with --cors ${o80} to allow that page`, 'forbidden_origin');
}
