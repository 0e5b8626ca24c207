import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, hydrated, sourceUrl, uniqueAccountId } from '../pages/console';

async function expectNoViolations(page: Page, what: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const summary = results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(summary, `accessibility violations on ${what}`).toEqual([]);
}

test('every page passes an axe audit', async ({ page }) => {
  await page.goto('/signin');
  await hydrated(page);
  await expectNoViolations(page, 'Sign in');

  const signUp = new SignUpPage(page);
  await signUp.open();
  await expectNoViolations(page, 'Sign up');
  await signUp.signUp(uniqueAccountId('a11y'));
  await expect(new ImageListPage(page).heading).toBeVisible();
  await hydrated(page);
  await expectNoViolations(page, 'the empty Image List');

  const form = new CreateImagePage(page);
  await form.open();
  await expectNoViolations(page, 'Create Image');
  await page.getByRole('radio', { name: /^Local file/ }).check();
  await expect(form.field('Image file')).toBeVisible();
  await expectNoViolations(page, 'Create Image from a local file');
  await page.getByRole('radio', { name: /^Image file URL/ }).check();
  await form.fill({ name: 'audited', url: sourceUrl('files', 'small.qcow2') });
  await form.complete();
  const list = new ImageListPage(page);
  await expect(list.row('audited').getByText('Active')).toBeVisible();
  await expectNoViolations(page, 'the Image List');
  await list.openImage('audited');
  await expectNoViolations(page, 'Image Details');
  await page.getByRole('button', { name: 'Edit' }).click();
  await expect(page.getByRole('heading', { name: 'Edit Image' })).toBeVisible();
  await expectNoViolations(page, 'the Edit form');
  await page.getByRole('link', { name: 'Tags' }).click();
  await expect(page.getByRole('heading', { name: 'Add Tag' })).toBeVisible();
  await expectNoViolations(page, 'the Tags tab');
  await page.getByRole('link', { name: 'Work History' }).click();
  await expect(page.getByRole('cell', { name: 'Create Image' })).toBeVisible();
  await expectNoViolations(page, 'the Work History tab');
  await page.getByRole('button', { name: 'Create download link' }).click();
  await expect(page.getByLabel('Download link')).toBeVisible();
  await expectNoViolations(page, 'Image Details with a download link');
  await page.goto('/images/recycle-bin');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'The Recycle Bin is empty' })).toBeVisible();
  await expectNoViolations(page, 'the empty Recycle Bin');
  await page.goto('/images/account-settings');
  await hydrated(page);
  await expect(page.getByLabel('Retention (days)')).toBeVisible();
  await expectNoViolations(page, 'Account settings');
  await page.goto('/images/keys');
  await hydrated(page);
  await page.getByLabel('Key name', { exact: true }).fill('audited-key');
  await page.getByRole('button', { name: 'Create Key' }).click();
  await expect(page.getByRole('rowheader', { name: /audited-key/ })).toBeVisible();
  await expectNoViolations(page, 'Keys');
});

test('the console works with the keyboard alone', async ({ page }) => {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await page.getByLabel('Account ID').focus();
  await page.keyboard.type(uniqueAccountId('kbd'));
  await page.keyboard.press('Tab');
  await page.keyboard.type('keyboard@example.com');
  await page.keyboard.press('Tab');
  await page.keyboard.type('correct horse battery');
  await page.keyboard.press('Tab');
  await page.keyboard.type('correct horse battery');
  await page.keyboard.press('Enter');
  await expect(new ImageListPage(page).heading).toBeVisible();

  // After a navigation, focus moves to the new page's content.
  await expect(page.getByRole('main')).toBeFocused();
  const guide = page.getByRole('main').getByRole('link', { name: 'Image guide' });
  await page.keyboard.press('Tab');
  await expect(guide).toBeFocused();
  const more = page.getByText('More', { exact: true });
  await page.keyboard.press('Tab');
  await expect(more).toBeFocused();
  // A closed menu's links are not in the tab order.
  await page.keyboard.press('Tab');
  const bin = page.getByRole('main').getByRole('link', { name: 'Recycle Bin' }).first();
  await expect(bin).toBeFocused();
  await page.keyboard.press('Tab');
  const create = page.getByRole('main').getByRole('link', { name: 'Create Image' }).first();
  await expect(create).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'Create Image' })).toBeVisible();
  await expect(page.getByRole('main')).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Image List' }).last()).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(page.getByRole('main').getByRole('link', { name: 'Image guide' })).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Image name')).toBeFocused();

  // On a fresh page load the skip link comes first and jumps to the content.
  await page.goto('/images');
  await hydrated(page);
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await expect(guide).toBeFocused();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await expect(bin).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(create).toBeFocused();

  // More opens with the keyboard and leads to the sharing pages.
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Shift+Tab');
  await expect(more).toBeFocused();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Image Share Request List' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'Image Share Request List' })).toBeVisible();
  await expect(page.getByRole('main')).toBeFocused();
});
