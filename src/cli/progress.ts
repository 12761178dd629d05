// A one-line progress bar on stderr, shown only when stderr is a TTY (never in pipes or logs).
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr) {
  const tty = stream.isTTY === true;
  let last = -1;
  return {
    update(fraction: number, detail = '') {
      if (!tty) return;
      const pct = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
      if (pct === last && !detail) return;
      last = pct;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      stream.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}% ${detail}`.slice(0, (stream.columns || 100) - 1).padEnd(Math.min(100, (stream.columns || 100) - 1)));
    },
    done() {
      if (tty && last >= 0) stream.write('\r\x1b[K');
    },
  };
}
