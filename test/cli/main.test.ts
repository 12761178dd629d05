// The `qllm` dispatcher and the help texts: `qllm help <command>`, and every
// flag a command takes appears in its --help.
import { describe, expect, it } from 'vitest';
import { qllm } from './helpers.ts';

describe('qllm help', () => {
  it("'qllm help run' prints run's help, as 'qllm run --help' does", async () => {
    const a = await qllm(['help', 'run']);
    const b = await qllm(['run', '--help']);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^usage: qllm run /);
    expect(a.stdout).toBe(b.stdout);
  });

  it.each([
    ['bench', ['-c N', '--json', '--profile', '-p N', '-n N', '-r N']],
    ['perplexity', ['--chunks N', '--json', '-c, --ctx N', '-f, --file FILE']],
    ['run', ['--special', '-c, --ctx N']],
    ['chat', ['--special', '--system TEXT']],
    ['info', ['-c, --ctx N', '--json']],
    ['tokenize', ['stdin']],
  ])('%s --help lists its flags', async (cmd, flags) => {
    const r = await qllm([cmd, '--help']);
    expect(r.code).toBe(0);
    for (const f of flags) expect(r.stdout).toContain(f);
  });
});
