// The shared atomic-write helper: unique exclusive temp names, whole-file results
// under concurrency, cleanup on failure and of temps left by dead processes.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { atomicWriteFile, createTemp, processAlive, tempPathFor } from '../../src/util/atomic-write.ts';

const dir = mkdtempSync(join(tmpdir(), 'qllm-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic writes', () => {
  it('temp names are unique per call and carry the pid', () => {
    const p = join(dir, 'x.bin');
    const a = tempPathFor(p);
    expect(a).toMatch(new RegExp(`^${p.replace(/[.\\/]/g, '\\$&')}\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));
    expect(tempPathFor(p)).not.toBe(a);
  });

  it('concurrent writers to one path leave one whole content and no temp', async () => {
    const p = join(dir, 'race.bin');
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(200_000 + i, i + 1));
    await Promise.all(bodies.map((b) => atomicWriteFile(p, b)));
    const got = readFileSync(p);
    expect(bodies.some((b) => b.equals(got))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('race.bin.'))).toEqual([]);
  });

  it('a discarded temp leaves neither the target nor the temp; an existing target is kept', async () => {
    const p = join(dir, 'keep.bin');
    writeFileSync(p, 'old');
    const t = await createTemp(p);
    await t.write(Buffer.from('new, half written'));
    await t.discard();
    expect(existsSync(t.tmp)).toBe(false);
    expect(readFileSync(p, 'utf8')).toBe('old');
  });

  it('removes temps left by a process that is gone, keeps those of live ones', async () => {
    const p = join(dir, 'stale.bin');
    // 2^22 is the largest pid_max Linux allows: pid 2^22+1 never exists.
    const dead = `${p}.${2 ** 22 + 1}.0123abcd.tmp`;
    const alive = `${p}.${process.pid}.89abcdef.tmp`;
    writeFileSync(dead, 'x');
    writeFileSync(alive, 'y');
    expect(processAlive(2 ** 22 + 1)).toBe(false);
    await atomicWriteFile(p, 'data');
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(alive)).toBe(true);
    expect(readFileSync(p, 'utf8')).toBe('data');
  });

  it('a missing directory is a one-line UsageError naming the path', async () => {
    const p = join(dir, 'no', 'such', 'dir.bin');
    const e = await atomicWriteFile(p, 'x').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toMatch(new RegExp(`^cannot write ${p.replace(/[.\\/]/g, '\\$&')}: ENOENT.*check that its directory exists`));
    expect((e as Error).message).not.toMatch(/\n/);
  });
});
