import { expect, test } from '@playwright/test';
import { ImageListPage, SignInPage, SignUpPage, hydrated, uniqueAccountId } from '../pages/console';

test('a newcomer signs up, lands on an empty Image List, signs out and back in', async ({ page }) => {
  const accountId = uniqueAccountId();
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(accountId);

  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();
  await expect(page).toHaveURL(/\/images$/);
  await expect(page.getByRole('heading', { name: 'No images yet' })).toBeVisible();
  await expect(page.getByText(accountId, { exact: true })).toBeVisible();

  await hydrated(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/signin/);

  await page.goto('/images');
  await expect(page).toHaveURL(/\/signin\?next=%2Fimages/);
  await new SignInPage(page).signIn(`admin@${accountId}`);
  await expect(list.heading).toBeVisible();
});

test('sign-up and sign-in errors appear beside their fields', async ({ page }) => {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await page.getByLabel('Account ID').fill('bad_id');
  await expect(page.getByText("Account ID can contain only English letters, digits and '-' (found '_').")).toBeVisible();
  await expect(page.getByLabel('Account ID')).toHaveAttribute('aria-invalid', 'true');

  const accountId = uniqueAccountId();
  await signUp.signUp(accountId);
  await expect(page).toHaveURL(/\/images$/);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/signin/);

  // The same Account ID again is refused by the server, under the field.
  await signUp.open();
  await signUp.signUp(accountId.toUpperCase(), `other@${accountId}`);
  await expect(page.getByText(`Account ID '${accountId}' is already taken; choose another.`)).toBeVisible();

  await page.goto('/signin');
  await new SignInPage(page).signIn(`admin@${accountId}`, 'wrong password');
  await expect(page.getByText('The user name or password is incorrect.')).toBeVisible();
});
