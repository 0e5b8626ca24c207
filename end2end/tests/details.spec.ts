import { expect, test, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, hydrated, sourceUrl, uniqueAccountId } from '../pages/console';

async function imageReady(page: Page, name: string) {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('details'));
  await expect(new ImageListPage(page).heading).toBeVisible();
  const form = new CreateImagePage(page);
  await form.open();
  await form.fill({ name, url: sourceUrl('files', 'small.qcow2') });
  await form.complete();
  const list = new ImageListPage(page);
  await expect(list.row(name).getByText('Active')).toBeVisible();
  await list.openImage(name);
}

test('Edit changes attributes and Work History shows each change', async ({ page }) => {
  await imageReady(page, 'edit-me');
  await page.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('region', { name: 'Edit Image' });
  await edit.getByLabel('Minimum Disk (GB)').fill('12289');
  await expect(edit.getByText('Minimum Disk must be between 0 and 12,288 GB.')).toBeVisible();
  await edit.getByLabel('Minimum Disk (GB)').fill('40');
  await edit.getByLabel('Image name').fill('edited');
  await edit.getByLabel('Architecture').selectOption('aarch64');
  await edit.getByRole('radio', { name: 'UEFI' }).check();
  await edit.getByRole('checkbox', { name: 'cloud-init' }).check();
  await edit.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'edited' })).toBeVisible();
  const details = page.getByRole('region', { name: 'Details' });
  const value = (label: string) => details.locator('.detail-row').filter({ has: page.getByText(label, { exact: true }) }).locator('dd');
  await expect(value('Minimum Disk')).toHaveText('40 GB');
  await expect(value('Architecture')).toHaveText('aarch64');
  await expect(value('Boot mode')).toHaveText('UEFI');
  await expect(value('Features')).toHaveText('cloud-init');

  await page.getByRole('link', { name: 'Work History' }).click();
  await expect(page).toHaveURL(/tab=history/);
  const history = page.getByRole('region', { name: 'Work History' });
  const newest = history.getByRole('row').nth(1);
  await expect(newest.getByRole('cell').nth(1)).toHaveText('Edit Image');
  await expect(newest).toContainText('Image name: edit-me → edited');
  await expect(newest).toContainText('Minimum Disk: 10 GB → 40 GB');
  await expect(history.getByRole('cell', { name: 'Import finished' })).toBeVisible();
  await expect(history.getByRole('cell', { name: 'Create Image' })).toBeVisible();
});

test('add, edit and remove a tag', async ({ page }) => {
  await imageReady(page, 'tagged');
  await page.getByRole('link', { name: 'Tags' }).click();
  await expect(page).toHaveURL(/tab=tags/);
  const tags = page.getByRole('region', { name: 'Tags' });
  await expect(tags.getByText('This image has no tags yet.')).toBeVisible();
  await tags.getByLabel('Tag key').fill('env');
  await tags.getByLabel('Tag value').fill('prod');
  await tags.getByRole('button', { name: 'Add Tag' }).click();
  await expect(tags.getByRole('row', { name: /env prod/ })).toBeVisible();
  await expect(tags.getByText('1 of 50')).toBeVisible();

  // A second tag with the same key is refused beside the field.
  await tags.getByLabel('Tag key').fill('env');
  await tags.getByRole('button', { name: 'Add Tag' }).click();
  await expect(tags.getByText("Tag key 'env' is already used; keys must be unique.")).toBeVisible();

  await tags.getByRole('button', { name: 'Edit tag env' }).click();
  await tags.getByLabel('Value', { exact: true }).fill('staging');
  await tags.getByRole('button', { name: 'Save tag' }).click();
  await expect(tags.getByRole('row', { name: /env staging/ })).toBeVisible();

  await tags.getByRole('button', { name: 'Remove tag env' }).click();
  await expect(tags.getByText('This image has no tags yet.')).toBeVisible();

  await page.getByRole('link', { name: 'Work History' }).click();
  const history = page.getByRole('region', { name: 'Work History' });
  await expect(history.getByText('Tag env: staging → (none)')).toBeVisible();
  await expect(history.getByText('Tag env: prod → staging')).toBeVisible();
  await expect(history.getByText('Tag env: (none) → prod')).toBeVisible();
});

test('a download link works without a session and resumes with Range', async ({ page, browser }) => {
  await imageReady(page, 'download-me');
  await page.getByRole('button', { name: 'Create download link' }).click();
  const link = page.getByLabel('Download link');
  await expect(link).toHaveValue(/\/downloads\/.+\/download-me\.qcow2\?exp=\d+&gen=0&sig=/);
  const url = await link.inputValue();

  // A fresh context has no cookies, like curl or wget.
  const stranger = await browser.newContext();
  const whole = await stranger.request.get(url);
  expect(whole.status()).toBe(200);
  const bytes = await whole.body();
  expect(bytes.subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
  const part = await stranger.request.get(url, { headers: { Range: 'bytes=4-11' } });
  expect(part.status()).toBe(206);
  expect(part.headers()['content-range']).toBe(`bytes 4-11/${bytes.length}`);
  expect(Buffer.compare(await part.body(), bytes.subarray(4, 12))).toBe(0);
  const past = await stranger.request.get(url, { headers: { Range: `bytes=${bytes.length}-` } });
  expect(past.status()).toBe(416);

  // Revoke: the same link now answers 403 with a reason.
  await page.getByRole('button', { name: 'Revoke links' }).click();
  await expect(page.getByText('Every download link issued so far has been revoked.')).toBeVisible();
  const revoked = await stranger.request.get(url);
  expect(revoked.status()).toBe(403);
  expect(await revoked.text()).toContain('This download link was revoked.');
  await stranger.close();
  await hydrated(page);
});
