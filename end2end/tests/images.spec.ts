import { expect, test, type Page } from '@playwright/test';
import {
  CreateImagePage,
  ImageListPage,
  SignUpPage,
  hydrated,
  sourceUrl,
  uniqueAccountId,
} from '../pages/console';

async function newAccount(page: Page) {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId());
  await expect(new ImageListPage(page).heading).toBeVisible();
}

test('the Create Image form shows errors as soon as values break a rule', async ({ page }) => {
  await newAccount(page);
  const form = new CreateImagePage(page);
  await form.open();

  await form.field('Image name').fill('web#1');
  await expect(form.errorFor('Image name')).toHaveText(
    "⚠ Image name can contain only English letters, digits, spaces, '-' and '_' (found '#').",
  );
  await form.field('Image name').fill('a'.repeat(256));
  await expect(form.errorFor('Image name')).toHaveText('⚠ Image name must be at most 255 characters (it has 256).');
  await form.field('Image name').fill('a'.repeat(255));
  await expect(form.errorFor('Image name')).toHaveCount(0);

  await form.field('Image file URL').fill('ftp://example.com/disk.qcow2');
  await expect(form.errorFor('Image file URL')).toHaveText('⚠ Image file URL must start with http:// or https://.');
  // The browser's own URL parser reads the URL; the rules are the server's.
  await form.field('Image file URL').fill('https://user:secret@example.com/disk.qcow2');
  await expect(form.errorFor('Image file URL')).toHaveText('⚠ Image file URL cannot contain a user name or password.');
  await form.field('Image file URL').fill('https://exa mple.com/disk.qcow2');
  await expect(form.errorFor('Image file URL')).toHaveText('⚠ Image file URL cannot contain spaces.');
  await form.field('Image file URL').fill('https://[::1/disk.qcow2');
  await expect(form.errorFor('Image file URL')).toHaveText(
    '⚠ Image file URL is not a valid URL; it should look like https://host/path/image.qcow2.',
  );
  await form.field('Image file URL').fill('https://example.com/disk.exe');
  await expect(form.errorFor('Image file URL')).toHaveText('⚠ Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).');

  await form.field('Checksum').fill('sha512:' + 'a'.repeat(64));
  await expect(form.errorFor('Checksum')).toHaveText('⚠ A SHA-512 checksum has 128 hexadecimal digits (this one has 64).');
  await form.field('Checksum').fill('a'.repeat(64));
  await expect(form.errorFor('Checksum')).toHaveCount(0);
  await form.field('Checksum').fill('not hex');

  await form.field('Minimum Disk (GB)').fill('12289');
  await expect(form.errorFor('Minimum Disk (GB)')).toHaveText('⚠ Minimum Disk must be between 0 and 12,288 GB.');
  await form.field('Minimum Disk (GB)').fill('12288');
  await expect(form.errorFor('Minimum Disk (GB)')).toHaveCount(0);
  await form.field('Minimum RAM (GB)').fill('2097152');
  await expect(form.errorFor('Minimum RAM (GB)')).toHaveText('⚠ Minimum RAM must be between 0 and 2,097,151 GB.');

  // Submitting anyway: the server refuses with the same messages and nothing is created.
  await form.complete();
  await expect(form.errorFor('Operating system')).toHaveText('⚠ Select an operating system: Linux or Windows.');
  await expect(form.errorFor('System platform')).toHaveText('⚠ Select a system platform.');
  await expect(form.errorFor('Image file URL')).toHaveText('⚠ Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).');
  await expect(form.errorFor('Checksum')).toHaveText('⚠ Checksum must be hexadecimal digits only (found \'n\').');
  await expect(page).toHaveURL(/\/images\/create$/);
  await new ImageListPage(page).open();
  await expect(page.getByRole('heading', { name: 'No images yet' })).toBeVisible();
});

