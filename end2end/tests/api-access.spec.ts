import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { ImageListPage, SignUpPage, hydrated, uniqueAccountId } from '../pages/console';

test('create an API token, use its command, and revoke it', async ({ page }) => {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('api'));
  await expect(new ImageListPage(page).heading).toBeVisible();

  await page.getByRole('link', { name: 'API access' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'API access' })).toBeVisible();
  await hydrated(page);
  const tokens = page.getByRole('region', { name: 'Your API tokens' });
  await expect(tokens.getByText('You have no API tokens yet.')).toBeVisible();
  const axe = await new AxeBuilder({ page }).analyze();
  expect(axe.violations.map((v) => v.id), 'axe on API access').toEqual([]);

  // The name is checked as it is typed, with the server's rule.
  const create = page.getByRole('region', { name: 'Create API token' });
  await create.getByLabel('Token name').fill('ci/pipeline');
  await expect(create.getByText("(found '/')")).toBeVisible();
  await create.getByLabel('Token name').fill('ci pipeline');
  await create.getByLabel('Expiry').selectOption('30');
  await create.getByRole('button', { name: 'Create token' }).click();
  await expect(create.getByText('Token ci pipeline created.')).toBeVisible();
  const secret = await create.getByLabel('API token').inputValue();
  expect(secret).toMatch(/^imgc_[A-Za-z0-9_-]{43}$/);

  // Its openstack command names the endpoint and the token; copy it, and the API answers.
  const command = await create.getByLabel('openstack (python-openstackclient)').inputValue();
  expect(command).toContain(`--os-token '${secret}'`);
  const endpoint = /--os-endpoint (\S+)\/v2 /.exec(command)?.[1];
  expect(endpoint).toBeTruthy();
  await create.getByRole('button', { name: 'Copy' }).nth(1).click();
  await expect(create.getByRole('button', { name: 'Copied' })).toBeVisible();
  const listed = await page.request.get(`${endpoint}/v2/images`, { headers: { 'X-Auth-Token': secret } });
  expect(listed.status()).toBe(200);
  expect((await listed.json()).images).toEqual([]);

  // An image made through the API waits for its data, and the console says so.
  const made = await page.request.post(`${endpoint}/v2/images`, {
    headers: { 'X-Auth-Token': secret },
    data: { name: 'from-the-api', disk_format: 'qcow2', os_distro: 'ubuntu', min_ram: 2048 },
  });
  expect(made.status()).toBe(201);
  const list = new ImageListPage(page);
  await list.open();
  await expect(list.row('from-the-api').getByText('Waiting for data from the image API')).toBeVisible();
  await list.openImage('from-the-api');
  await expect(page.getByText(/Waiting for its data from the image API/)).toBeVisible();
  const details = page.getByRole('region', { name: 'Details' });
  await expect(details.getByText('Image API', { exact: true })).toBeVisible();

  // The list shows the token's last use; Revoke (confirmed) ends it at once.
  await page.goto('/images/api-access');
  await hydrated(page);
  const row = tokens.getByRole('row', { name: /ci pipeline/ });
  await expect(row).not.toContainText('Never used');
  await row.getByRole('button', { name: 'Revoke ci pipeline' }).click();
  const dialog = page.getByRole('dialog', { name: 'Revoke API token' });
  await expect(dialog).toContainText('ci pipeline');
  await dialog.getByRole('button', { name: 'Revoke' }).click();
  await expect(tokens.getByText('You have no API tokens yet.')).toBeVisible();
  const refused = await page.request.get(`${endpoint}/v2/images`, { headers: { 'X-Auth-Token': secret } });
  expect(refused.status()).toBe(401);
  expect((await refused.json()).error.code).toBe(401);
});
