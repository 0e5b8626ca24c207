import { expect, test, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, PASSWORD, SignInPage, SignUpPage, hydrated, uniqueAccountId } from '../pages/console';

/** Records every Content-Security-Policy violation the page reports. */
async function watchViolations(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    (window as unknown as { violations: string[] }).violations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      (window as unknown as { violations: string[] }).violations.push(
        `${event.violatedDirective} ${event.blockedURI}`,
      );
    });
  });
  const messages: string[] = [];
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) messages.push(message.text());
  });
  return async () => [
    ...messages,
    ...(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)),
  ];
}

test('pages hydrate under the Content-Security-Policy, with nothing blocked', async ({ page }) => {
  const violations = await watchViolations(page);
  const signUpPage = await page.goto('/signup');
  const policy = signUpPage?.headers()['content-security-policy'] ?? '';
  expect(policy).toContain("script-src 'self' 'nonce-");
  expect(policy).toContain("'wasm-unsafe-eval'");
  expect(policy).not.toContain('unsafe-inline');
  await hydrated(page);

  const accountId = uniqueAccountId('csp');
  await new SignUpPage(page).signUp(accountId);
  const list = new ImageListPage(page);
  await expect(list.heading).toBeVisible();
  await hydrated(page);
  // Client-side navigation, a form with live validation, and a full reload of each page.
  await page.getByRole('link', { name: 'Create Image' }).first().click();
  const create = new CreateImagePage(page);
  await create.field('Image name').fill('x');
  await create.field('Image name').fill('');
  await expect(create.errorFor('Image name')).toBeVisible();
  for (const path of ['/images', '/images/create', '/images/share-requests', '/images/work-history']) {
    await page.goto(path);
    await hydrated(page);
  }
  expect(await violations()).toEqual([]);
});

test('the sign-in form says when there were too many attempts', async ({ page }) => {
  const accountId = uniqueAccountId('limit');
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(accountId);
  await expect(new ImageListPage(page).heading).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/signin/);

  // Ten guesses at one user name a minute are allowed; then the form says to wait. (A slow
  // run may earn a guess back while it goes, hence the few spare attempts.)
  const signIn = new SignInPage(page);
  let status = 0;
  for (let attempt = 0; attempt < 14 && status !== 429; attempt++) {
    const answered = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/api/'));
    await signIn.signIn(`admin@${accountId}`, `wrong guess ${attempt}`);
    status = (await answered).status();
    if (attempt < 10) {
      expect(status).toBe(400);
      await expect(page.getByText('The user name or password is incorrect.')).toBeVisible();
    }
  }
  expect(status).toBe(429);
  await expect(page.getByRole('alert')).toHaveText(/^Too many attempts; try again in \d+ seconds?\.$/);
  await expect(page).toHaveURL(/\/signin/);
});

const hostileNext = ['/%09/evil.example', '//evil.example', '/%5Cevil.example', 'https://evil.example', 'javascript:alert(1)'];

test('after signing in, next never leads off the site', async ({ page }) => {
  const accountId = uniqueAccountId('next');
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(accountId);
  await expect(new ImageListPage(page).heading).toBeVisible();
  for (const next of hostileNext) {
    await page.context().clearCookies();
    await page.goto(`/signin?next=${next}`);
    await new SignInPage(page).signIn(`admin@${accountId}`);
    await expect(page).toHaveURL(/\/images$/);
    expect(new URL(page.url()).host).toBe(new URL(test.info().project.use.baseURL ?? '').host);
  }
  await page.context().clearCookies();
  await page.goto('/signin?next=/images/create');
  await new SignInPage(page).signIn(`admin@${accountId}`);
  await expect(page).toHaveURL(/\/images\/create$/);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the sign-in form redirects only within the site', async ({ page }) => {
    const accountId = uniqueAccountId('nojs');
    // The forms work as plain HTML forms.
    await page.goto('/signup');
    await page.getByLabel('Account ID').fill(accountId);
    await page.getByLabel('User name').fill(`admin@${accountId}`);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Confirm password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page).toHaveURL(/\/images$/);
    for (const next of [...hostileNext, '/images/create']) {
      await page.context().clearCookies();
      await page.goto(`/signin?next=${next}`);
      await page.getByLabel('User name').fill(`admin@${accountId}`);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const expected = next === '/images/create' ? /\/images\/create$/ : /\/images$/;
      await expect(page).toHaveURL(expected);
    }
  });
});
