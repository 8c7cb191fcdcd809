import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["@airlock/source"] },
  ssr: { resolve: { conditions: ["@airlock/source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    globalSetup: ["packages/cli/test/support/global-setup.ts"],
    reporters: ["default"],
  },
});
