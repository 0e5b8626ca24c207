import { expect, test, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, hydrated, sourceUrl, uniqueAccountId } from '../pages/console';

async function newAccount(page: Page) {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('os'));
  await expect(new ImageListPage(page).heading).toBeVisible();
}

test('a Windows Server 2019 x86_64 image shows its operating system on Details and in the list', async ({ page }) => {
  await newAccount(page);
  const form = new CreateImagePage(page);
  await form.open();
  await form.fill({ name: 'win-2019', url: sourceUrl('files', 'small.qcow2'), platform: 'Windows Server', version: '2019', architecture: 'x86_64' });
  // Windows offers only its own platforms, and Windows Server only its versions.
  await expect(form.field('System platform').locator('option')).toHaveText(['Select a system platform', 'Windows Server', 'Windows']);
  await expect(form.field('System version').locator('option')).toHaveText([
    'Not specified', '2008', '2008 R2', '2012', '2012 R2', '2016', '2019', '2022', '2025',
  ]);
  const summary = page.getByRole('complementary', { name: 'Summary' });
  await expect(summary.getByText('Windows Server 2019')).toBeVisible();
  await form.complete();

  const list = new ImageListPage(page);
  const row = list.row('win-2019');
  await expect(row.getByText('Active')).toBeVisible();
  await expect(row.getByRole('cell', { name: 'Windows Server 2019' })).toBeVisible();
  await list.openImage('win-2019');
  const details = page.getByRole('region', { name: 'Details' });
  const value = (label: string) => details.locator('.detail-row').filter({ has: page.getByText(label, { exact: true }) }).locator('dd');
  await expect(value('Operating system')).toHaveText('Windows');
  await expect(value('System platform')).toHaveText('Windows Server');
  await expect(value('System version')).toHaveText('2019');
  await expect(value('Architecture')).toHaveText('x86_64');

  // Edit starts from the same choice.
  await page.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('region', { name: 'Edit Image' });
  await expect(edit.getByLabel('Operating system')).toHaveValue('windows');
  await expect(edit.getByLabel('System platform')).toHaveValue('windows-server');
  await expect(edit.getByLabel('System version')).toHaveValue('2019');
});

test('a CentOS version outside 7.6–7.9 is refused on aarch64, in the browser and by the server', async ({ page }) => {
  await newAccount(page);
  const form = new CreateImagePage(page);
  await form.open();
  await form.fill({ name: 'centos-arm', url: sourceUrl('files', 'small.qcow2'), platform: 'CentOS', version: '7.2', architecture: 'x86_64' });
  await expect(form.errorFor('System version')).toHaveCount(0);

  // The version stays chosen when the architecture changes, and says why it no longer fits.
  await form.field('Architecture').selectOption('aarch64');
  const refusal = '⚠ System version 7.2 of CentOS is not offered for aarch64; choose one of 7.6–7.9.';
  await expect(form.errorFor('System version')).toHaveText(refusal);
  await expect(form.field('System version').locator('option')).toHaveText([
    'Not specified', '7.6', '7.7', '7.8', '7.9', '7.2 (not offered for aarch64)',
  ]);
  await expect(form.field('System version')).toHaveAttribute('aria-invalid', 'true');

  // Sent anyway, the server refuses it with the same words and creates nothing.
  await form.complete();
  await expect(form.errorFor('System version')).toHaveText(refusal);
  await expect(page).toHaveURL(/\/images\/create$/);

  // Windows is offered for x86_64 only.
  await form.field('Operating system').selectOption({ label: 'Windows' });
  await form.field('System platform').selectOption({ label: 'Windows' });
  await expect(form.errorFor('System platform')).toHaveText('⚠ System platform Windows is offered for x86_64 only; choose Architecture x86_64.');

  // A version aarch64 offers is accepted.
  await form.chooseOs('CentOS', '7.9');
  await expect(form.errorFor('System platform')).toHaveCount(0);
  await expect(form.errorFor('System version')).toHaveCount(0);
  await form.complete();
  const list = new ImageListPage(page);
  await expect(list.row('centos-arm').getByRole('cell', { name: 'CentOS 7.9' })).toBeVisible();
  await expect(page.getByRole('rowheader')).toHaveCount(1);
});

