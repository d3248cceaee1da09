// Drives headless Chromium through latchkey's "Your connected apps" page (tests/api/browser.rs runs
// it against an embedded latchkey, as `latchkey serve` runs): not signed in -> the local development
// sign-in page -> back to the page, which lists the app; screenshots at laptop and phone widths;
// Revoke -> 303 back with a notice and the app gone; screenshots again; Sign out.
//
// Environment:
//   ACCOUNT_URL      latchkey's account page URL
//   SCREENSHOT_DIR   where account-laptop.png, account-phone.png, account-revoked-laptop.png and
//                    account-revoked-phone.png are written
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SIGN_IN_EMAIL    the address for the local development sign-in (default alice@example.com)
//
// Prints one JSON line: {"listed_text", "revoked_text", "signed_out_text", "csp", "xfo", "scripts",
// "cards_before", "cards_after", "phone_overflow"}. Exits non-zero with a message on stderr on any failure.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 20_000;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is required`);
  return v;
}

async function shoot(page, dir, name) {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(dir, `${name}-laptop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(dir, `${name}-phone.png`), fullPage: true });
  // Readable at 390 px: nothing wider than the viewport.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize({ width: 1280, height: 800 });
  return overflow;
}

async function main() {
  const accountUrl = need('ACCOUNT_URL');
  const screenshotDir = need('SCREENSHOT_DIR');
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const email = process.env.SIGN_IN_EMAIL || 'alice@example.com';
  mkdirSync(screenshotDir, { recursive: true });

  const args = [];
  if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath, headless: true, args, timeout: TIMEOUT_MS });
  const log = [];
  try {
    // Works without JavaScript: the page has none, and the browser runs none.
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, javaScriptEnabled: false });
    context.setDefaultTimeout(TIMEOUT_MS);
    const page = await context.newPage();
    page.on('console', (m) => log.push(`console ${m.type()}: ${m.text()}`));
    page.on('requestfailed', (r) => log.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));

    // 1. Not signed in: the account page sends the browser to sign in.
    await page.goto(accountUrl, { waitUntil: 'load' });
    const emailInput = page.locator('input[type=email][name=email]');
    if ((await emailInput.count()) !== 1) {
      throw new Error(`expected the sign-in page at ${page.url()}, got:\n` + (await page.locator('body').innerText()));
    }
    await emailInput.fill(email);
    const isAccount = (r) => r.request().method() === 'GET' && r.url().startsWith(accountUrl);
    const [listed] = await Promise.all([
      page.waitForResponse(isAccount),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    await page.waitForLoadState('load');
    if (listed.status() !== 200) {
      throw new Error(`the account page answered ${listed.status()}:\n` + (await page.locator('body').innerText()));
    }
    const headers = await listed.allHeaders();
    const listedText = (await page.locator('main').innerText()).trim();
    const scripts = await page.locator('script').count();
    const revoke = page.getByRole('button', { name: /^Revoke access/ });
    const cardsBefore = await revoke.count();
    if (cardsBefore < 1) throw new Error('no Revoke button on the account page:\n' + listedText);

    // 2. What a person sees, on a laptop and on a phone.
    const overflowListed = await shoot(page, screenshotDir, 'account');

    // 3. Revoke: a form POST, 303 back to the page with a notice.
    const [afterRevoke] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'GET' && r.url().includes('notice=revoked')),
      revoke.first().click(),
    ]);
    await page.waitForLoadState('load');
    if (afterRevoke.status() !== 200) throw new Error(`after revoking the page answered ${afterRevoke.status()}`);
    const revokedText = (await page.locator('main').innerText()).trim();
    const cardsAfter = await page.getByRole('button', { name: /^Revoke access/ }).count();
    const overflowRevoked = await shoot(page, screenshotDir, 'account-revoked');

    // 4. Sign out.
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'GET' && r.url().includes('signed_out=1')),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    await page.waitForLoadState('load');
    const signedOutText = (await page.locator('main').innerText()).trim();

    process.stdout.write(
      JSON.stringify({
        listed_text: listedText,
        revoked_text: revokedText,
        signed_out_text: signedOutText,
        csp: headers['content-security-policy'] || '',
        xfo: headers['x-frame-options'] || '',
        scripts,
        cards_before: cardsBefore,
        cards_after: cardsAfter,
        phone_overflow: Math.max(overflowListed, overflowRevoked),
      }) + '\n',
    );
  } catch (e) {
    if (log.length) e.message += `\nbrowser log:\n  ${log.join('\n  ')}`;
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

main().catch((e) => {
  process.stderr.write(`account.mjs: ${e?.stack || e}\n`);
  process.exit(1);
});
