import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, hydrated, uniqueAccountId } from '../pages/console';

// A real qcow2 image of about 50 MiB: random data converted by qemu-img.
const dir = mkdtempSync(join(tmpdir(), 'image-console-upload-'));
const imagePath = join(dir, 'ubuntu-upload.qcow2');
writeFileSync(join(dir, 'disk.raw'), randomBytes(50 * 1024 * 1024));
execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', join(dir, 'disk.raw'), imagePath]);
const imageSha512 = createHash('sha512').update(readFileSync(imagePath)).digest('hex');

/** The files in the file store's folder; the console on S3 is checked by the Rust tests. */
const blobs = (folder: 'images' | 'uploads') =>
  test.info().project.name === 'files' ? readdirSync(join(process.env.E2E_DATA_DIR!, 'blobs', folder)) : [];

/** Slows this page's uploads to about 8 MB/s, so a reload lands in the middle of one. */
async function throttleUploads(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: 8 * 1024 * 1024,
  });
}

async function newAccount(page: Page) {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('upl'));
  await expect(new ImageListPage(page).heading).toBeVisible();
}

async function startUpload(page: Page, name: string) {
  const form = new CreateImagePage(page);
  await form.open();
  await form.field('Image name').fill(name);
  await page.getByRole('radio', { name: /^Local file/ }).check();
  await form.field('Image file').setInputFiles(imagePath);
  await expect(page.getByRole('complementary', { name: 'Summary' }).getByText(/ubuntu-upload\.qcow2 \(/)).toBeVisible();
  await form.chooseOs('Ubuntu');
  await form.field('Minimum Disk (GB)').fill('10');
  await form.field('Minimum RAM (GB)').fill('2');
  await page.getByRole('button', { name: 'Complete and upload' }).click();
  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();
  return list.row(name);
}

/** The server's progress of an upload, in percent, from the row's progress bar. */
async function serverPercent(page: Page, name: string): Promise<number> {
  const bar = new ImageListPage(page).row(name).getByRole('progressbar', { name: `Upload progress of ${name}` });
  return Number((await bar.getAttribute('aria-valuenow')) ?? '0');
}

test('a local file uploads, survives a page reload in the middle and becomes Active @s3', async ({ page }) => {
  test.setTimeout(120_000);
  await newAccount(page);
  await throttleUploads(page);
  let row = await startUpload(page, 'uploaded ubuntu');
  await expect(row.getByText('Uploading')).toBeVisible();
  await expect(row.getByRole('button', { name: 'Pause upload of uploaded ubuntu' })).toBeVisible();
  await expect(row.getByText(/MB\/s/)).toBeVisible();
  await expect.poll(() => serverPercent(page, 'uploaded ubuntu'), { timeout: 30_000 }).toBeGreaterThan(10);

  // A reload ends this tab's upload; the bytes the server has are kept.
  await page.reload();
  await hydrated(page);
  row = new ImageListPage(page).row('uploaded ubuntu');
  await expect(row.getByText('Uploading')).toBeVisible();
  await expect(row.getByText('Not being sent from this browser tab. Choose the same file again to resume.')).toBeVisible();
  const kept = await serverPercent(page, 'uploaded ubuntu');
  expect(kept).toBeGreaterThan(0);
  expect(kept).toBeLessThan(100);

  // Choosing another file is refused; the same file resumes where the server stopped.
  const other = join(dir, 'other.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', other, '1G']);
  let chooser = page.waitForEvent('filechooser');
  await row.getByRole('button', { name: 'Resume upload of uploaded ubuntu' }).click();
  await (await chooser).setFiles(other);
  await expect(page.getByRole('alert')).toContainText('That is not the file this upload was started with. Choose ubuntu-upload.qcow2');
  chooser = page.waitForEvent('filechooser');
  await row.getByRole('button', { name: 'Resume upload of uploaded ubuntu' }).click();
  await (await chooser).setFiles(imagePath);
  await expect(row.getByRole('button', { name: 'Pause upload of uploaded ubuntu' })).toBeVisible();
  await expect(row.getByText('Active')).toBeVisible({ timeout: 60_000 });
  await expect(blobs('uploads')).toEqual([]);

  await new ImageListPage(page).openImage('uploaded ubuntu');
  const details = page.getByRole('region', { name: 'Details' });
  const value = (label: string) =>
    details.locator('.detail-row').filter({ has: page.getByText(label, { exact: true }) }).locator('dd');
  await expect(value('Local file')).toHaveText('ubuntu-upload.qcow2');
  await expect(value('Disk format')).toHaveText('qcow2');
  await expect(value('OS hash value')).toHaveText(imageSha512);
});

test('Pause, Resume and Cancel Upload; cancelling deletes the bytes sent', async ({ page }) => {
  test.setTimeout(120_000);
  await newAccount(page);
  await throttleUploads(page);
  const row = await startUpload(page, 'cancelled upload');
  await expect.poll(() => serverPercent(page, 'cancelled upload'), { timeout: 30_000 }).toBeGreaterThan(5);

  await row.getByRole('button', { name: 'Pause upload of cancelled upload' }).click();
  await expect(row.getByText(/^Paused at /)).toBeVisible();
  await row.getByRole('button', { name: 'Resume upload of cancelled upload' }).click();
  await expect(row.getByRole('button', { name: 'Pause upload of cancelled upload' })).toBeVisible();

  await row.getByRole('button', { name: 'Cancel upload of cancelled upload' }).click();
  const dialog = page.getByRole('dialog', { name: 'Cancel Upload' });
  await expect(dialog).toContainText('The bytes sent so far are deleted');
  await dialog.getByRole('button', { name: 'Cancel Upload' }).click();
  await expect(row.getByText('Failed')).toBeVisible();
  await expect(row.getByText(/^The upload was cancelled by admin@upl-.* its bytes were deleted\.$/)).toBeVisible();
  expect(blobs('uploads')).toEqual([]);
});
