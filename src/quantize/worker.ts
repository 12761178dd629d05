// Worker thread for `quantize --threads N`: encodes row ranges it is sent.
// Message in: { id, type, x: Float32Array, rowLen }; out: { id, q: Uint8Array } or { id, error }.
import { parentPort } from 'node:worker_threads';
import { quantize } from '../quant/quantize.ts';

parentPort?.on('message', (m: { id: number; type: number; x: Float32Array; rowLen: number }) => {
  try {
    const q = quantize(m.type, m.x, m.rowLen);
    parentPort?.postMessage({ id: m.id, q }, [q.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort?.postMessage({ id: m.id, error: (e as Error).message });
  }
});
