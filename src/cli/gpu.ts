// `qllm gpu [--json] [--backend vulkan|opengles] [--no-f16] [--no-subgroups]`:
// the WebGPU adapter qllm would use, its features and the limits that matter
// (largest storage binding and buffer). Fails with one line saying how to get
// an adapter when there is none.
import { Engine, fmtBytes } from '../gpu/engine.ts';
import { UsageError } from '../errors.ts';
import { parse } from './args.ts';

const HELP = `usage: qllm gpu [--json] [--backend default|vulkan|opengles] [--no-f16] [--no-subgroups]
  Prints the WebGPU adapter (vendor, architecture, backend, description), whether
  shader-f16, subgroups and timestamp-query are available, and the storage limits.
  --json   one JSON object with the same fields`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      json: { type: 'boolean' },
      backend: { type: 'string' },
      'no-f16': { type: 'boolean' },
      'no-subgroups': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'gpu',
  );
  if (values.help) return void console.log(HELP);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}': usage: qllm gpu [--json]`);
  const backend = values.backend ?? 'default';
  if (backend !== 'default' && backend !== 'vulkan' && backend !== 'opengles') throw new UsageError(`--backend ${backend} is not one of default, vulkan, opengles`);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const engine = await Engine.create({ backend, noF16: values['no-f16'], noSubgroups: values['no-subgroups'] });
  try {
    const a = engine.adapter;
    const has = (f: string) => engine.adapterFeatures.has(f);
    const report = {
      vendor: a.vendor,
      architecture: a.architecture,
      description: a.description,
      backend: a.backend,
      software: a.software,
      compatibility_mode: engine.compat,
      features: {
        shader_f16: has('shader-f16'),
        subgroups: has('subgroups'),
        timestamp_query: has('timestamp-query'),
      },
      subgroup_size: { min: a.subgroupMinSize, max: a.subgroupMaxSize },
      limits: {
        maxStorageBufferBindingSize: engine.limits.maxStorageBufferBindingSize,
        maxBufferSize: engine.limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: engine.limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: engine.limits.maxComputeInvocationsPerWorkgroup,
      },
    };
    if (values.json) return void console.log(JSON.stringify(report, null, 2));
    const yn = (b: boolean) => (b ? 'yes' : 'no');
    console.log(
      [
        `adapter       ${a.description || '(no description)'}`,
        `vendor        ${a.vendor || '-'}   architecture ${a.architecture || '-'}   backend ${a.backend}${a.software ? '   (software rasteriser: slow)' : ''}${engine.compat ? '   (compatibility mode)' : ''}`,
        `shader-f16    ${yn(report.features.shader_f16)}`,
        `subgroups     ${yn(report.features.subgroups)}${report.features.subgroups ? ` (size ${a.subgroupMinSize}..${a.subgroupMaxSize})` : ''}`,
        `timestamps    ${yn(report.features.timestamp_query)}`,
        `max storage binding  ${fmtBytes(engine.limits.maxStorageBufferBindingSize)}`,
        `max buffer           ${fmtBytes(engine.limits.maxBufferSize)}`,
      ].join('\n'),
    );
  } finally {
    engine.destroy();
  }
}
