import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Workers load dist/: rebuild it (or refuse) when a source is newer than its compiled file.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Server tests bind real ports and run real ONNX sessions: keep files from fighting over 2 cores.
    fileParallelism: false,
  },
});
