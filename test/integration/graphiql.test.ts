import { runInNewContext } from 'node:vm';
import * as graphql from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { SubscriptionClient } from '../support/subscriptions.js';

/** Every src= and href= attribute value in `html`. */
function references(html: string): string[] {
  return [...html.matchAll(/\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi)].map((m) => m[1] ?? m[2] ?? m[3]);
}

describe(`GraphiQL without internet access (${backend})`, () => {
  let broker: TestBroker;
  let page: Response;
  let html: string;
  let scripts: string[];
  let styles: string[];
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${broker.url}${path}`, { headers });

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    page = await get('/graphiql');
    html = await page.text();
    scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/gi)].map((m) => m[1]);
    styles = [...html.matchAll(/<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"/gi)].map((m) => m[1]);
  });
  afterAll(() => broker?.close());

  it('serves an HTML page that references only same-origin paths', () => {
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const refs = references(html);
    expect(refs.length).toBeGreaterThanOrEqual(5);
    for (const ref of refs) {
      expect(ref, ref).toMatch(/^\/[^/\\]/);
      expect(ref, ref).not.toMatch(/^(?:[a-z][a-z0-9+.-]*:|\/\/)/i);
    }
    expect(html).not.toMatch(/https?:\/\//i);
    // React, ReactDOM and GraphiQL, then the start script; GraphiQL's stylesheet and the page's.
    expect(scripts).toHaveLength(4);
    expect(styles).toHaveLength(2);
  });

  it('sends a strict Content-Security-Policy and nosniff with the page', () => {
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toBeTruthy();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toMatch(/connect-src 'self'[^;]* ws:\/\/127\.0\.0\.1:\d+/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    // With inline script and style refused, there must be none in the page.
    expect(html).not.toMatch(/<script\b(?![^>]*\bsrc=)/i);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
  });

  it('answers every script and stylesheet the page references, with its type and content', async () => {
    const bodies = new Map<string, string>();
    for (const [urls, type] of [[scripts, /^text\/javascript; charset=utf-8$/], [styles, /^text\/css; charset=utf-8$/]] as const) {
      for (const url of urls) {
        const res = await get(url);
        expect(res.status, url).toBe(200);
        expect(res.headers.get('content-type'), url).toMatch(type);
        expect(res.headers.get('x-content-type-options'), url).toBe('nosniff');
        expect(res.headers.get('cache-control'), url).toMatch(/max-age=31536000/);
        const body = await res.text();
        expect(body.length, url).toBeGreaterThan(100);
        bodies.set(url, body);
      }
    }
    const body = (pattern: RegExp) => {
      const url = [...bodies.keys()].find((u) => pattern.test(u));
      expect(url, String(pattern)).toBeDefined();
      return bodies.get(url!)!;
    };
    expect(body(/\/react\.production\.min\.[0-9a-f]+\.js$/)).toMatch(/version="18\./);
    expect(body(/\/react-dom\.production\.min\.[0-9a-f]+\.js$/).length).toBeGreaterThan(100_000);
    const graphiql = body(/\/graphiql\.min\.[0-9a-f]+\.js$/);
    expect(graphiql.length).toBeGreaterThan(500_000);
    expect(graphiql).toContain('createFetcher');
    expect(body(/\/graphiql\.min\.[0-9a-f]+\.css$/).length).toBeGreaterThan(100_000);
    expect(body(/\/start\.[0-9a-f]+\.js$/)).not.toMatch(/https?:\/\//);
  });

  it("starts GraphiQL on this origin's /graphql and WebSocket, with an introspection query the broker answers", async () => {
    const source = await (await get(scripts.at(-1)!)).text();
    type Params = { query: string; operationName?: string };
    // Run the page's start script against stand-ins for the browser and the UMD globals it uses.
    const start = (protocol: string, host: string) => {
      const fetchers: { url: string; subscriptionUrl: string }[] = [];
      const sent: Params[] = [];
      let props: { fetcher: (params: Params) => unknown } | undefined;
      runInNewContext(source, {
        location: { protocol, host },
        document: { getElementById: (id: string) => ({ id }) },
        React: { createElement: (_component: unknown, p: typeof props) => p },
        ReactDOM: { createRoot: () => ({ render: (p: typeof props) => { props = p; } }) },
        GraphiQL: Object.assign(() => null, {
          GraphQL: graphql,
          createFetcher: (options: { url: string; subscriptionUrl: string }) => { fetchers.push(options); return (params: Params) => sent.push(params); },
        }),
      });
      return { fetchers, sent, fetcher: props!.fetcher };
    };
    const { host } = new URL(broker.url);
    expect(start('https:', 'constellation.example:8443').fetchers).toEqual([{ url: '/graphql', subscriptionUrl: 'wss://constellation.example:8443/graphql' }]);
    const page = start('http:', host);
    expect(page.fetchers).toEqual([{ url: '/graphql', subscriptionUrl: `ws://${host}/graphql` }]);

    // GraphiQL's own introspection query is deeper than the broker allows; the start script trims it.
    page.fetcher({ query: graphql.getIntrospectionQuery(), operationName: 'IntrospectionQuery' });
    page.fetcher({ query: '{ __typename }' });
    expect(page.sent[1]).toEqual({ query: '{ __typename }' });
    const res = await fetch(`${broker.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(page.sent[0]) });
    const { data, errors } = (await res.json()) as { data?: graphql.IntrospectionQuery; errors?: unknown[] };
    expect(errors).toBeUndefined();
    const schema = graphql.buildClientSchema(data!);
    expect(schema.getQueryType()?.name).toBe('Query');
    expect(schema.getSubscriptionType()).toBeDefined();
  });

  it('compresses assets with gzip only for clients that accept it', async () => {
    const url = scripts.find((u) => u.includes('/graphiql.min.'))!;
    const gzipped = await get(url, { 'accept-encoding': 'gzip' });
    expect(gzipped.headers.get('content-encoding')).toBe('gzip');
    expect(Number(gzipped.headers.get('content-length'))).toBeLessThan(400_000);
    const plain = await get(url, { 'accept-encoding': 'identity' });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(await gzipped.text()).toBe(await plain.text());
  });

  it('answers 404 to path traversal, unknown assets and the directory itself', async () => {
    for (const path of [
      '/graphiql/assets/..%2f..%2fpackage.json',
      '/graphiql/assets/..%2f..%2f..%2fpackage.json',
      '/graphiql/assets/%2e%2e%2fgraphiql.ts',
      '/graphiql/assets/..%5c..%5cpackage.json',
      '/graphiql/assets/nope.js',
      '/graphiql/assets/graphiql.min.js',
      '/graphiql/assets/graphiql.min.js.map',
      '/graphiql/assets/',
      '/graphiql/assets',
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).not.toContain('"dependencies"');
    }
  });

  it('answers GraphQL and graphql-transport-ws at the /graphql the page uses', async () => {
    const { status, data } = await broker.graphql<{ __typename: string }>('{ __typename }');
    expect(status).toBe(200);
    expect(data!.__typename).toBe('Query');
    const client = await SubscriptionClient.connect(broker.url);
    client.close();
  });
});
