import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { CreateImagePage, ImageListPage, SignUpPage, hydrated, sourceUrl, uniqueAccountId } from '../pages/console';

async function newAccount(page: Page) {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('list'));
  await expect(new ImageListPage(page).heading).toBeVisible();
}

/**
 * Creates images through the Create Image server function directly (the form's own action
 * URL), which is what the form does, without typing each one.
 */
async function createImages(page: Page, images: { name: string; os?: string; version?: string; visibility?: string }[]) {
  const form = new CreateImagePage(page);
  await form.open();
  const action = await page.locator('form.create-layout').getAttribute('action');
  expect(action).toBeTruthy();
  for (const image of images) {
    const response = await page.request.post(action!, {
      form: {
        name: image.name,
        source_url: sourceUrl('files', 'small.qcow2'),
        os_family: (image.os ?? 'ubuntu').startsWith('windows') ? 'windows' : 'linux',
        os_platform: image.os ?? 'ubuntu',
        os_version: image.version ?? '',
        min_disk: '1',
        min_ram: '1',
        visibility: image.visibility ?? 'private',
        description: '',
      },
      headers: { Accept: 'application/json' },
      maxRedirects: 0,
    });
    expect(response.status(), await response.text()).toBeLessThan(400);
  }
}

test('search and filters narrow the table, and the URL keeps them', async ({ page }) => {
  await newAccount(page);
  await createImages(page, [
    { name: 'web-frontend', os: 'ubuntu' },
    { name: 'web-backend', os: 'rocky', visibility: 'shared' },
    { name: 'db-primary', os: 'rocky' },
    { name: 'app-server', os: 'windows-server', version: '2019' },
  ]);
  const list = new ImageListPage(page);
  await list.open();
  await expect(list.row('db-primary').getByText('Active')).toBeVisible();

  await page.getByLabel('Search by name').fill('WEB');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/q=WEB/);
  await expect(page.getByRole('rowheader')).toHaveText(['web-backend', 'web-frontend']);
  await expect(page.getByText('(Total 2)')).toBeVisible();

  await page.getByLabel('System platform').selectOption({ label: 'Rocky Linux' });
  await expect(page).toHaveURL(/os=rocky/);
  await expect(page.getByRole('rowheader')).toHaveText(['web-backend']);

  // A reload and the back button restore the same views.
  await page.reload();
  await hydrated(page);
  await expect(page.getByLabel('Search by name')).toHaveValue('WEB');
  await expect(page.getByRole('rowheader')).toHaveText(['web-backend']);
  await page.goBack();
  await expect(page.getByRole('rowheader')).toHaveText(['web-backend', 'web-frontend']);

  await page.getByRole('link', { name: 'Clear filters' }).click();
  await expect(page.getByRole('rowheader')).toHaveCount(4);

  // An operating system narrows to its platforms, and its platform list to its own.
  await page.getByLabel('Operating system').selectOption({ label: 'Windows' });
  await expect(page).toHaveURL(/family=windows/);
  await expect(page.getByRole('rowheader')).toHaveText(['app-server']);
  await expect(list.row('app-server').getByRole('cell', { name: 'Windows Server 2019' })).toBeVisible();
  await expect(page.getByLabel('System platform').locator('option')).toHaveText(['All', 'Windows Server', 'Windows']);
  await page.getByLabel('Operating system').selectOption({ label: 'Linux' });
  await expect(page.getByRole('rowheader')).toHaveText(['db-primary', 'web-backend', 'web-frontend']);
  await page.getByRole('link', { name: 'Clear filters' }).click();
  await expect(page.getByRole('rowheader')).toHaveCount(4);

  // Sorting by a column header, both ways.
  await page.getByRole('link', { name: 'Name' }).click();
  await expect(page).toHaveURL(/sort=name&dir=asc/);
  await expect(page.getByRole('rowheader')).toHaveText(['app-server', 'db-primary', 'web-backend', 'web-frontend']);
  await expect(page.getByRole('columnheader', { name: 'Name' })).toHaveAttribute('aria-sort', 'ascending');
  await page.getByRole('link', { name: 'Name' }).click();
  await expect(page.getByRole('rowheader')).toHaveText(['web-frontend', 'web-backend', 'db-primary', 'app-server']);
});

test('pages of 10 with the total count', async ({ page }) => {
  await newAccount(page);
  await createImages(page, Array.from({ length: 12 }, (_, i) => ({ name: `img-${String(i).padStart(2, '0')}` })));
  const list = new ImageListPage(page);
  await page.goto('/images?per_page=10');
  await hydrated(page);
  await expect(page.getByText('(Total 12)')).toBeVisible();
  await expect(page.getByRole('rowheader')).toHaveCount(10);
  await expect(page.getByText('1–10 of 12 images')).toBeVisible();
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Next' }).click();
  await expect(page).toHaveURL(/page=2/);
  await expect(page.getByRole('rowheader')).toHaveText(['img-01', 'img-00']);
  await expect(page.getByText('11–12 of 12 images')).toBeVisible();
  await page.getByLabel('Rows per page').selectOption('20');
  await expect(page.getByRole('rowheader')).toHaveCount(12);
  await expect(list.heading).toBeVisible();
});

test('select two images and delete them; Protected ones are skipped with the reason', async ({ page }) => {
  await newAccount(page);
  await createImages(page, [{ name: 'one' }, { name: 'two' }, { name: 'three' }]);
  const list = new ImageListPage(page);
  await list.open();
  await expect(list.row('one').getByText('Active')).toBeVisible();

  await page.getByRole('checkbox', { name: 'Select one' }).check();
  await page.getByRole('checkbox', { name: 'Select three' }).check();
  await expect(page.getByText('2 selected')).toBeVisible();
  await page.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete Images' });
  await expect(dialog.getByRole('listitem')).toHaveText(['one', 'three']);
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByText('Moved 2 images to the Recycle Bin.')).toBeVisible();
  await expect(page.getByRole('rowheader')).toHaveText(['two']);

  // Select all, with a Protected image among them.
  await list.openImage('two');
  await page.getByRole('button', { name: 'Turn on Protected' }).click();
  await expect(page.getByRole('button', { name: 'Turn off Protected' })).toBeVisible();
  await list.open();
  await page.getByRole('checkbox', { name: 'Select all images on this page' }).check();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete Images' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByText('Moved 0 images to the Recycle Bin.')).toBeVisible();
  await expect(page.getByText('This image is Protected. Turn Protected off before deleting it')).toBeVisible();
  await expect(page.getByRole('rowheader')).toHaveText([/^two/]);
});

test('Export CSV downloads the rows the filters show', async ({ page }) => {
  await newAccount(page);
  await createImages(page, [{ name: 'alpha', os: 'alma' }, { name: 'beta', os: 'ubuntu' }, { name: 'gamma', os: 'alma' }]);
  await page.goto('/images?os=alma');
  await hydrated(page);
  await expect(page.getByRole('rowheader')).toHaveText(['gamma', 'alpha']);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  expect(download.suggestedFilename()).toMatch(/^images-list-.*\.csv$/);
  const csv = readFileSync(await download.path(), 'utf8');
  const rows = csv.trim().split('\r\n');
  expect(rows[0]).toContain('Name,Resource ID,Status,Operating system,System platform,System version');
  expect(rows.slice(1).map((r) => r.split(',')[0])).toEqual(['gamma', 'alpha']);
  expect(csv).not.toContain('beta');
});