test('an image imported from a URL goes from Importing to Active and shows its details', async ({ page }) => {
  await newAccount(page);
  const form = new CreateImagePage(page);
  await form.open();
  const url = sourceUrl('slow', 'medium.qcow2');
  await form.fill({ name: 'rocky base', url, platform: 'Rocky Linux', version: '9', minDisk: '20', minRam: '4', description: 'golden image' });
  const summary = page.getByRole('complementary', { name: 'Summary' });
  await expect(summary.getByText('medium.qcow2')).toBeVisible();
  await expect(summary.getByText('Rocky Linux 9')).toBeVisible();
  await expect(summary.getByText(/from USD 0\.05 \/ month/)).toBeVisible();
  await form.complete();

  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();
  const row = list.row('rocky base');
  await expect(row.getByText('Importing')).toBeVisible();
  await expect(row.getByRole('progressbar', { name: 'Import progress of rocky base' })).toBeVisible();
  await expect(row.getByText('Active')).toBeVisible({ timeout: 30_000 });
  await expect(row.getByRole('progressbar')).toHaveCount(0);
  await expect(row.getByRole('cell', { name: 'Rocky Linux 9' })).toBeVisible();
  await expect(row.getByRole('cell', { name: 'Private' })).toBeVisible();
  await expect(row.getByText('1 GB')).toBeVisible();

  await list.openImage('rocky base');
  const details = page.getByRole('region', { name: 'Details' });
  const value = (label: string) => details.locator('.detail-row').filter({ has: page.getByText(label, { exact: true }) }).locator('dd');
  await expect(value('Status')).toHaveText('Active');
  await expect(value('Operating system')).toHaveText('Linux');
  await expect(value('System platform')).toHaveText('Rocky Linux');
  await expect(value('System version')).toHaveText('9');
  await expect(value('Image Type')).toHaveText('Image-Based');
  await expect(value('Image file URL')).toHaveText(url);
  await expect(value('Image size')).toContainText('1 GB');
  await expect(value('Image size')).toContainText('(3145728 bytes)');
  await expect(value('Virtual size')).toHaveText('10 GB (10737418240 bytes)');
  await expect(value('Disk format')).toHaveText('qcow2');
  await expect(value('OS hash algorithm')).toHaveText('sha512');
  await expect(value('OS hash value')).toHaveText(/^[0-9a-f]{128}$/);
  await expect(value('MD5 checksum')).toHaveText(/^[0-9a-f]{32}$/);
  await expect(value('Minimum Disk')).toHaveText('20 GB');
  await expect(value('Minimum RAM')).toHaveText('4 GB');
  await expect(value('Visibility')).toHaveText('Private');
  await expect(value('Protected')).toHaveText('Not used');
  await expect(value('Description')).toHaveText('golden image');
  await expect(value('SRN')).toHaveText(/^srn:image-console::.+:image::image\/[0-9a-f-]{36}$/);
  await expect(value('Creator')).toHaveText(/^admin@/);
});

test('a file that is not a qcow2 image fails with the reason', async ({ page }) => {
  await newAccount(page);
  const form = new CreateImageForm(page);
  await form.create('not an image', sourceUrl('files', 'random.qcow2'));
  const row = new ImageListPage(page).row('not an image');
  await expect(row.getByText('Failed')).toBeVisible();
  await expect(row.getByText('The file is not a qcow2 image: it does not start with the qcow2 signature.')).toBeVisible();
});

class CreateImageForm {
  constructor(private readonly page: Page) {}
  async create(name: string, url: string, isProtected = false) {
    const form = new CreateImagePage(this.page);
    await form.open();
    await form.fill({ name, url, protected: isProtected });
    await form.complete();
    await expect(new ImageListPage(this.page).heading).toBeVisible();
  }
}

test('Protected blocks Delete until it is turned off; Delete asks first', async ({ page }) => {
  await newAccount(page);
  await new CreateImageForm(page).create('keep me', sourceUrl('files', 'small.qcow2'), true);
  const list = new ImageListPage(page);
  await expect(list.row('keep me').getByText('Active')).toBeVisible();
  await list.openImage('keep me');

  const deleteButton = page.getByRole('button', { name: 'Delete' });
  await expect(deleteButton).toBeDisabled();
  await expect(page.getByText('This image is Protected. Turn Protected off before deleting it')).toBeVisible();

  await page.getByRole('button', { name: 'Turn off Protected' }).click();
  await expect(page.getByRole('button', { name: 'Turn on Protected' })).toBeVisible();
  await hydrated(page);
  await expect(deleteButton).toBeEnabled();

  // Cancel keeps the image.
  await deleteButton.click();
  const dialog = page.getByRole('dialog', { name: 'Delete Image' });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByText('keep me')).toBeVisible();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();

  await deleteButton.click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(list.heading).toBeVisible();
  await expect(page.getByRole('heading', { name: 'No images yet' })).toBeVisible();
});
