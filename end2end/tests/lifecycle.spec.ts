import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, hydrated, sourceUrl, uniqueAccountId } from '../pages/console';

async function newAccountWithImage(page: Page, name: string) {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('life'));
  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();
  const form = new CreateImagePage(page);
  await form.open();
  await form.fill({ name, url: sourceUrl('files', 'small.qcow2') });
  await form.complete();
  await expect(list.row(name).getByText('Active')).toBeVisible();
  return list;
}

/** An API token made on the API access page: the endpoint and the secret. */
async function apiToken(page: Page) {
  await page.goto('/images/api-access');
  await hydrated(page);
  const create = page.getByRole('region', { name: 'Create API token' });
  await create.getByLabel('Token name').fill('vm service');
  await create.getByLabel('Expiry').selectOption('30');
  await create.getByRole('button', { name: 'Create token' }).click();
  const secret = await create.getByLabel('API token').inputValue();
  const endpoint = new URL(page.url()).origin;
  return { endpoint, secret };
}

test('delete to the Recycle Bin, restore, delete again and destroy', async ({ page }) => {
  const list = await newAccountWithImage(page, 'recycled');
  await list.openImage('recycled');
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete Image' });
  await expect(dialog.getByText('to the Recycle Bin')).toBeVisible();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(list.heading).toBeVisible();
  await expect(list.row('recycled')).toHaveCount(0);
  await expect(page.getByRole('region', { name: 'Usage and quotas' })).toContainText('Of which in the Recycle Bin');

  // The Recycle Bin, from the Image List: who deleted it, when it goes, and Restore.
  await page.getByRole('link', { name: 'Recycle Bin', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Recycle Bin' })).toBeVisible();
  await hydrated(page);
  const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /recycled/ }) });
  await expect(row.getByText('Deleted', { exact: true })).toBeVisible();
  await expect(row).toContainText('Active');
  await expect(row).toContainText(/^.*admin@life/);
  const axe = await new AxeBuilder({ page }).analyze();
  expect(axe.violations.map((v) => v.id), 'axe on the Recycle Bin').toEqual([]);
  await row.getByRole('button', { name: 'Restore recycled' }).click();
  const restore = page.getByRole('dialog', { name: 'Restore Images' });
  await expect(restore.getByRole('listitem')).toHaveText(['recycled']);
  await restore.getByRole('button', { name: 'Restore' }).click();
  await expect(page.getByText('Restored 1 image: recycled.')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'The Recycle Bin is empty' })).toBeVisible();

  // Back on the list as it was; Work History tells the story.
  await list.open();
  await expect(list.row('recycled').getByText('Active')).toBeVisible();
  await list.openImage('recycled');
  await page.getByRole('link', { name: 'Work History' }).click();
  const history = page.getByRole('region', { name: 'Work History' });
  await expect(history.getByRole('cell', { name: 'Restore', exact: true })).toBeVisible();
  await expect(history.getByRole('cell', { name: 'Delete Image' })).toBeVisible();

  // Delete again from the list, then Destroy now.
  await list.open();
  await page.getByRole('checkbox', { name: 'Select recycled' }).check();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('dialog', { name: 'Delete Images' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByText('Moved 1 image to the Recycle Bin.')).toBeVisible();
  await page.getByRole('link', { name: 'Open the Recycle Bin' }).click();
  await hydrated(page);
  await page.getByRole('button', { name: 'Destroy now: recycled' }).click();
  const destroy = page.getByRole('dialog', { name: 'Destroy Images' });
  await expect(destroy.getByText('cannot be restored')).toBeVisible();
  await destroy.getByRole('button', { name: 'Destroy now' }).click();
  await expect(page.getByText('Destroyed 1 image: recycled.')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'The Recycle Bin is empty' })).toBeVisible();

  // The retention is an account setting, checked as it is typed.
  await page.getByRole('link', { name: 'Account settings' }).click();
  await hydrated(page);
  const retention = page.getByLabel('Retention (days)');
  await expect(retention).toHaveValue('7');
  await retention.fill('400');
  await retention.blur();
  await expect(page.getByText('Enter a whole number of days from 1 to 365.')).toBeVisible();
  await retention.fill('30');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('Saved.')).toBeVisible();
  await page.reload();
  await expect(page.getByLabel('Retention (days)')).toHaveValue('30');
});

test('a reference added through the API blocks Delete, with the reason', async ({ page }) => {
  const list = await newAccountWithImage(page, 'in-use');
  const { endpoint, secret } = await apiToken(page);
  await list.open();
  await list.openImage('in-use');
  const id = page.url().split('/images/')[1].split('?')[0];
  const added = await page.request.put(`${endpoint}/v2/images/${id}/references/virtual-machine/vm-42`, {
    headers: { 'X-Auth-Token': secret },
  });
  expect(added.status()).toBe(201);

  await page.reload();
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Delete', exact: true })).toBeDisabled();
  await expect(page.getByText(/This image is in use by virtual machine vm-42 \(added by admin@life\S* of account life\S*\)/).first()).toBeVisible();
  const inUse = page.getByRole('region', { name: 'In use by' });
  await expect(inUse.getByRole('rowheader', { name: 'vm-42' })).toBeVisible();

  // The list's Delete says why too.
  await list.open();
  await page.getByRole('checkbox', { name: 'Select in-use' }).check();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('dialog', { name: 'Delete Images' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByText('Moved 0 images to the Recycle Bin.')).toBeVisible();
  await expect(page.getByText(/in use by virtual machine vm-42/)).toBeVisible();

  const removed = await page.request.delete(`${endpoint}/v2/images/${id}/references/virtual-machine/vm-42`, {
    headers: { 'X-Auth-Token': secret },
  });
  expect(removed.status()).toBe(204);
  await list.openImage('in-use');
  await expect(page.getByRole('button', { name: 'Delete', exact: true })).toBeEnabled();
});

test('a deactivated image refuses its download links', async ({ page, browser }) => {
  const list = await newAccountWithImage(page, 'frozen');
  await list.openImage('frozen');
  await page.getByRole('button', { name: 'Create download link' }).click();
  const url = await page.getByLabel('Download link').inputValue();
  const stranger = await browser.newContext();
  expect((await stranger.request.get(url)).status()).toBe(200);

  await page.getByRole('button', { name: 'Deactivate' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'frozen' }).getByText('Deactivated')).toBeVisible();
  await expect(page.getByText('Nobody can download this image')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Create download link' })).toBeDisabled();
  const refused = await stranger.request.get(url);
  expect(refused.status()).toBe(403);
  expect(await refused.text()).toContain('This image is Deactivated');

  await list.open();
  await page.getByLabel('Status').selectOption('deactivated');
  await expect(list.row('frozen').getByText('Deactivated')).toBeVisible();

  await list.openImage('frozen');
  await page.getByRole('button', { name: 'Reactivate' }).click();
  await expect(page.getByRole('button', { name: 'Deactivate' })).toBeVisible();
  expect((await stranger.request.get(url)).status()).toBe(200);
  await stranger.close();
});
