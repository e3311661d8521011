import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // setup hooks build models and start worker pools: seconds on an idle machine, more on a loaded one
    hookTimeout: 60_000,
    pool: 'forks',
    // vitest's default on a 2-core machine is one file at a time; many files wait on child processes and workers
    maxWorkers: 2,
  },
});
