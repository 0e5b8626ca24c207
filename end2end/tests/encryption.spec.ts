import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, detailValue, hydrated, uniqueAccountId } from '../pages/console';

// A real qcow2 of about 3 MiB: random data converted by qemu-img.
const dir = mkdtempSync(join(tmpdir(), 'image-console-sealed-'));
const imagePath = join(dir, 'sealed-disk.qcow2');
writeFileSync(join(dir, 'disk.raw'), randomBytes(3 * 1024 * 1024));
execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', join(dir, 'disk.raw'), imagePath]);
const imageSha512 = createHash('sha512').update(readFileSync(imagePath)).digest('hex');

async function openKeys(page: Page) {
  await page.getByText('Account', { exact: true }).click();
  await page.getByRole('link', { name: 'Keys', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Keys' })).toBeVisible();
  await hydrated(page);
}

test('a key, an encrypted upload, a disabled key refused, and a replica without encryption', async ({ page }) => {
  test.setTimeout(120_000);
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('enc'));
  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();

  // Keys: create one; the first key of the account is its default.
  await openKeys(page);
  await page.getByLabel('Key name', { exact: true }).fill('prod-images');
  await page.getByLabel('Description', { exact: true }).fill('Production images');
  await page.getByRole('button', { name: 'Create Key' }).click();
  const keyRow = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /prod-images/ }) });
  await expect(keyRow.getByText('Enabled')).toBeVisible();
  await expect(keyRow.getByText('Default')).toBeVisible();

  // Create Image from a local file with Encryption on, under that key.
  const form = new CreateImagePage(page);
  await form.open();
  await form.field('Image name').fill('sealed ubuntu');
  await page.getByRole('radio', { name: /^Local file/ }).check();
  await form.field('Image file').setInputFiles(imagePath);
  await page.getByRole('radio', { name: /^On/ }).check();
  await form.field('Key').selectOption({ label: 'prod-images (the default key)' });
  const summary = page.getByRole('complementary', { name: 'Summary' });
  await expect(summary.getByText('On (prod-images (the default key))')).toBeVisible();
  await form.chooseOs('Ubuntu');
  await form.field('Minimum Disk (GB)').fill('10');
  await form.field('Minimum RAM (GB)').fill('2');
  await page.getByRole('button', { name: 'Complete and upload' }).click();
  await expect(list.heading).toBeVisible();
  const row = list.row('sealed ubuntu');
  await expect(row.getByText('Active')).toBeVisible({ timeout: 60_000 });
  await expect(row.getByRole('cell', { name: 'Yes', exact: true })).toBeVisible();
  // The Encrypted filter finds it.
  await page.getByLabel('Encrypted', { exact: true }).selectOption({ label: 'No' });
  await expect(page).toHaveURL(/encrypted=no/);
  await expect(list.row('sealed ubuntu')).toHaveCount(0);
  await page.getByLabel('Encrypted', { exact: true }).selectOption({ label: 'Yes' });
  await expect(page).toHaveURL(/encrypted=yes/);
  await expect(list.row('sealed ubuntu')).toBeVisible();

  await list.openImage('sealed ubuntu');
  const imageUrl = page.url();
  await expect(detailValue(page, 'Encryption')).toContainText('On, with key prod-images');
  await expect(detailValue(page, 'Encryption')).toContainText('Enabled');
  await expect(detailValue(page, 'OS hash value')).toHaveText(imageSha512);

  // Disabled: the image cannot be downloaded, and says why.
  await openKeys(page);
  await keyRow.getByRole('button', { name: 'Disable key prod-images' }).click();
  const confirm = page.getByRole('dialog', { name: 'Disable Key' });
  await confirm.getByRole('button', { name: 'Disable' }).click();
  await expect(keyRow.getByText('Disabled')).toBeVisible();
  await page.goto(imageUrl);
  await hydrated(page);
  await expect(detailValue(page, 'Encryption')).toContainText('is disabled; enable the key to use the image');
  await page.getByRole('button', { name: 'Create download link' }).click();
  await expect(page.getByRole('alert')).toContainText('prod-images');
  await expect(page.getByRole('button', { name: 'Replicate' })).toBeDisabled();

  // Enabled again: replicate it without encryption; the replica has the same SHA-512.
  await openKeys(page);
  await keyRow.getByRole('button', { name: 'Enable key prod-images' }).click();
  await expect(keyRow.getByText('Enabled')).toBeVisible();
  await page.goto(imageUrl);
  await hydrated(page);
  await page.getByRole('button', { name: 'Replicate' }).click();
  const dialog = page.getByRole('dialog', { name: 'Replicate Image' });
  await expect(dialog.getByRole('radio', { name: /^Off/ })).toBeChecked();
  await dialog.getByRole('button', { name: 'Replicate' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'sealed ubuntu-replica' })).toBeVisible();
  await expect(detailValue(page, 'Status')).toContainText('Active', { timeout: 60_000 });
  await expect(detailValue(page, 'Encryption')).toHaveText('Off');
  await expect(detailValue(page, 'Replicated from')).toBeVisible();
  await expect(detailValue(page, 'OS hash value')).toHaveText(imageSha512);
});
