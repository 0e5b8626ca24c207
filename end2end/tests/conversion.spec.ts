import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, detailValue, hydrated, uniqueAccountId } from '../pages/console';

// A VMware disk: 12 MiB of random data as a streamOptimized VMDK, made by qemu-img.
const dir = mkdtempSync(join(tmpdir(), 'image-console-convert-'));
const rawPath = join(dir, 'disk.raw');
const vmdkPath = join(dir, 'vmware-disk.vmdk');
writeFileSync(rawPath, randomBytes(12 * 1024 * 1024));
execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', rawPath, vmdkPath]);
const vmdkSha512 = createHash('sha512').update(readFileSync(vmdkPath)).digest('hex');

test('a VMDK uploaded with Convert to qcow2 is converted, with progress, into an identical disk', async ({ page }) => {
  test.setTimeout(120_000);
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('convert'));
  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();

  const form = new CreateImagePage(page);
  await form.open();
  await form.field('Image name').fill('vmware disk');
  await page.getByRole('radio', { name: /^Local file/ }).check();
  await form.field('Image file').setInputFiles(vmdkPath);
  await expect(page.getByRole('radio', { name: /^Keep as uploaded/ })).toBeChecked();
  await page.getByRole('radio', { name: /^qcow2/ }).check();
  const summary = page.getByRole('complementary', { name: 'Summary' });
  await expect(summary.getByText('qcow2', { exact: true })).toBeVisible();
  await form.chooseOs('Ubuntu');
  await form.field('Minimum Disk (GB)').fill('10');
  await form.field('Minimum RAM (GB)').fill('2');
  await page.getByRole('button', { name: 'Complete and upload' }).click();
  await expect(list.heading).toBeVisible();

  // Converting, with qemu-img's progress, then Active.
  const row = list.row('vmware disk');
  await expect(row.getByText('Converting')).toBeVisible({ timeout: 60_000 });
  await expect(row.getByRole('progressbar', { name: 'Conversion progress of vmware disk' })).toBeVisible();
  await expect(row.getByText('Active')).toBeVisible({ timeout: 60_000 });

  await list.openImage('vmware disk');
  await hydrated(page);
  await expect(detailValue(page, 'Disk format')).toHaveText('qcow2');
  // Its value holds the file's format and size, then its own list of hashes.
  const source = detailValue(page, 'Source file').first();
  await expect(source).toContainText('VMDK');
  await expect(source.getByRole('definition').first()).toHaveText(vmdkSha512);

  // The download is a qcow2 whose disk is the original's.
  await page.getByRole('button', { name: 'Create download link' }).click();
  const url = await page.getByLabel('Download link').inputValue();
  const downloaded = await page.request.get(url);
  expect(downloaded.status()).toBe(200);
  const body = await downloaded.body();
  expect(body.subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
  const outPath = join(dir, 'downloaded.qcow2');
  writeFileSync(outPath, body);
  // Exits non-zero (and throws) unless the guest-visible contents are identical.
  execFileSync('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'qcow2', rawPath, outPath]);

  // Work History records the conversion with both files' hashes.
  await page.getByRole('link', { name: 'Work History' }).click();
  const history = page.getByRole('region', { name: 'Work History' });
  const finished = history.getByRole('row').filter({ has: page.getByRole('cell', { name: 'Conversion finished' }) });
  await expect(finished).toContainText(vmdkSha512);
  await expect(history.getByRole('cell', { name: 'Conversion started' })).toBeVisible();
});
