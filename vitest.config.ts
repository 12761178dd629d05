import { defineConfig } from 'vitest/config';

// Forks, not threads: each test file gets its own Dawn instance in its own process.
// Two workers: the machines have 2 cores and lavapipe uses both per dispatch.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Dawn's Vulkan loader wants a runtime dir on headless Linux.
    env: { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  },
});
