/**
 * The web console at / in a real headless Chromium against a real broker: every view loads
 * with no console error or failed request, the sky map draws known MOCs where they are (pixels
 * read back at points inside and outside), the plan explorer shows a known verdict, and a job's
 * state changes on the page as the subscription pushes it. Screenshots go to test-output/console/.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable, type TapService } from '../sites/tap-service.js';
import { chromiumMissing, launchChromium, screenshot, watchPage, type PageTrouble } from '../support/chromium.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { PATIENCE_MS, WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const missing = chromiumMissing();
if (missing) console.warn(missing);

// A survey whose async jobs sit QUEUED at alpha far longer than any test: the job is still
// running whenever the test cancels it, however slow the machine.
const HELD: SimTable = {
  name: 'heldsurvey.sources',
  rows: 50_000,
  heldRows: 10,
  position: { ra: 'ra', dec: 'dec' },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
  ],
};
const HELD_QUEUE_MS = 600_000;

/** Mollweide, written again here from the formulas (not the console's code): canvas pixel of (ra, dec), RA 0 centred, increasing to the left. */
function pixelOf(ra: number, dec: number, width: number, height: number): { x: number; y: number } {
  const phi = (dec * Math.PI) / 180;
  let theta = phi;
  for (let i = 0; i < 100 && Math.abs(Math.abs(phi) - Math.PI / 2) > 1e-9; i++) {
    const step = (2 * theta + Math.sin(2 * theta) - Math.PI * Math.sin(phi)) / (2 + 2 * Math.cos(2 * theta));
    theta -= step;
    if (Math.abs(step) < 1e-12) break;
  }
  const lon = -(((ra + 180) % 360) - 180); // east (RA) to the left
  const x = ((2 * Math.SQRT2) / Math.PI) * ((lon * Math.PI) / 180) * Math.cos(theta);
  const y = Math.SQRT2 * Math.sin(theta);
  return { x: Math.floor(((x / (2 * Math.SQRT2) + 1) / 2) * width), y: Math.floor(((1 - y / Math.SQRT2) / 2) * height) };
}

/** The canvas as the page's code sees it (the test's tsconfig has no DOM types). */
interface CanvasLike { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null }

const hex = (s: string) => [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16));

