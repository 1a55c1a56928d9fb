import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // KVM and QEMU tests boot guests on a slow, software-backed /dev/kvm; give them room.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Two cores: running guest-booting files in parallel only makes each slower.
    fileParallelism: false,
  },
});
