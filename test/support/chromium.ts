/**
 * A real headless Chromium for the console tests (Debian's `chromium` package, driven by
 * playwright-core through its executable). Tests skip, saying so, when it is not installed.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { packagePath } from '../../registry/paths.js';

/** The Chromium executable: $CHROMIUM_PATH, else the Debian package's; undefined when absent. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => Boolean(p));
  return candidates.find((p) => existsSync(p));
}

/** Why browser tests skip on this machine, or undefined when they can run. */
export function chromiumMissing(): string | undefined {
  return chromiumPath() ? undefined : 'Chromium is not installed (apt-get install -y chromium, or set CHROMIUM_PATH): the browser tests of the web console are skipped';
}

/** Where screenshots go (git-ignored). */
export const SCREENSHOTS = packagePath('test-output/console');

/** Start a headless Chromium (no sandbox: CI runs as root). */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
  });
}

/** What went wrong in a page: console errors, uncaught exceptions, failed requests and HTTP errors. */
export interface PageTrouble {
  problems: string[];
  /** Forget what happened so far (before a step that provokes an expected error). */
  clear(): void;
}

/** Record every console error, page error, failed request and 4xx/5xx answer of `page`. */
export function watchPage(page: Page): PageTrouble {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()} at ${m.location().url}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  return { problems, clear: () => problems.splice(0) };
}

/** Save a full-page screenshot as test-output/console/<name>.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