describe.skipIf(missing !== undefined)(`web console in Chromium (${backend})`, () => {
  let alpha: SimSite;
  let alphaTap: TapService;
  let broker: TestBroker;
  let browser: Browser;
  let page: Page;
  let trouble: PageTrouble;
  const put = (doc: unknown, id: string) => fetch(`${broker.url}/sites/${id}/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
  /** Show a view by its fragment, as the navigation does (no reload). */
  const show = async (fragment: string) => {
    await page.evaluate((f) => { (globalThis as unknown as { location: { hash: string } }).location.hash = f; }, fragment);
  };

  beforeAll(async () => {
    alpha = new SimSite();
    alphaTap = mountTapService(alpha, { path: '/tap', tables: [HELD], asyncDelayMs: HELD_QUEUE_MS });
    await alpha.start();
    broker = await startBroker(configFromYaml(`
federation: { name: console-test }
registration: { open: true }
sites:
  - id: alpha
    name: Alpha
    adapter: tap
    url: "${alpha.url}/tap"
`), undefined, { jobs: { pollIntervalMs: 50, tickMs: 25, backoffBaseMs: 50, backoffMaxMs: 200 } });
    expect(await broker.harvest('alpha')).toMatchObject({ outcome: 'OK' });
    // survey.sky: base cell 0 (around RA 45°, north) at "north"; the four southern base cells at "south".
    for (const [id, coverage] of [['north', '0/0'], ['south', '0/8-11']] as const) {
      const res = await put(documentFor(id, [{ id: 'survey.sky', table: 'cat.sky', title: 'A survey of the sky', coverage, rows: 1e6, rowBytes: 100 }]), id);
      expect(res.status, await res.text()).toBe(200);
    }
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    trouble = watchPage(page);
    await page.goto(`${broker.url}/`);
    // A marker that a reload would wipe: every view below is reached without one.
    await page.evaluate(() => { (globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true; });
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await browser?.close();
    await broker?.close();
    await alphaTap?.close();
    await alpha?.close();
  });

  it('shows every site with its status, last harvest and datasets, and who is signed in', async () => {
    await page.locator('section[data-ready] article[data-site="south"]').waitFor({ timeout: PATIENCE_MS });
    const ids = await page.locator('article[data-site]').evaluateAll((els) => els.map((e) => e.getAttribute('data-site')));
    expect(ids).toEqual(['alpha', 'north', 'south']);
    const alphaCard = page.locator('article[data-site="alpha"]');
    expect(await alphaCard.locator('[data-status]').getAttribute('data-status')).toBe('UP');
    expect(await alphaCard.locator('[data-harvest]').getAttribute('data-harvest')).toBe('OK');
    expect(await alphaCard.locator('tr[data-dataset="heldsurvey.sources"]').textContent()).toContain('50.0 k');
    expect(await page.locator('article[data-site="north"] [data-harvest]').getAttribute('data-harvest')).toBe('none');
    expect(await page.locator('article[data-site="north"]').textContent()).toContain('PUBLISH');
    // No identity in this federation: anonymous, and no login link.
    expect(await page.locator('[data-account]').getAttribute('data-account')).toBe('anonymous');
    expect(await page.locator('[data-account] a').count()).toBe(0);
    await screenshot(page, 'sites');
    expect(trouble.problems).toEqual([]);
  }, WAITING_TEST_MS);

  it('draws each replica\'s coverage MOC in its site\'s colour, and nothing where no site covers', async () => {
    await show('#/sky?dataset=survey.sky');
    await page.locator('canvas[data-drawn="true"][data-dataset="survey.sky"]').waitFor({ timeout: PATIENCE_MS });
    const legend = await page.locator('.legend li[data-site]').evaluateAll((els) => els.map((e) => ({
      site: e.getAttribute('data-site')!, color: e.getAttribute('data-color')!, cells: Number(e.getAttribute('data-cells')), pixels: Number(e.getAttribute('data-pixels')) })));
    expect(legend.map((l) => [l.site, l.cells])).toEqual([['north', 1], ['south', 4]]);
    // Equal-area: one base cell is 1/12 of the sky's pixels, four are 1/3 (within the rim's pixels).
    const { width, height } = await page.locator('canvas').evaluate((c: CanvasLike) => ({ width: c.width, height: c.height }));
    const skyPixels = (Math.PI * (width / 2) * (height / 2));
    expect(legend[0].pixels / skyPixels).toBeGreaterThan(1 / 12 - 0.01);
    expect(legend[0].pixels / skyPixels).toBeLessThan(1 / 12 + 0.01);
    expect(legend[1].pixels / skyPixels).toBeGreaterThan(1 / 3 - 0.01);
    expect(legend[1].pixels / skyPixels).toBeLessThan(1 / 3 + 0.01);

    const read = (ra: number, dec: number) => {
      const { x, y } = pixelOf(ra, dec, width, height);
      return page.locator('canvas').evaluate((c: CanvasLike, [px, py]) => Array.from(c.getContext('2d')!.getImageData(px, py, 1, 1).data), [x, y]);
    };
    const background = hex('#0b1226');
    const blended = (colour: string) => hex(colour).map((v, i) => 0.3 * background[i] + 0.7 * v);
    const near = (got: number[], want: number[]) => got.slice(0, 3).every((v, i) => Math.abs(v - want[i]) <= 2);
    // Inside north's cell (RA 50, Dec 55), inside south's (RA 200, Dec -55); outside both (RA 230, Dec 55; RA 130, Dec 20).
    expect(near(await read(50, 55), blended(legend[0].color)), String(await read(50, 55))).toBe(true);
    expect(near(await read(200, -55), blended(legend[1].color)), String(await read(200, -55))).toBe(true);
    expect(near(await read(230, 55), background), String(await read(230, 55))).toBe(true);
    expect(near(await read(130, 20), background), String(await read(130, 20))).toBe(true);
    await screenshot(page, 'sky');

    // Hiding a site redraws without it.
    await page.locator('.legend li[data-site="north"] input[type=checkbox]').uncheck();
    await page.locator('.legend li[data-site="north"][data-pixels="0"]').waitFor({ timeout: PATIENCE_MS });
    expect(near(await read(50, 55), background)).toBe(true);
    expect(trouble.problems).toEqual([]);
  }, WAITING_TEST_MS);

  it('explains a plan: every candidate with its verdict, reasons and cost terms, and the chosen site', async () => {
    await show('#/plan');
    await page.locator('select[name=datasets] option[value="survey.sky"]').waitFor({ timeout: PATIENCE_MS });
    await page.selectOption('select[name=datasets]', ['survey.sky']);
    await page.fill('input[name=ra]', '50');
    await page.fill('input[name=dec]', '55');
    await page.fill('input[name=radius]', '0.5');
    await page.click('form.plan-form button[type=submit]');
    const plan = page.locator('.plan[data-chosen]');
    await plan.waitFor({ timeout: PATIENCE_MS });
    expect(await plan.getAttribute('data-chosen')).toBe('north');
    const north = page.locator('tr[data-site="north"]');
    expect(await north.getAttribute('data-eligible')).toBe('true');
    expect(await north.locator('li[data-term]').count()).toBeGreaterThan(0);
    const south = page.locator('tr[data-site="south"]');
    expect(await south.getAttribute('data-eligible')).toBe('false');
    expect(await south.locator('li[data-code]').evaluateAll((els) => els.map((e) => e.getAttribute('data-code')))).toContain('NOT_COVERED');
    // alpha holds none of the data: counted under the table, listed when every site is asked for.
    expect(await page.locator('tr[data-site="alpha"]').count()).toBe(0);
    expect(Number(await page.locator('p.without-data').getAttribute('data-count'))).toBeGreaterThanOrEqual(1);
    await page.check('input[name=everySite]');
    await page.click('form.plan-form button[type=submit]');
    await page.locator('tr[data-site="alpha"] li[data-code="NO_REPLICA"]').waitFor({ timeout: PATIENCE_MS });
    expect(await page.locator('p.without-data').count()).toBe(0);
    await screenshot(page, 'plan');
    await page.uncheck('input[name=everySite]');

    // A bad cone is refused with the broker's coded error, shown on the page (not a console error).
    await page.fill('input[name=dec]', '95');
    await page.click('form.plan-form button[type=submit]');
    const alert = page.locator('p.error[role=alert]');
    await alert.waitFor({ timeout: PATIENCE_MS });
    expect(await alert.textContent()).toMatch(/^CONSTELLATION_E_INVALID_ARGUMENT: .*dec/i);
    // The refusal is an HTTP 400, which Chromium reports as a failed resource: both, and nothing else.
    const expected = [/^HTTP 400: POST .*\/graphql$/, /^console error: Failed to load resource: .* 400 .*\/graphql$/];
    await waitUntil(() => trouble.problems.slice(), (p) => expected.every((e) => p.some((x) => e.test(x))), { describe: (p) => `the 400 was not reported: ${JSON.stringify(p)}` });
    expect(trouble.problems.filter((p) => !expected.some((e) => e.test(p)))).toEqual([]);
    trouble.clear();
  }, WAITING_TEST_MS);

  it("shows the caller's jobs and follows a job's state live, with no reload", async () => {
    const submitted = await broker.graphql<{ submitQuery: { id: string } }>('mutation { submitQuery(input: { adql: "SELECT source_id FROM heldsurvey.sources" }) { id } }');
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    await waitUntil(async () => (await broker.graphql<{ job: { state: string } }>(`{ job(id: "${id}") { state } }`)).data!.job.state, (s) => s === 'QUEUED');
    await show('#/jobs');
    const row = page.locator(`tr[data-job="${id}"]`);
    await page.locator(`tr[data-job="${id}"][data-state="QUEUED"][data-live="following"]`).waitFor({ timeout: PATIENCE_MS });
    expect(await row.textContent()).toContain('alpha');
    expect(await row.textContent()).toContain('SELECT source_id FROM heldsurvey.sources');
    await screenshot(page, 'jobs-queued');

    // Cancelled from elsewhere (the API, not the page): the subscription brings ABORTED to the page.
    const cancelled = await broker.graphql<{ cancelJob: { state: string } }>(`mutation { cancelJob(id: "${id}") { state } }`);
    expect(cancelled.data!.cancelJob.state).toBe('ABORTED');
    await page.locator(`tr[data-job="${id}"][data-state="ABORTED"][data-live="final"]`).waitFor({ timeout: PATIENCE_MS });
    expect(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
    await screenshot(page, 'jobs-aborted');
    expect(trouble.problems).toEqual([]);
  }, WAITING_TEST_MS);

  it('links a completed query to its result, which the page can fetch', async () => {
    // TOP 3 runs synchronously at alpha (the held queue is for async jobs only).
    const submitted = await broker.graphql<{ submitQuery: { id: string } }>('mutation { submitQuery(input: { adql: "SELECT TOP 3 source_id FROM heldsurvey.sources", site: "alpha", format: "csv" }) { id } }');
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    await waitUntil(async () => (await broker.graphql<{ job: { state: string } }>(`{ job(id: "${id}") { state } }`)).data!.job.state, (s) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(s));
    await page.click('button:has-text("Refresh list")');
    const row = page.locator(`tr[data-job="${id}"][data-state="COMPLETED"]`);
    await row.waitFor({ timeout: PATIENCE_MS });
    const href = await row.locator('a[data-result]').getAttribute('href');
    expect(href).toBe(`/results/${id}?format=csv`);
    // Fetched as the page would, same origin with its cookies: the header and three rows.
    const body = await page.evaluate(async (url) => (await fetch(url)).text(), href!);
    expect(body.trim().split(/\r?\n/)).toHaveLength(4);
    expect(body.split(/\r?\n/)[0]).toBe('source_id');
    await screenshot(page, 'jobs-completed');
    expect(trouble.problems).toEqual([]);
  }, WAITING_TEST_MS);

  it('keeps /graphql, /graphiql and /readyz working beside the console', async () => {
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${broker.url}/graphiql`)).status).toBe(200);
    const { data } = await broker.graphql<{ sites: unknown[] }>('{ sites { id } }');
    expect(data!.sites).toHaveLength(3);
  });
});
