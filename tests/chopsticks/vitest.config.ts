import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The optional chopsticks tier (tests/chopsticks/README.md). Its files are named `*.chopsticks.ts`
 * so the root config (`**\/*.test.ts`) never collects them. One file at a time: each file runs its own
 * chopsticks process, and block building is CPU-bound.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['tests/chopsticks/**/*.chopsticks.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
