// `npm run build`: the npm package's built files, in dist/.
//   dist/**/*.js + .d.ts   tsc from src/ (tsconfig.build.json): plain ESM that
//                          Node ≥ 20 and Electron's main process import with no loader.
//   dist/serve/page.html   the chat page, read beside server.js at run time.
//   dist/qllm.browser.js   one ESM bundle for web pages (`qllm/browser`): src/browser.ts
//                          with every shader inlined and Node-only imports stubbed out.
// Shaders stay in shaders/ for Node: dist/gpu/engine.js reads ../../shaders.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// `--browser`: only the bundle (a quick rebuild while working on the page side).
if (!process.argv.includes('--browser')) {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  copyFileSync(join(root, 'src/serve/page.html'), join(root, 'dist/serve/page.html'));
}

const esbuild = await import('esbuild');
const shaderDir = join(root, 'shaders');
/** @type {import('esbuild').Plugin} */
const browserPlugin = {
  name: 'qllm-browser',
  setup(b) {
    // `qllm:shaders`: { name: source } for every shaders/*.wgsl.
    b.onResolve({ filter: /^qllm:shaders$/ }, () => ({ path: 'shaders', namespace: 'qllm' }));
    b.onLoad({ filter: /.*/, namespace: 'qllm' }, () => {
      const table = {};
      for (const f of readdirSync(shaderDir).sort()) if (f.endsWith('.wgsl')) table[f.slice(0, -5)] = readFileSync(join(shaderDir, f), 'utf8');
      return { contents: `export default ${JSON.stringify(table)};`, loader: 'js' };
    });
    // Node-only modules are reached only on Node code paths (file handles, Dawn,
    // the poll throttle); in the page they are empty CommonJS stubs.
    b.onResolve({ filter: /^(node:.*|webgpu)$/ }, (a) => ({ path: a.path, namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};
// `--outfile=PATH`: the bundle elsewhere (tests build their own, so that a full build's clean of dist/ never races them).
const outArg = process.argv.find((a) => a.startsWith('--outfile='));
const outfile = outArg ? outArg.slice('--outfile='.length) : join(root, 'dist/qllm.browser.js');
const result = await esbuild.build({
  entryPoints: [join(root, 'src/browser.ts')],
  outfile,
  write: false,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [browserPlugin],
});
// Written whole and renamed: tests that build it at once never read half a file.
mkdirSync(dirname(outfile), { recursive: true });
const tmp = `${outfile}.${process.pid}.tmp`;
writeFileSync(tmp, result.outputFiles[0].contents);
renameSync(tmp, outfile);
