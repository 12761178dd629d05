// Round-trip error of each format on real weights: the `src` tensor of
// ../shared's quant-test-vectors file (stories260K weights, 64 rows of 256),
// quantized by qllm's reference quantizers and dequantized again.
// Prints README's "block-wise scales" table. Usage: npx tsx scripts/quant-error.ts
import { openGguf } from '../src/gguf/reader.ts';
import { dequantize } from '../src/quant/dequant.ts';
import { quantize } from '../src/quant/quantize.ts';
import { bitsPerWeight, typeByName } from '../src/quant/table.ts';

const file = await openGguf(new URL('../../shared/models/quant-test-vectors-stories260K-64rows.gguf', import.meta.url).pathname);
const t = file.tensor('src')!;
const bytes = await file.readTensor(t);
const src = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
let power = 0;
for (const v of src) power += v * v;
power /= src.length;
console.log('| type | scheme | bits/weight | RMSE | NMSE | SNR (dB) |');
console.log('|---|---|---|---|---|---|');
const schemes: Record<string, string> = {
  Q8_0: 'symmetric, 8-bit, one f16 scale per 32', Q5_0: 'symmetric, 5-bit, scale per 32', Q5_1: 'asymmetric, 5-bit, scale + min per 32',
  Q4_0: 'symmetric, 4-bit, scale per 32', Q4_1: 'asymmetric, 4-bit, scale + min per 32', Q6_K: 'symmetric, 6-bit, 8-bit sub-scales per 16, super-block 256',
  Q5_K: 'asymmetric, 5-bit, 6-bit sub-scales/mins per 32, super-block 256', Q4_K: 'asymmetric, 4-bit, 6-bit sub-scales/mins per 32, super-block 256',
  Q3_K: 'symmetric, 3-bit, 6-bit sub-scales per 16, super-block 256', Q2_K: 'asymmetric, 2-bit, 4-bit sub-scales/mins per 16, super-block 256',
};
for (const name of Object.keys(schemes)) {
  const ti = typeByName(name)!;
  const back = dequantize(ti.id, quantize(ti.id, src), src.length);
  let se = 0;
  for (let i = 0; i < src.length; i++) se += (back[i] - src[i]) ** 2;
  const mse = se / src.length;
  console.log(`| ${name} | ${schemes[name]} | ${bitsPerWeight(ti).toFixed(2)} | ${Math.sqrt(mse).toExponential(2)} | ${(mse / power).toExponential(2)} | ${(10 * Math.log10(power / mse)).toFixed(1)} |`);
}
await file.close();
