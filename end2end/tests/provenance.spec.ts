import { expect, test, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateImagePage,
  ImageListPage,
  SignUpPage,
  detailValue,
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

/** A signing key and its certificate, made with openssl as a release pipeline would. */
function signer(dir: string) {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]);
  execFileSync('openssl', ['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '30', '-subj', '/CN=Release signing/O=Example']);
  return { key, cert };
}

test('upload a certificate, import a signed image and see it verified; a past deprecation leaves the default list', async ({ page }) => {
  const dir = mkdtempSync(join(tmpdir(), 'image-console-signing-'));
  const { key, cert } = signer(dir);
  // The image as the source serves it, signed as Glance's documentation shows.
  const url = sourceUrl('files', 'small.qcow2');
  const image = join(dir, 'small.qcow2');
  writeFileSync(image, Buffer.from(await (await fetch(url)).arrayBuffer()));
  execFileSync('openssl', ['dgst', '-sha256', '-sign', key, '-sigopt', 'rsa_padding_mode:pss', '-out', join(dir, 'sig'), image]);
  const signature = readFileSync(join(dir, 'sig')).toString('base64');

  await newAccount(page);
  // Certificates, from the account menu.
  await page.locator('summary', { hasText: 'Account' }).click();
  await page.getByRole('link', { name: 'Certificates' }).click();
  await expect(page.getByRole('heading', { name: 'Certificates', level: 1 })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Certificate file').setInputFiles(cert);
  await expect(page.getByLabel('Certificate (PEM)')).toHaveValue(/BEGIN CERTIFICATE/);
  await page.getByRole('button', { name: 'Upload Certificate' }).click();
  const row = page.getByRole('row').filter({ hasText: 'CN=Release signing' });
  await expect(row).toBeVisible();
  await expect(row.getByText('RSA 2048-bit')).toBeVisible();
  await expect(row.getByText('Valid', { exact: true })).toBeVisible();
  const fingerprint = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).toString().trim().split('=')[1];
  await expect(row.getByText(fingerprint)).toBeVisible();
  // A private key is refused with the reason.
  await page.getByLabel('Certificate (PEM)').fill(readFileSync(key, 'utf8'));
  await page.getByRole('button', { name: 'Upload Certificate' }).click();
  await expect(page.getByText(/holds a private key/).first()).toBeVisible();

  // Create Image with the Signature section.
  const form = new CreateImagePage(page);
  await form.open();
  await form.fill({ name: 'signed release', url });
  await page.getByRole('checkbox', { name: 'Verify a signature' }).check();
  await form.field('Certificate').selectOption({ label: 'O=Example,CN=Release signing (RSA 2048-bit)' });
  await expect(form.field('Key type')).toHaveValue('RSA-PSS');
  await expect(form.field('Hash method')).toHaveValue('SHA-256');
  await form.field('Signature (base64)').fill(signature);
  const summary = page.getByRole('complementary', { name: 'Summary' });
  await expect(summary.getByText('Verified (RSA-PSS with SHA-256)')).toBeVisible();
  await form.complete();

  const list = new ImageListPage(page);
  await expect(list.row('signed release').getByText('Active')).toBeVisible({ timeout: 30_000 });
  await list.openImage('signed release');
  // The row's value (it holds a list of its own).
  const verified = detailValue(page, 'Signature').first();
  await expect(verified).toContainText('Verified');
  await expect(verified).toContainText('O=Example,CN=Release signing');
  await expect(verified).toContainText(fingerprint);
  await expect(verified).toContainText('RSA-PSS with SHA-256');

  // Deprecate on, in the past: Deprecated at once, and out of the default Image List.
  await page.getByLabel('Deprecate on (UTC)').fill('2026-01-01T00:00');
  await page.getByRole('button', { name: 'Set Deprecation' }).click();
  await expect(detailValue(page, 'Deprecate on')).toContainText('Deprecated');
  await list.open();
  await expect(page.getByRole('heading', { name: 'No images yet' })).toBeVisible();
  await page.getByLabel('Deprecated', { exact: true }).selectOption({ label: 'Only deprecated' });
  await expect(list.row('signed release').getByText('Deprecated')).toBeVisible();
  await expect(page).toHaveURL(/deprecated=only/);
});
