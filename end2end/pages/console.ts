import { expect, type Locator, type Page } from '@playwright/test';

/** Waits until the wasm bundle has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** An Account ID no other test uses. */
/** The value of a row of Image Details' Details card. */
export function detailValue(page: Page, label: string) {
  return page
    .getByRole('region', { name: 'Details' })
    .locator('.detail-row')
    .filter({ has: page.getByText(label, { exact: true }) })
    .locator('dd');
}

export function uniqueAccountId(prefix = 'acct'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

export const PASSWORD = 'correct horse battery';

/** The source server's URL for a fixture file. */
export function sourceUrl(route: 'files' | 'slow', name: string): string {
  return `${process.env.E2E_SOURCE_URL}/${route}/${name}`;
}

export class SignUpPage {
  constructor(private readonly page: Page) {}

  async open() {
    await this.page.goto('/signup');
    await hydrated(this.page);
  }

  async signUp(accountId: string, userName = `admin@${accountId}`, password = PASSWORD) {
    await this.page.getByLabel('Account ID').fill(accountId);
    await this.page.getByLabel('User name').fill(userName);
    await this.page.getByLabel('Password', { exact: true }).fill(password);
    await this.page.getByLabel('Confirm password').fill(password);
    await this.page.getByRole('button', { name: 'Create account' }).click();
  }
}

export class SignInPage {
  constructor(private readonly page: Page) {}

  async signIn(userName: string, password = PASSWORD) {
    await hydrated(this.page);
    await this.page.getByLabel('User name').fill(userName);
    await this.page.getByLabel('Password').fill(password);
    await this.page.getByRole('button', { name: 'Sign in' }).click();
  }
}

export class ImageListPage {
  readonly heading: Locator;

  constructor(private readonly page: Page) {
    this.heading = page.getByRole('heading', { level: 1, name: 'Image List' });
  }

  async open() {
    await this.page.goto('/images');
    await hydrated(this.page);
  }

  row(name: string): Locator {
    return this.page.getByRole('row').filter({ has: this.page.getByRole('rowheader', { name }) });
  }

  async openImage(name: string) {
    await this.page.getByRole('link', { name, exact: true }).click();
    await expect(this.page.getByRole('heading', { level: 1, name })).toBeVisible();
    await hydrated(this.page);
  }
}

export interface NewImage {
  name: string;
  url: string;
  /** System platform, as the list names it; Windows platforms choose Operating system Windows. */
  platform?: string;
  /** System version; none leaves it Not specified. */
  version?: string;
  architecture?: 'x86_64' | 'aarch64';
  minDisk?: string;
  minRam?: string;
  visibility?: 'Private' | 'Shared';
  protected?: boolean;
  description?: string;
}

export class CreateImagePage {
  constructor(private readonly page: Page) {}

  async open() {
    await this.page.goto('/images/create');
    await hydrated(this.page);
  }

  field(label: string): Locator {
    return this.page.getByLabel(label, { exact: true });
  }

  async fill(image: NewImage) {
    await this.field('Image name').fill(image.name);
    await this.field('Image file URL').fill(image.url);
    await this.chooseOs(image.platform ?? 'Ubuntu', image.version, image.architecture);
    await this.field('Minimum Disk (GB)').fill(image.minDisk ?? '10');
    await this.field('Minimum RAM (GB)').fill(image.minRam ?? '2');
    await this.page.getByRole('radio', { name: new RegExp(`^${image.visibility ?? 'Private'}`) }).check();
    if (image.protected) {
      await this.page.getByRole('checkbox', { name: 'Use' }).check();
    }
    if (image.description) {
      await this.field('Description').fill(image.description);
    }
  }

  /** Operating system, Architecture, System platform and System version, in the form's order. */
  async chooseOs(platform: string, version?: string, architecture?: 'x86_64' | 'aarch64') {
    await this.field('Operating system').selectOption({ label: platform.startsWith('Windows') ? 'Windows' : 'Linux' });
    if (architecture) {
      await this.field('Architecture').selectOption(architecture);
    }
    await this.field('System platform').selectOption({ label: platform });
    if (version) {
      await this.field('System version').selectOption({ label: version });
    }
  }

  async complete() {
    await this.page.getByRole('button', { name: 'Complete' }).click();
  }

  /** The error message tied to a field by aria-describedby. */
  errorFor(label: string): Locator {
    return this.page.locator('.field').filter({ has: this.field(label) }).locator('.field-error');
  }
}