test('choosing a system platform chooses its operating system', async ({ page }) => {
  await newAccount(page);
  const form = new CreateImagePage(page);
  await form.open();
  // With no operating system chosen every platform is offered; Ubuntu makes it Linux.
  await form.field('System platform').selectOption({ label: 'Ubuntu' });
  await expect(form.field('Operating system')).toHaveValue('linux');
  await expect(form.errorFor('Operating system')).toHaveCount(0);
  await expect(form.errorFor('System platform')).toHaveCount(0);
  await expect(form.field('System platform').locator('option')).toHaveText([
    'Select a system platform', 'Alma Linux', 'CentOS', 'Oracle Linux', 'RHEL', 'Rocky Linux', 'Ubuntu',
  ]);

  // Choosing the other family afterwards keeps it, and the platform says it does not belong.
  await form.field('Operating system').selectOption({ label: 'Windows' });
  await expect(form.field('Operating system')).toHaveValue('windows');
  await expect(form.errorFor('System platform')).toContainText('System platform Ubuntu is a Linux platform');

  // A Windows platform settles both, and the image is created as Windows Server.
  await form.field('System platform').selectOption({ label: 'Windows Server' });
  await expect(form.errorFor('System platform')).toHaveCount(0);
  await form.field('Image name').fill('picked-by-platform');
  await form.field('Image file URL').fill(sourceUrl('files', 'small.qcow2'));
  await form.field('Minimum Disk (GB)').fill('10');
  await form.field('Minimum RAM (GB)').fill('2');
  await form.complete();
  const list = new ImageListPage(page);
  await expect(list.row('picked-by-platform').getByRole('cell', { name: 'Windows Server' })).toBeVisible();
});

test('an image the API made without an operating system is Not specified until its owner sets it', async ({ page }) => {
  await newAccount(page);
  // A token, and an image created with it as plain Glance clients create them.
  await page.goto('/images/api-access');
  await hydrated(page);
  const create = page.getByRole('region', { name: 'Create API token' });
  await create.getByLabel('Token name').fill('packer');
  await create.getByRole('button', { name: 'Create token' }).click();
  const secret = await create.getByLabel('API token').inputValue();
  const command = await create.getByLabel('openstack (python-openstackclient)').inputValue();
  const endpoint = /--os-endpoint (\S+)\/v2 /.exec(command)?.[1];
  const made = await page.request.post(`${endpoint}/v2/images`, {
    headers: { 'X-Auth-Token': secret },
    data: { name: 'from-packer', disk_format: 'raw', container_format: 'bare' },
  });
  expect(made.status()).toBe(201);
  expect(await made.json()).not.toHaveProperty('os_distro');

  // The list says so, and its filter finds it.
  const list = new ImageListPage(page);
  await list.open();
  await expect(list.row('from-packer').getByRole('cell', { name: 'Not specified' })).toBeVisible();
  await page.getByLabel('Operating system').selectOption({ label: 'Not specified' });
  await expect(page).toHaveURL(/family=none/);
  await expect(page.getByRole('rowheader')).toHaveText(['from-packer']);
  await page.getByLabel('Operating system').selectOption({ label: 'Linux' });
  await expect(page.getByText('No images match')).toBeVisible();

  // Details invites the owner to set it; Edit may leave it, then sets it.
  await list.open();
  await list.openImage('from-packer');
  const details = page.getByRole('region', { name: 'Details' });
  const value = (label: string) => details.locator('.detail-row').filter({ has: page.getByText(label, { exact: true }) }).locator('dd');
  await expect(value('Operating system')).toContainText('Not specified');
  await expect(value('Operating system')).toContainText('Choose Edit to set it');
  await expect(value('System platform')).toHaveText('Not specified');
  await page.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('region', { name: 'Edit Image' });
  await expect(edit.getByLabel('Operating system')).toHaveValue('');
  await expect(edit.getByLabel('Operating system').locator('option').first()).toHaveText('Not specified');
  await edit.getByLabel('Description').fill('Built by Packer.');
  await edit.getByRole('button', { name: 'Save' }).click();
  await expect(value('Description')).toHaveText('Built by Packer.');
  await expect(value('System platform')).toHaveText('Not specified');
  await page.getByRole('button', { name: 'Edit' }).click();
  await edit.getByLabel('System platform').selectOption({ label: 'Ubuntu' });
  await expect(edit.getByLabel('Operating system')).toHaveValue('linux');
  await edit.getByRole('button', { name: 'Save' }).click();
  await expect(value('Operating system')).toHaveText('Linux');
  await expect(value('System platform')).toHaveText('Ubuntu');
});
