// What `qllm pull` accepts: an http(s) URL, or hf:owner/repo[@revision]/path/file.gguf
// which is https://huggingface.co/owner/repo/resolve/<revision or main>/path/file.gguf.
import { UsageError } from '../errors.ts';

export interface Source {
  url: string;
  fileName: string;
  /** For hf: specs, the parts (revision defaults to main). */
  hf?: { owner: string; repo: string; revision: string; path: string };
}

export function resolveSource(spec: string, hubEndpoint = process.env.HF_ENDPOINT || 'https://huggingface.co'): Source {
  if (spec.startsWith('hf:')) {
    const m = /^hf:([\w.-]+)\/([\w.-]+)(?:@([\w./-]+?))?\/(.+)$/.exec(spec);
    const dots = (x: string | undefined) => x?.split('/').some((p) => p === '' || p === '.' || p === '..') ?? false;
    if (!m || m[4].endsWith('/') || dots(m[4]) || dots(m[1]) || dots(m[2]) || dots(m[3])) {
      throw new UsageError(`'${spec}' is not hf:owner/repo/path/file.gguf: e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_0.gguf`);
    }
    const [, owner, repo, rev, path] = m;
    const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
    return {
      url: `${hubEndpoint.replace(/\/+$/, '')}/${owner}/${repo}/resolve/${enc(rev ?? 'main')}/${enc(path)}`,
      fileName: path.split('/').at(-1)!,
      hf: { owner, repo, revision: rev ?? 'main', path },
    };
  }
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw new UsageError(`'${spec}' is neither a URL nor hf:owner/repo/path/file.gguf: pass e.g. https://host/model.gguf`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`'${spec}' uses ${u.protocol}; qllm pull speaks http: and https: only`);
  const last = decodeURIComponent(u.pathname.split('/').at(-1) ?? '');
  if (!last || last === '.' || last === '..' || /[\\/\0]/.test(last)) throw new UsageError(`'${spec}' does not end in a file name: pass the URL of the .gguf file itself`);
  return { url: u.href, fileName: last };
}
