// Drives headless Chromium through latchkey's sign-in -> consent -> redirect flow
// (tests/api/browser.rs runs it against an embedded latchkey, as `latchkey serve` runs).
//
// Environment:
//   AUTHORIZE_URL    a full latchkey authorize URL
//   REDIRECT_PREFIX  the client's redirect URI; the final navigation there is intercepted
//   SCREENSHOT_DIR   where consent-laptop.png and consent-phone.png are written
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SIGN_IN_EMAIL    the address for the local development sign-in (default alice@example.com)
//   FRONT_DOOR_URL   optional: latchkey serve's `GET /`, shot first as front-door-{laptop,phone}.png
//
// Prints one JSON line: {"code", "state", "iss", "consent_title", "page_title", "consent_text",
// "sign_in_text", "front_door_text"}.
// Exits non-zero with a message on stderr on any failure.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 20_000;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is required`);
  return v;
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const authorizeUrl = need('AUTHORIZE_URL');
  const redirectPrefix = need('REDIRECT_PREFIX');
  const screenshotDir = need('SCREENSHOT_DIR');
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const email = process.env.SIGN_IN_EMAIL || 'alice@example.com';
  mkdirSync(screenshotDir, { recursive: true });
  const origin = new URL(authorizeUrl).origin;

  const args = [];
  if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath, headless: true, args, timeout: TIMEOUT_MS });
  const log = []; // console messages and failed requests, shown if something goes wrong
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(TIMEOUT_MS);
    const page = await context.newPage();
    page.on('console', (m) => log.push(`console ${m.type()}: ${m.text()}`));
    page.on('requestfailed', (r) => log.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));

    // The client's redirect URI: answer it here instead of the network, and keep the URL.
    let reachedClient;
    const redirected = new Promise((resolve) => (reachedClient = resolve));
    await page.route(
      (url) => url.href.startsWith(redirectPrefix),
      async (route) => {
        reachedClient(route.request().url());
        await route.fulfill({
          status: 200,
          contentType: 'text/html; charset=utf-8',
          body: '<!doctype html><title>Client</title><p>Signed in; you can close this window.</p>',
        });
      },
    );

    // 0. The front door, at laptop and phone widths.
    let frontDoorText = null;
    if (process.env.FRONT_DOOR_URL) {
      const door = await page.goto(process.env.FRONT_DOOR_URL, { waitUntil: 'load' });
      if (!door || door.status() !== 200) throw new Error(`the front door answered ${door?.status()}`);
      frontDoorText = (await page.locator('main').innerText()).trim();
      await page.screenshot({ path: join(screenshotDir, 'front-door-laptop.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: join(screenshotDir, 'front-door-phone.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 800 });
    }

    // 1. The authorize URL lands on the local development sign-in page.
    const first = await page.goto(authorizeUrl, { waitUntil: 'load' });
    if (!first) throw new Error('no response for the authorize URL');
    const emailInput = page.locator('input[type=email][name=email]');
    if ((await emailInput.count()) !== 1) {
      throw new Error(
        `expected the sign-in page with one email input at ${page.url()} (status ${first.status()}), got:\n` +
          (await page.locator('body').innerText()),
      );
    }
    const signInText = (await page.locator('main').innerText()).trim();
    await emailInput.fill(email);

    // 2. Signing in leads (by 303) to the consent page.
    const isConsent = (r) =>
      r.request().method() === 'GET' && r.url().startsWith(`${origin}/oauth/2.1/consent`);
    const [consentResponse] = await Promise.all([
      withTimeout(page.waitForResponse(isConsent), 'the consent page after sign-in'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    await page.waitForLoadState('load');
    if (consentResponse.status() !== 200) {
      throw new Error(
        `the consent page answered ${consentResponse.status()}:\n` + (await page.locator('body').innerText()),
      );
    }
    const headers = await consentResponse.allHeaders();
    const csp = headers['content-security-policy'] || '';
    if (!csp.includes("frame-ancestors 'none'")) {
      throw new Error(`consent page content-security-policy lacks frame-ancestors 'none': ${JSON.stringify(csp)}`);
    }
    const xfo = headers['x-frame-options'] || '';
    if (xfo.toUpperCase() !== 'DENY') {
      throw new Error(`consent page x-frame-options is ${JSON.stringify(xfo)}, expected DENY`);
    }

    const approve = page.locator('button[name=decision][value=approve]');
    const deny = page.locator('button[name=decision][value=deny]');
    if ((await approve.count()) !== 1 || (await deny.count()) !== 1) {
      throw new Error(
        'the consent page has no approve and deny buttons:\n' + (await page.locator('body').innerText()),
      );
    }
    const title = await page.title();
    const h1 = (await page.locator('h1').first().innerText()).trim();
    const consentText = (await page.locator('main').innerText()).trim();

    // 3. What a person sees, on a laptop and on a phone.
    await page.screenshot({ path: join(screenshotDir, 'consent-laptop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(screenshotDir, 'consent-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    // 4. Approve: latchkey redirects (303) to the client's redirect URI with the code.
    await approve.click();
    const finalUrl = new URL(await withTimeout(redirected, `the redirect to ${redirectPrefix} after Approve`));
    const q = finalUrl.searchParams;
    if (q.get('error')) {
      throw new Error(`the client got an error: ${q.get('error')}: ${q.get('error_description')}`);
    }
    if (!q.get('code')) throw new Error(`no code in the redirect: ${finalUrl.href}`);

    process.stdout.write(
      JSON.stringify({
        code: q.get('code'),
        state: q.get('state'),
        iss: q.get('iss'),
        consent_title: h1 || title,
        page_title: title,
        consent_text: consentText,
        sign_in_text: signInText,
        front_door_text: frontDoorText,
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
  process.stderr.write(`consent.mjs: ${e?.stack || e}\n`);
  process.exit(1);
});
