// The download progress shown on stderr by `qllm pull` and by model commands given an
// hf: spec: a bar with bytes, rate and ETA (TTY only), and notes as whole lines.
import { progressBar } from '../cli/progress.ts';

export interface DownloadProgress {
  onProgress: (done: number, total: number | undefined) => void;
  log: (line: string) => void;
  /** Clears the bar; call before printing anything else. */
  done: () => void;
}

export function downloadProgress(fileName: string, prefix: string, stream: NodeJS.WriteStream = process.stderr): DownloadProgress {
  const bar = progressBar(fileName.length > 24 ? `${fileName.slice(0, 21)}...` : fileName, stream);
  const rate = rateMeter();
  let lastDraw = 0;
  return {
    onProgress: (done, total) => {
      // Redraw at most 10 times a second, and once at the end.
      const now = performance.now();
      if (now - lastDraw < 100 && done !== total) return;
      lastDraw = now;
      bar.update(total ? done / total : 0, rate(done, total));
    },
    log: (l) => {
      bar.done();
      stream.write(`${prefix}: ${l}\n`);
    },
    done: () => bar.done(),
  };
}

/** "1.20 GiB / 2.90 GiB  35.1 MiB/s  ETA 0:48", the rate over the last few seconds. */
function rateMeter() {
  const samples: [number, number][] = [];
  return (done: number, total: number | undefined): string => {
    const now = performance.now();
    samples.push([now, done]);
    while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
    const [t0, d0] = samples[0];
    const bps = now > t0 ? ((done - d0) * 1000) / (now - t0) : 0;
    let eta = '';
    if (total && bps > 0) {
      const s = Math.round((total - done) / bps);
      eta = `  ETA ${Math.floor(s / 3600) ? `${Math.floor(s / 3600)}:` : ''}${String(Math.floor(s / 60) % 60).padStart(Math.floor(s / 3600) ? 2 : 1, '0')}:${String(s % 60).padStart(2, '0')}`;
    }
    return `${fmtBytes(done)}${total ? ` / ${fmtBytes(total)}` : ''}  ${fmtBytes(bps)}/s${eta}`;
  };
}

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 2 : 0)} ${u[i]}`;
}

/** How a finished download was checked, for the line printed after it. */
export const verifiedText = (r: { verifiedBy: string; sha256: string }) =>
  r.verifiedBy === 'none' ? 'a whole GGUF; no sha256 known, not verified' : `sha256 ${r.sha256} verified (${r.verifiedBy === 'given' ? '--sha256' : 'hub'})`;
