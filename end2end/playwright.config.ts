import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Each run gets its own data directory (fresh SQLite file and blob store) and ports, so runs
// never see each other's accounts. scripts/test picks free ports; these are the fallbacks.
const consolePort = process.env.E2E_CONSOLE_PORT ?? '3210';
const sourcePort = process.env.E2E_SOURCE_PORT ?? '3211';
const dataDir = process.env.E2E_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'image-console-e2e-'));
process.env.E2E_SOURCE_URL = `http://127.0.0.1:${sourcePort}`;
// The tests look into the blob store to check that cancelled uploads leave no bytes behind.
process.env.E2E_DATA_DIR = dataDir;

// With an S3 server to use (scripts/test starts s3s-fs and sets TEST_S3_*), a second console
// keeps its image bytes in the bucket, and the tests tagged @s3 run against it as well.
const s3 = process.env.TEST_S3_ENDPOINT;
const s3ConsolePort = process.env.E2E_S3_CONSOLE_PORT ?? '3212';
const s3DataDir = mkdtempSync(join(tmpdir(), 'image-console-e2e-s3-'));
const consoleEnv = {
  SITE_ROOT: 'target/site',
  // The fixture source server listens on 127.0.0.1, which imports may not reach
  // unless allowed.
  IMPORT_ALLOWED_NETWORKS: '127.0.0.1',
  // Every test signs up from 127.0.0.1; the per-user-name sign-in limit keeps its
  // default, which a test exercises.
  SIGN_UP_PER_ADDRESS_PER_HOUR: '10000',
  SIGN_IN_PER_ADDRESS_PER_MINUTE: '10000',
  RUST_LOG: process.env.RUST_LOG ?? 'warn',
  // Conversions paced, so the tests can watch an image Converting (relative to the console's
  // working directory, the repository).
  QEMU_IMG: 'end2end/fixtures/paced-qemu-img',
};

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  projects: [
    { name: 'files', use: { baseURL: `http://127.0.0.1:${consolePort}` } },
    ...(s3 ? [{ name: 's3', grep: /@s3/, use: { baseURL: `http://127.0.0.1:${s3ConsolePort}` } }] : []),
  ],
  use: {
    browserName: 'chromium',
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: [
    {
      // The real release server, as the README's start command runs it.
      command: './target/release/image-console',
      cwd: '..',
      url: `http://127.0.0.1:${consolePort}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      env: { ...consoleEnv, BIND_ADDR: `127.0.0.1:${consolePort}`, DATA_DIR: dataDir },
    },
    ...(s3
      ? [
          {
            command: './target/release/image-console',
            cwd: '..',
            url: `http://127.0.0.1:${s3ConsolePort}/healthz`,
            reuseExistingServer: false,
            timeout: 60_000,
            stdout: 'pipe' as const,
            env: {
              ...consoleEnv,
              BIND_ADDR: `127.0.0.1:${s3ConsolePort}`,
              DATA_DIR: s3DataDir,
              STORAGE_URL: `s3://${process.env.TEST_S3_BUCKET}/e2e/${s3DataDir.split('-').pop()}`,
              AWS_ENDPOINT_URL: s3,
              AWS_ACCESS_KEY_ID: process.env.TEST_S3_ACCESS_KEY ?? '',
              AWS_SECRET_ACCESS_KEY: process.env.TEST_S3_SECRET_KEY ?? '',
            },
          },
        ]
      : []),
    {
      // Serves qcow2 files made with qemu-img, some of them slowly, for URL imports.
      command: 'node fixtures/source-server.mjs',
      url: `http://127.0.0.1:${sourcePort}/healthz`,
      reuseExistingServer: false,
      timeout: 30_000,
      env: { E2E_SOURCE_PORT: sourcePort },
    },
  ],
});
