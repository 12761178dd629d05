// filterNativeStderr in a child process whose stderr is a pipe, a file opened for
// append and a truncating file: what native code writes to fd 2 meanwhile is
// filtered line by line where fd 2 can be reopened, and stderr works after.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../shared.ts';

const exec = promisify(execFile);
const WARNING = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';

// fs.writeSync(2, …) stands in for Dawn's fprintf(stderr, …): both write to fd 2 directly.
const script = (module: string) => `
import { writeSync } from 'node:fs';
import { DAWN_LIMIT_WARNING, filterNativeStderr } from ${JSON.stringify(module)};
const r = filterNativeStderr(() => { writeSync(2, ${JSON.stringify(`${WARNING}\nnative says hi\n${WARNING.replace('Uniform', 'Storage')}\n`)}); return 42; }, DAWN_LIMIT_WARNING);
process.stderr.write('after ' + r + '\\n');
console.error('console too');
`;

/** Runs the probe through sh with stderr redirected as `redirect` says; returns what reached stderr. */
async function probe(redirect: (file: string) => string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qllm-nst-'));
  const file = join(dir, 'probe.mts');
  await writeFile(file, script(join(repoRoot, 'src/gpu/native-stderr.ts')));
  const cmd = `'${process.execPath}' --import '${join(repoRoot, 'node_modules/tsx/dist/esm/index.mjs')}' '${file}'`;
  const err = join(dir, 'err.txt');
  const { stdout } = await exec('/bin/sh', ['-c', redirect(cmd).replaceAll('ERR', `'${err}'`)]);
  return stdout || readFile(err, 'utf8');
}

describe.skipIf(process.platform !== 'linux')('filterNativeStderr', () => {
  it('into a pipe: drops the matching lines native code wrote to fd 2, passes the rest on, and stderr works after', async () => {
    expect(await probe((cmd) => `${cmd} 2>&1 >/dev/null | cat`)).toBe('native says hi\nafter 42\nconsole too\n');
  });

  it('into a file opened for append (2>>): the same', async () => {
    expect(await probe((cmd) => `echo before >ERR; ${cmd} 2>>ERR`)).toBe('before\nnative says hi\nafter 42\nconsole too\n');
  });

  it('leaves a truncating file (2>file; its offset may be shared, as with 2>&1) alone, warnings included', async () => {
    const out = await probe((cmd) => `${cmd} 2>ERR`);
    expect(out).toContain(WARNING);
    expect(out.endsWith(`native says hi\n${WARNING.replace('Uniform', 'Storage')}\nafter 42\nconsole too\n`)).toBe(true);
  });
});
