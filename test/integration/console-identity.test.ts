/**
 * The console's signed-in state in a federation with identity: anonymous visitors see a login
 * link; a caller the broker verifies sees their name and a logout link, and the views they open
 * load with no error.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium, screenshot, watchPage } from '../support/chromium.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { PATIENCE_MS, WAITING_TEST_MS } from '../support/wait.js';

const missing = chromiumMissing();
if (missing) console.warn(missing);

describe.skipIf(missing !== undefined)(`web console with identity (${backend})`, () => {
  let idp: TestOidcProvider;
  let broker: TestBroker;
  let browser: Browser;

  beforeAll(async () => {
    idp = await startOidcProvider();
    broker = await startBroker(configFromYaml(`
federation: { name: identity-console }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  roles:
    admin: [constellation-admins]
sites:
  - { id: north, name: North, adapter: tap, url: "http://127.0.0.1:9/north" }
`));
    browser = await launchChromium();
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await browser?.close();
    await broker?.close();
    await idp?.close();
  });

  it('offers a login to an anonymous visitor', async () => {
    const page = await browser.newPage();
    const trouble = watchPage(page);
    await page.goto(`${broker.url}/#/sites`);
    const account = page.locator('[data-account="anonymous"]');
    await account.locator('a').waitFor({ timeout: PATIENCE_MS });
    expect(await account.locator('a').getAttribute('href')).toBe(`/login?next=${encodeURIComponent('/#/sites')}`);
    await page.locator('article[data-site="north"]').waitFor({ timeout: PATIENCE_MS });
    expect(trouble.problems).toEqual([]);
    await page.close();
  }, WAITING_TEST_MS);

  it('shows who is signed in, with a logout link, on every view', async () => {
    const token = await idp.tokenFor('alice');
    registerSecret(token);
    // The broker takes a bearer token as it takes the session cookie: the page's requests carry it.
    const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${token}` } });
    const page = await context.newPage();
    const trouble = watchPage(page);
    await page.goto(`${broker.url}/#/jobs`);
    const account = page.locator('[data-account]');
    await account.waitFor({ timeout: PATIENCE_MS });
    expect(await account.getAttribute('data-account'), `${await account.getAttribute('title')} ${JSON.stringify(trouble.problems)}`).toBe('signed-in');
    expect(await account.textContent()).toContain('Alice Astronomer');
    expect(await account.locator('a').getAttribute('href')).toBe('/logout');
    await page.locator('main[data-page="jobs"] section[data-ready]').waitFor({ timeout: PATIENCE_MS });
    await screenshot(page, 'signed-in');
    expect(trouble.problems).toEqual([]);
    await context.close();
  }, WAITING_TEST_MS);
});
