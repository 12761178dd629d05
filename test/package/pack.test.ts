// The npm package as a consumer gets it: `npm pack`, installed into a fresh
// project, imported by plain Node (no tsx, no loader flags), and its `qllm`
// command run with no model. The 16 greedy ids must be llama.cpp's.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAWN_LIMIT_WARNING } from '../../src/gpu/native-stderr.ts';
import { hasShared, repoRoot, sharedModel, sharedRef } from '../shared.ts';

/** stderr without Dawn's limit warnings, which qllm can filter only where fd 2 is a terminal, a FIFO or an append-mode file (not a Node parent's socket). */
const ownLines = (stderr: string) => stderr.split('\n').filter((l) => l !== '' && !DAWN_LIMIT_WARNING.test(l));

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let dir = '';
let installed = '';

describe.skipIf(!hasShared)('the packed npm package in a fresh project', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qllm-pack-'));
    // `npm pack` runs `prepack`, which builds dist/ (tsc; a type error fails it, shown here).
    const packed = spawnSync(npm, ['pack', '--json', '--pack-destination', dir], { cwd: repoRoot, encoding: 'utf8' });
    expect(packed.status, `${packed.stdout}\n${packed.stderr}`).toBe(0);
    const out = packed.stdout;
    const tarball = join(dir, (JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[])[0].filename);
    const app = join(dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    execFileSync(npm, ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    installed = app;
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries built JavaScript and types, not the TypeScript tool chain', () => {
    const pkg = join(installed, 'node_modules', 'qllm');
    expect(existsSync(join(pkg, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(pkg, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(pkg, 'dist', 'qllm.browser.js'))).toBe(true);
    expect(existsSync(join(pkg, 'src'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'esbuild'))).toBe(false);
  });

  it('imports in plain Node and generates llama.cpp greedy ids', () => {
    const ref = JSON.parse(readFileSync(sharedRef('stories260K-f32.kvf32.greedy48.json'), 'utf8')) as { generated_ids: number[] };
    writeFileSync(
      join(installed, 'app.mjs'),
      `import { loadModel } from 'qllm';
const model = await loadModel(${JSON.stringify(sharedModel('stories260K.gguf'))}, { contextLength: 64, noF16: true });
const ids = [];
for await (const t of model.generate('Once upon a time', { temperature: 0, maxTokens: 16 })) ids.push(t.tokenId);
model.dispose();
console.log(JSON.stringify(ids));
`,
    );
    const r = spawnSync(process.execPath, ['app.mjs'], { cwd: installed, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(ownLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual(ref.generated_ids.slice(0, 16));
  });

  it('works from CommonJS require too', () => {
    writeFileSync(join(installed, 'app.cjs'), `const q = require('qllm'); console.log(typeof q.loadModel, typeof q.GgufError);\n`);
    const r = spawnSync(process.execPath, ['app.cjs'], { cwd: installed, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('function function');
  });

  it('runs `qllm run -p` with no model: the bundled stories260K, said in one line', () => {
    const r = spawnSync(process.execPath, [join(installed, 'node_modules', '.bin', 'qllm'), 'run', '-p', 'Once upon a time', '-n', '16', '--temp', '0', '--no-stats'], { cwd: installed, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^, there was a little girl named Lily/);
    const lines = ownLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^qllm: no model given: using the bundled stories260K/);
  });
});
