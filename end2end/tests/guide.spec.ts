import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { ImageListPage, SignUpPage, hydrated, uniqueAccountId } from '../pages/console';

test('the Image guide opens from the Image List and from Create Image', async ({ page }) => {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('guide'));
  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();
  await hydrated(page);

  await page.getByRole('link', { name: 'Image guide' }).click();
  const heading = page.getByRole('heading', { level: 1, name: 'Image guide' });
  await expect(heading).toBeVisible();
  await hydrated(page);
  for (const section of [
    '1. Prepare the virtual machine',
    '2. Formats the console accepts',
    '3. What inspection refuses, and why',
    '4. Let the console convert, or convert with qemu-img',
    '5. Upload from your computer, and resume',
  ]) {
    await expect(page.getByRole('region', { name: section })).toBeVisible();
  }
  await expect(page.getByText('qemu-img convert -p -f vmdk -O qcow2 disk.vmdk disk.qcow2')).toBeVisible();
  await expect(page.getByRole('term').filter({ hasText: 'A backing file (qcow2)' })).toBeVisible();
  // The versions come from the catalogue the forms check.
  const centos = page.getByRole('row', { name: /^Linux CentOS/ });
  await expect(centos.getByRole('cell')).toHaveText(['Linux', '6.5–6.10 or 7.0–7.9', '7.6–7.9']);
  await expect(page.getByRole('row', { name: /^Windows Windows Server/ }).getByRole('cell').last()).toHaveText('Not offered');
  const axe = await new AxeBuilder({ page }).analyze();
  expect(axe.violations.map((v) => v.id), 'axe on the Image guide').toEqual([]);

  // From Create Image, and back to it.
  await page.getByRole('link', { name: 'Create Image' }).last().click();
  await expect(page.getByRole('heading', { level: 1, name: 'Create Image' })).toBeVisible();
  await hydrated(page);
  await page.getByRole('main').getByRole('link', { name: 'Image guide' }).click();
  await expect(heading).toBeVisible();
});
