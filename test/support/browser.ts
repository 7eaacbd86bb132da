/**
 * A browser for tests: fetch with a cookie jar and redirects followed by hand (so each hop and
 * each Set-Cookie can be asserted). Cookies are kept per host name, as browsers do (not per port).
 */
import { extractForm } from './oidc-provider.js';

/** A cookie as the server set it. */
export interface JarCookie {
  name: string;
  value: string;
  host: string;
  path: string;
  /** The raw Set-Cookie line, for attribute assertions. */
  raw: string;
}

/** One answer, with the URL it came from. */
export interface Page {
  status: number;
  url: string;
  headers: Headers;
  text: string;
  /** Set-Cookie lines of this answer. */
  setCookies: string[];
}

/** A cookie jar and the requests that use it. */
export class Browser {
  readonly cookies: JarCookie[] = [];

  /** One request, no redirect followed. */
  async request(url: string, init: { method?: string; form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {}): Promise<Page> {
    const target = new URL(url);
    const cookie = this.cookieHeader(target);
    const res = await fetch(target, {
      method: init.method ?? (init.form || init.json !== undefined ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.form ? { body: new URLSearchParams(init.form) } : {}),
      ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) this.store(target, line);
    return { status: res.status, url: target.href, headers: res.headers, text: await res.text(), setCookies };
  }

  /** Follow redirects from `url` until an answer that is not one (or `stop` says so); returns every page on the way. */
  async follow(url: string, init: { method?: string; form?: Record<string, string> } = {}, stop: (page: Page) => boolean = () => false): Promise<Page[]> {
    const pages: Page[] = [];
    let page = await this.request(url, init);
    pages.push(page);
    while (page.status >= 300 && page.status < 400 && page.headers.get('location') && !stop(page)) {
      if (pages.length > 20) throw new Error(`too many redirects from ${url}`);
      page = await this.request(new URL(page.headers.get('location') as string, page.url).href);
      pages.push(page);
    }
    return pages;
  }

  /** Submit the form with `formId` (or the first) on `page`, merged with `fields`, following redirects. */
  submit(page: Page, formId: string | undefined, fields: Record<string, string>, stop?: (page: Page) => boolean): Promise<Page[]> {
    const form = extractForm(page.text, formId);
    if (!form) throw new Error(`no form ${formId ?? ''} on ${page.url}: ${page.text.slice(0, 300)}`);
    return this.follow(new URL(form.action || page.url, page.url).href, { form: { ...form.fields, ...fields } }, stop);
  }

  /** The cookie `name` the jar would send to `url`, if any. */
  get(name: string, url: string): JarCookie | undefined {
    const target = new URL(url);
    return this.cookies.find((c) => c.name === name && c.host === target.hostname && target.pathname.startsWith(c.path));
  }

  /** Put a cookie in the jar by hand (a tampered or foreign one). */
  set(url: string, name: string, value: string, path = '/'): void {
    this.store(new URL(url), `${name}=${value}; Path=${path}`);
  }

  private cookieHeader(target: URL): string {
    return this.cookies
      .filter((c) => c.host === target.hostname && target.pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(target: URL, line: string): void {
    const [pair, ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) || '/';
    const maxAge = attributes.find((a) => /^max-age=/i.test(a));
    const expires = attributes.find((a) => /^expires=/i.test(a));
    const gone = (maxAge !== undefined && Number(maxAge.slice(8)) <= 0) || (expires !== undefined && Date.parse(expires.slice(8)) <= Date.now());
    const at = this.cookies.findIndex((c) => c.name === name && c.host === target.hostname && c.path === path);
    if (at >= 0) this.cookies.splice(at, 1);
    if (!gone) this.cookies.push({ name, value, host: target.hostname, path, raw: line });
  }
}
