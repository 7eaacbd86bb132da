/**
 * The web console against hostile input: a site publishing markup in its names and titles sees
 * it shown as text, never run; the console is served with a strict Content-Security-Policy (no
 * inline script, nothing from another origin) that Chromium enforces; only the built files are
 * served; an unbuilt console says how to build it.
 */
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleRoutes } from '../../broker/http/console.js';
import { chromiumMissing, launchChromium, screenshot, watchPage, type PageTrouble } from '../support/chromium.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { PATIENCE_MS, WAITING_TEST_MS } from '../support/wait.js';

const missing = chromiumMissing();
if (missing) console.warn(missing);

// Markup a hostile site could publish; run, each would set globalThis.pwned.
const EVIL_NAME = '<img src=x onerror="globalThis.pwned=1">Evil & Co';
const EVIL_TITLE = '<script>globalThis.pwned=2</script><b onmouseover="globalThis.pwned=3">bold</b>';

/** GET `path` with a raw Host header (fetch cannot set one). */
function getWithHost(url: string, path: string, host: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path, headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe(`web console: headers and files (${backend})`, () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
  });
  afterAll(() => broker?.close());

  it('serves the page with a strict CSP and only same-origin scripts and styles, none inline', async () => {
    const res = await fetch(`${broker.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const csp = res.headers.get('content-security-policy')!;
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]) expect(csp).toContain(directive);
    expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).not.toMatch(/<script\b(?![^>]*\bsrc=)/i);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/https?:\/\//i);
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      expect(ref).toMatch(/^\/assets\/[\w.-]+$/);
      const asset = await fetch(`${broker.url}${ref}`);
      expect(asset.status, ref).toBe(200);
      expect(asset.headers.get('cache-control'), ref).toMatch(/max-age=31536000, immutable/);
      expect(asset.headers.get('x-content-type-options'), ref).toBe('nosniff');
      const body = await asset.text();
      if (ref.endsWith('.js')) {
        expect(asset.headers.get('content-type')).toMatch(/javascript/);
        // Bundled: no import of another module by URL, no eval.
        expect(body).not.toMatch(/\bimport\s*\(?\s*["']https?:|\beval\(|new Function\(/);
      }
    }
    expect((await fetch(`${broker.url}/console/config.json`)).headers.get('content-type')).toMatch(/^application\/json/);
    expect(await (await fetch(`${broker.url}/console/config.json`)).json()).toEqual({ federation: 'test', identity: false });
  });

  it('names no crafted Host in the CSP', async () => {
    const crafted = await getWithHost(broker.url, '/', "evil.example; script-src 'unsafe-inline'");
    expect(String(crafted.headers['content-security-policy'])).not.toMatch(/unsafe-inline|evil/);
  });

  it('serves exactly the built files: no sources, no traversal, other paths are the JSON 404', async () => {
    for (const path of ['/assets/../package.json', '/%2e%2e/package.json', '/assets/%2e%2e/%2e%2e/package.json', '/web/src/main.tsx', '/src/main.tsx', '/assets/nothing.js', '/.gitignore', '/index.htm']) {
      const res = await fetch(`${broker.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.json(), path).toMatchObject({ code: 'CONSTELLATION_E_NOT_FOUND' });
    }
    expect((await fetch(`${broker.url}/index.html`)).status).toBe(200);
    // The rest of the broker is untouched.
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${broker.url}/graphiql`)).status).toBe(200);
    expect((await broker.graphql('{ __typename }')).data).toEqual({ __typename: 'Query' });
  });

  it('says how to build the console when it was never built', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'console-unbuilt-'));
    const app = Fastify({ logger: false });
    try {
      await app.register(consoleRoutes, { federation: 'x', identity: true, dir: empty });
      const res = await app.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain('npm run build:web');
      expect(JSON.parse((await app.inject({ method: 'GET', url: '/console/config.json' })).body)).toEqual({ federation: 'x', identity: true });
    } finally {
      await app.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe.skipIf(missing !== undefined)(`web console in Chromium, hostile sites (${backend})`, () => {
  let broker: TestBroker;
  let browser: Browser;
  let page: Page;
  let trouble: PageTrouble;
  const requested: string[] = [];

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    const doc = documentFor('evil', [{ id: 'evil.set', table: 'e.set', title: EVIL_TITLE, description: EVIL_TITLE, coverage: '0/4' }]);
    doc.site.name = EVIL_NAME;
    const res = await fetch(`${broker.url}/sites/evil/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
    expect(res.status, await res.text()).toBe(200);
    browser = await launchChromium();
    page = await browser.newPage();
    trouble = watchPage(page);
    page.on('request', (r) => requested.push(r.url()));
    page.on('websocket', (w) => requested.push(w.url()));
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await browser?.close();
    await broker?.close();
  });

  const pwned = () => page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned);

  it("shows a site's markup as text: nothing it names is parsed or run", async () => {
    await page.goto(`${broker.url}/#/sites`);
    const card = page.locator('article[data-site="evil"]');
    await card.waitFor({ timeout: PATIENCE_MS });
    expect(await card.locator('h3').textContent()).toBe(EVIL_NAME);
    expect(await card.locator('tr[data-dataset="evil.set"] td').first().getAttribute('title')).toBe(EVIL_TITLE);
    // No element came from the site's strings: no img, no b, one script (the bundle).
    expect(await page.locator('img, b, iframe, object').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(1);
    await card.locator('h3').hover();

    await page.evaluate(() => { (globalThis as unknown as { location: { hash: string } }).location.hash = '#/sky?dataset=evil.set'; });
    await page.locator('canvas[data-drawn="true"][data-dataset="evil.set"]').waitFor({ timeout: PATIENCE_MS });
    expect(await page.locator('.dataset-title').textContent()).toBe(EVIL_TITLE);
    expect(await page.locator('.legend li[data-site="evil"] strong').textContent()).toBe(EVIL_NAME);
    expect(await page.locator('img, b, iframe, object').count()).toBe(0);
    await page.locator('.dataset-title').hover();
    expect(await pwned()).toBeUndefined();
    await screenshot(page, 'hostile-site');
    // Nothing was refused by the CSP either (a refusal is a console error): nothing was tried.
    expect(trouble.problems).toEqual([]);
    // Every request went to the broker itself: nothing from a CDN or any other origin.
    const origin = new URL(broker.url).host;
    expect(requested.length).toBeGreaterThan(3);
    for (const url of requested) expect(new URL(url).host, url).toBe(origin);
  }, WAITING_TEST_MS);

  it('has its CSP enforced by the browser: an inline script put into the page does not run', async () => {
    const outcome = await page.evaluate(async () => {
      const g = globalThis as unknown as { document: { createElement(t: string): { textContent: string }; body: { appendChild(n: unknown): void }; addEventListener(t: string, f: (e: { effectiveDirective: string }) => void): void }; inlineRan?: boolean };
      const violation = new Promise<string>((resolve) => g.document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective)));
      const script = g.document.createElement('script');
      script.textContent = 'globalThis.inlineRan = true';
      g.document.body.appendChild(script);
      const directive = await violation;
      return { directive, ran: g.inlineRan === true };
    });
    expect(outcome).toEqual({ directive: 'script-src-elem', ran: false });
  }, WAITING_TEST_MS);
});
