import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Browser, type Page } from '@playwright/test';
import { CreateImagePage, ImageListPage, SignUpPage, hydrated, sourceUrl, uniqueAccountId } from '../pages/console';

/** A signed-up account in its own browser context, as a second person would be. */
async function person(browser: Browser, prefix: string): Promise<{ page: Page; accountId: string }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const accountId = uniqueAccountId(prefix);
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(accountId);
  await expect(new ImageListPage(page).heading).toBeVisible();
  return { page, accountId };
}

/** Imports an image and opens its Details; returns its resource ID. */
async function activeImage(page: Page, name: string): Promise<string> {
  const form = new CreateImagePage(page);
  await form.open();
  await form.fill({ name, url: sourceUrl('files', 'small.qcow2') });
  await form.complete();
  const list = new ImageListPage(page);
  await expect(list.row(name).getByText('Active')).toBeVisible();
  await list.openImage(name);
  return page.url().split('/images/')[1].split('?')[0];
}

async function shareWith(page: Page, accountId: string) {
  await page.getByRole('link', { name: 'Share to another Account' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Share to another Account' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Account ID').fill(accountId);
  await page.getByRole('button', { name: 'Share', exact: true }).click();
  await expect(page.getByRole('status')).toContainText(`Shared with account ${accountId}.`);
  await expect(page.getByRole('row', { name: new RegExp(accountId) })).toContainText('Pending');
}

async function expectNoViolations(page: Page, what: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const summary = results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(summary, `accessibility violations on ${what}`).toEqual([]);
}

test('share, approve, use and stop sharing between two accounts @s3', async ({ browser }) => {
  const owner = await person(browser, 'owner');
  const recipient = await person(browser, 'recipient');
  const id = await activeImage(owner.page, 'golden-web');

  // The Account ID field checks its rules as the server does.
  await owner.page.getByRole('link', { name: 'Share to another Account' }).click();
  await hydrated(owner.page);
  await owner.page.getByLabel('Account ID').fill('bad_id');
  await expect(owner.page.getByText("Account ID can contain only English letters, digits and '-' (found '_').")).toBeVisible();
  await owner.page.getByLabel('Account ID').fill(owner.accountId);
  await owner.page.getByRole('button', { name: 'Share', exact: true }).click();
  await expect(owner.page.getByText('This image belongs to this account. Enter the ID of another account.')).toBeVisible();
  await expectNoViolations(owner.page, 'Share to another Account');
  await owner.page.getByRole('link', { name: 'Back to Image Details' }).click();
  await shareWith(owner.page, recipient.accountId);

  // The recipient's navigation shows one request; the request list names the image.
  await recipient.page.reload();
  await hydrated(recipient.page);
  const requests = recipient.page.getByRole('link', { name: 'Share Requests (1 pending)' });
  await expect(requests).toBeVisible();
  await requests.click();
  await expect(recipient.page.getByRole('heading', { level: 1, name: 'Image Share Request List' })).toBeVisible();
  await hydrated(recipient.page);
  const row = recipient.page.getByRole('row', { name: /golden-web/ });
  await expect(row).toContainText(owner.accountId);
  await expect(row).toContainText('Ubuntu');
  await expectNoViolations(recipient.page, 'the Image Share Request List');
  await row.getByRole('button', { name: 'Approve golden-web' }).click();
  await expect(recipient.page.getByRole('status')).toContainText('Approved 1 image: golden-web.');
  await expect(recipient.page.getByRole('link', { name: 'Share Requests', exact: true })).toBeVisible();
  await expect(recipient.page.getByRole('heading', { name: 'No share requests' })).toBeVisible();

  // It is in the recipient's Image List, marked with its owner, view and download only.
  const list = new ImageListPage(recipient.page);
  await list.open();
  await expect(list.row('golden-web')).toContainText(`Shared by ${owner.accountId}`);
  await expect(list.row('golden-web').getByRole('checkbox')).toBeDisabled();
  await list.openImage('golden-web');
  await expect(recipient.page.getByRole('note')).toContainText(`Account ${owner.accountId} shares this image with this account.`);
  for (const name of ['Edit', 'Delete', 'Turn on Protected', 'Revoke links']) {
    await expect(recipient.page.getByRole('button', { name, exact: true })).toHaveCount(0);
  }
  await expect(recipient.page.getByRole('link', { name: 'Tags' })).toHaveCount(0);
  await recipient.page.getByRole('button', { name: 'Create download link' }).click();
  const link = recipient.page.getByLabel('Download link');
  await expect(link).toHaveValue(new RegExp(`acct=${recipient.accountId}&since=\\d+&sig=`));
  const url = await link.inputValue();
  const stranger = await browser.newContext();
  expect((await stranger.request.get(url)).status()).toBe(200);
  await expectNoViolations(recipient.page, 'a shared image\'s Details');

  // The owner sees it Accepted, and stops sharing.
  await owner.page.goto(`/images/${id}/share`);
  await hydrated(owner.page);
  const share = owner.page.getByRole('row', { name: new RegExp(recipient.accountId) });
  await expect(share).toContainText('Accepted');
  await share.getByRole('button', { name: `Stop sharing with ${recipient.accountId}` }).click();
  const dialog = owner.page.getByRole('dialog', { name: 'Stop sharing' });
  await expect(dialog).toContainText('loses access at once');
  await dialog.getByRole('button', { name: 'Stop sharing' }).click();
  await expect(share).toContainText('Sharing stopped');
  await expect(share.getByRole('button', { name: `Share again with ${recipient.accountId}` })).toBeVisible();

  // The recipient lost it at once: list, details and link.
  await list.open();
  await expect(recipient.page.getByRole('heading', { name: 'No images yet' })).toBeVisible();
  await recipient.page.goto(`/images/${id}`);
  await expect(recipient.page.getByText('No image with that ID exists in this account.')).toBeVisible();
  const refused = await stranger.request.get(url);
  expect(refused.status()).toBe(403);
  expect(await refused.text()).toContain('no longer shared');
  await stranger.close();

  // Both accounts' Work History tell the story.
  await list.open();
  await recipient.page.getByText('More', { exact: true }).click();
  await recipient.page.getByRole('link', { name: 'Work History' }).click();
  await expect(recipient.page.getByRole('heading', { level: 1, name: 'Work History' })).toBeVisible();
  const history = recipient.page.getByRole('table');
  for (const topic of ['Share to another Account', 'Approve Image Share', 'Create download link', 'Stop sharing']) {
    await expect(history.getByRole('cell', { name: topic, exact: true })).toBeVisible();
  }
  await expectNoViolations(recipient.page, 'Work History');
  await owner.page.goto(`/images/${id}?tab=history`);
  const ownerHistory = owner.page.getByRole('region', { name: 'Work History' });
  await expect(ownerHistory.getByText(`Account ${recipient.accountId} approved the share.`)).toBeVisible();
  await expect(ownerHistory.getByText(`Stopped sharing with account ${recipient.accountId} (it was Accepted).`)).toBeVisible();
  await owner.page.context().close();
  await recipient.page.context().close();
});

test('reject a request, then approve it with Get Image Share', async ({ browser }) => {
  const owner = await person(browser, 'owner');
  const recipient = await person(browser, 'recipient');
  const id = await activeImage(owner.page, 'db-base');
  await shareWith(owner.page, recipient.accountId);

  // Reject from the request list, reached through More on the Image List.
  await recipient.page.reload();
  await hydrated(recipient.page);
  await recipient.page.getByText('More', { exact: true }).click();
  await recipient.page.getByRole('link', { name: 'Image Share Request List' }).click();
  await hydrated(recipient.page);
  await recipient.page.getByRole('checkbox', { name: 'Select db-base' }).check();
  await recipient.page.getByRole('button', { name: 'Reject selected' }).click();
  await expect(recipient.page.getByRole('status')).toContainText('Rejected 1 image: db-base.');
  await expect(recipient.page.getByRole('link', { name: 'Share Requests', exact: true })).toBeVisible();

  // Get Image Share: a malformed ID is refused beside the field; the real one is found.
  await recipient.page.getByRole('link', { name: 'Get Image Share' }).first().click();
  await expect(recipient.page.getByRole('heading', { level: 1, name: 'Get Image Share' })).toBeVisible();
  await hydrated(recipient.page);
  await recipient.page.getByLabel('Resource ID').fill('not-an-id');
  await expect(recipient.page.getByText('A Resource ID is 36 characters', { exact: false })).toBeVisible();
  await recipient.page.getByLabel('Resource ID').fill(id.toUpperCase());
  await recipient.page.getByRole('button', { name: 'Look up' }).click();
  const found = recipient.page.getByRole('region', { name: 'db-base' });
  await expect(found).toContainText('Rejected');
  await expect(found).toContainText(owner.accountId);
  await expectNoViolations(recipient.page, 'Get Image Share');
  await found.getByRole('button', { name: 'Approve' }).click();
  await expect(recipient.page.getByRole('status')).toContainText('Approved 1 image: db-base.');
  await expect(found).toContainText('Accepted');
  await found.getByRole('link', { name: 'Open Image Details' }).click();
  await expect(recipient.page.getByRole('heading', { level: 1, name: 'db-base' })).toBeVisible();

  // The owner cannot make it Private while it is shared; the Edit form says why.
  await owner.page.goto(`/images/${id}`);
  await hydrated(owner.page);
  await owner.page.getByRole('button', { name: 'Edit' }).click();
  const edit = owner.page.getByRole('region', { name: 'Edit Image' });
  await edit.getByRole('radio', { name: /^Private/ }).check();
  await expect(edit.getByText('This image is shared with 1 account. Stop sharing with each of them on its Share page before making it Private.')).toBeVisible();
  await edit.getByRole('button', { name: 'Save' }).click();
  await expect(edit.getByText('This image is shared with 1 account.', { exact: false })).toBeVisible();
  await owner.page.context().close();
  await recipient.page.context().close();
});

test('Create shared Image makes a Shared image of the same bytes', async ({ page }) => {
  const signUp = new SignUpPage(page);
  await signUp.open();
  await signUp.signUp(uniqueAccountId('copy'));
  await expect(new ImageListPage(page).heading).toBeVisible();
  const id = await activeImage(page, 'private-base');
  await page.getByRole('button', { name: 'Create shared Image' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create shared Image' });
  await expect(dialog).toContainText('nothing is copied');
  const name = dialog.getByLabel('Name of the shared image');
  await expect(name).toHaveValue('private-base-shared');
  await name.fill('bad/name');
  await expect(dialog.getByText("Image name can contain only English letters, digits, spaces, '-' and '_' (found '/').")).toBeVisible();
  await name.fill('base-for-partners');
  await dialog.getByRole('button', { name: 'Complete' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'base-for-partners' })).toBeVisible();
  const details = page.getByRole('region', { name: 'Details' });
  // Its Lineage names the source, a link, with its id.
  await expect(details.getByRole('link', { name: 'private-base', exact: true })).toHaveAttribute('href', `/images/${id}`);
  await expect(details).toContainText(id);
  await expect(details).toContainText('Shared');
  // A Shared image cannot be the source of another.
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Create shared Image' })).toBeDisabled();
  const list = new ImageListPage(page);
  await list.open();
  await expect(list.row('private-base')).toBeVisible();
  await expect(list.row('base-for-partners')).toBeVisible();
});
