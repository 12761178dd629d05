// `qllm serve` as a child process for the server scripts (load-test.ts,
// bench-parallel.ts): started on a free port, returned once /health answers.
import { spawn } from 'node:child_process';

/** `qllm serve MODEL --port 0 …` as a child process, once it answers /health. */
export async function spawnServe(model: string, extra: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [new URL('../bin/qllm.mjs', import.meta.url).pathname, 'serve', model, '--port', '0', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  const found = await new Promise<string>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`qllm serve exited (${code}): ${err.slice(-400)}`)));
  });
  for (;;) {
    const h = await fetch(`${found}/health`).then((r) => r.status, () => 0);
    if (h === 200) break;
    if (child.exitCode !== null) throw new Error('qllm serve exited while loading');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url: found,
    stop: () => new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill('SIGTERM');
    }),
  };
}
