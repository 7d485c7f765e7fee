import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@everyauth/source'] },
  ssr: { resolve: { conditions: ['@everyauth/source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
