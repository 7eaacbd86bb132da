/**
 * Issue 9, findings 1 and 13: hostile GraphQL cannot hurt the broker. Amplifying queries
 * (aliases, nested lists, huge documents, 500,000 aliases) are refused before they run with
 * QUERY_TOO_COSTLY naming what was measured and the limit, while /healthz keeps answering; an
 * answer over the byte cap is replaced by that error; a request whose client went away stops
 * reading; and the response cache decides from the parsed operation, so a comment between a
 * field name and its arguments cannot get a stale job list served. Hostile queries are built here.
 */
import { readFileSync } from 'node:fs';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestBudget, RequestEndedError } from '../../broker/graphql/budget.js';
import { judgeQuery } from '../../broker/graphql/guard.js';
import { QUERY_LIMITS } from '../../broker/graphql/limits.js';
import { ReadScope } from '../../broker/graphql/read-scope.js';
import { MAX_QUERY_DEPTH } from '../../broker/app.js';
import { startBroker, type GraphQLErrorBody, type TestBroker } from '../support/broker.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { bigDatasetsQuery } from '../support/hostile.js';
import { WAITING_TEST_MS, within } from '../support/wait.js';

const COSTLY = 'CONSTELLATION_E_QUERY_TOO_COSTLY';
/** Generous bound for "refused at once" on a shared 2-core machine (the attacks took 6.8 s to minutes before). */
const QUICK_MS = 5_000;

interface Answer {
  status: number;
  ms: number;
  body: { data?: unknown; errors?: (GraphQLErrorBody & { extensions?: { measure?: string; value?: number; limit?: number } })[] };
  headers: Headers;
}

describe(`GraphQL cost limits (${backend})`, () => {
  let broker: TestBroker;

  /** POST a GraphQL body as given (a string is sent as is) and time the answer. */
  async function post(body: unknown, signal?: AbortSignal): Promise<Answer> {
    const started = performance.now();
    const res = await fetch(`${broker.url}/graphql`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), signal,
    });
    const text = await res.text();
    return { status: res.status, ms: performance.now() - started, body: JSON.parse(text) as Answer['body'], headers: res.headers };
  }

  /** The answer is a QUERY_TOO_COSTLY refusal of `measure`, with the value and the limit in the message and extensions. */
  function expectRefused(answer: Answer, measure: string, limit: number): void {
    expect(answer.status, JSON.stringify(answer.body).slice(0, 500)).toBe(400);
    const error = answer.body.errors![0];
    expect(error.extensions).toMatchObject({ code: COSTLY, measure, limit });
    expect(error.message).toContain(String(limit));
    if (error.extensions!.value !== undefined) {
      expect(error.extensions!.value).toBeGreaterThan(limit);
      expect(error.message).toContain(String(error.extensions!.value));
    }
  }

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    // Three sites sharing 40 datasets of 30 columns each: enough for the amplifiers to have work to multiply.
    const columns = Array.from({ length: 30 }, (_, c) => ({ name: `col${c}`, datatype: 'double', unit: 'deg', ucd: c === 0 ? 'pos.eq.ra;meta.main' : c === 1 ? 'pos.eq.dec;meta.main' : 'phot.mag' }));
    for (const site of ['north', 'south', 'east']) {
      const doc = documentFor(site, Array.from({ length: 40 }, (_, i) => ({ id: `survey.t${i}`, table: `s.t${i}`, title: `Survey table ${i}`, columns, position: { ra: 'col0', dec: 'col1' } })));
      const put = await fetch(`${broker.url}/sites/${site}/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
      expect(put.status).toBe(200);
    }
  }, WAITING_TEST_MS);
  afterAll(() => broker?.close());

  it('refuses 10 and 1,000 aliases of the big datasets query at once, and /healthz answers meanwhile', async () => {
    const ten = bigDatasetsQuery(10);
    const thousand = bigDatasetsQuery(1_000);
    let probing = true;
    const healthMs: number[] = [];
    const probe = (async () => {
      while (probing) {
        const started = performance.now();
        expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
        healthMs.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const answers = await Promise.all([...Array.from({ length: 10 }, () => post({ query: ten })), ...Array.from({ length: 10 }, () => post({ query: thousand }))]);
    probing = false;
    await probe;
    for (const a of answers.slice(0, 10)) {
      // Ten aliases are few; what they would build is not: the static cost refuses them.
      expectRefused(a, 'cost', QUERY_LIMITS.maxCost);
      expect(a.ms).toBeLessThan(QUICK_MS);
    }
    for (const a of answers.slice(10)) {
      // 1,000 aliases are 106 KB: over the query size limit before they are even parsed.
      expectRefused(a, 'bytes', QUERY_LIMITS.maxBytes);
      expect(a.ms).toBeLessThan(QUICK_MS);
    }
    // Under the size limit, 1,000 aliases are refused by their count.
    const aliases = `{ ${Array.from({ length: 1_000 }, (_, i) => `a${i}: sites { id }`).join(' ')} }`;
    expectRefused(await post({ query: aliases }), 'aliases', QUERY_LIMITS.maxAliases);
    expect(healthMs.length).toBeGreaterThan(0);
    expect(Math.max(...healthMs)).toBeLessThan(QUICK_MS);
  }, WAITING_TEST_MS);

  it('refuses the 53-byte nested replicas query, and answers it with limits', async () => {
    const nested = '{ sites { replicas { site { replicas { table } } } } }';
    expect(Buffer.byteLength(nested)).toBeLessThan(60);
    const refused = await post({ query: nested });
    expectRefused(refused, 'cost', QUERY_LIMITS.maxCost);
    expect(refused.ms).toBeLessThan(QUICK_MS);
    // The same shape with small limits is cheap, and each limit is really applied.
    const bounded = await post({ query: '{ sites(limit: 2) { id replicas(limit: 3) { site { replicas(limit: 1) { table } } } } }' });
    expect(bounded.body.errors).toBeUndefined();
    const sites = (bounded.body.data as { sites: { id: string; replicas: { site: { replicas: unknown[] } }[] }[] }).sites;
    expect(sites.map((s) => s.id)).toEqual(['east', 'north']);
    expect(sites.every((s) => s.replicas.length === 3 && s.replicas.every((r) => r.site.replicas.length === 1))).toBe(true);
  }, WAITING_TEST_MS);

  it('applies the limit of every list field, and refuses a limit over its maximum', async () => {
    const { body } = await post({ query: `{ dataset(id: "survey.t0") { columns(limit: 4) { name } replicas(limit: 2) { columns(limit: 5) { name } } }
      site(id: "north") { services(limit: 1) { id } compute(limit: 1) { id } images(limit: 1) { ref } replicas(limit: 7) { table } } }` });
    expect(body.errors).toBeUndefined();
    const data = body.data as { dataset: { columns: unknown[]; replicas: { columns: unknown[] }[] }; site: { services: unknown[]; replicas: unknown[] } };
    expect(data.dataset.columns).toHaveLength(4);
    expect(data.dataset.replicas.map((r) => r.columns.length)).toEqual([5, 5]);
    expect(data.site.services).toHaveLength(1);
    expect(data.site.replicas).toHaveLength(7);
    // Aliases of one field with different limits in one batch each get their own.
    const both = await post({ query: '{ dataset(id: "survey.t1") { few: columns(limit: 1) { name } many: columns(limit: 20) { name } } }' });
    expect(both.body.data).toMatchObject({ dataset: { few: [{ name: 'col0' }] } });
    expect((both.body.data as { dataset: { many: unknown[] } }).dataset.many).toHaveLength(20);
    // A site's replicas are read a page per site (the batch's largest limit): each alias gets the
    // first rows of the same order as the whole list.
    const pages = await post({ query: '{ sites(limit: 2) { few: replicas(limit: 1) { table } some: replicas(limit: 7) { table } all: replicas(limit: 100000) { table } } }' });
    expect(pages.body.errors).toBeUndefined();
    for (const site of (pages.body.data as { sites: Record<'few' | 'some' | 'all', { table: string }[]>[] }).sites) {
      expect(site.all.length).toBeGreaterThan(7);
      expect(site.few).toEqual(site.all.slice(0, 1));
      expect(site.some).toEqual(site.all.slice(0, 7));
    }
    const dataset = await post({ query: '{ dataset(id: "survey.t0") { one: replicas(limit: 1) { site { id } } all: replicas(limit: 100) { site { id } } } }' });
    const replicas = (dataset.body.data as { dataset: Record<'one' | 'all', unknown[]> }).dataset;
    expect(replicas.all.length).toBeGreaterThan(1);
    expect(replicas.one).toEqual(replicas.all.slice(0, 1));
    const over = await post({ query: '{ site(id: "north") { replicas(limit: 100001) { table } } }' });
    expect(over.body.errors![0].extensions?.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(over.body.errors![0].message).toMatch(/limit must be an integer from 0 to 100000, got 100001/);
    const sites = await post({ query: '{ sites(limit: 20000) { id } }' });
    expect(sites.body.errors![0].message).toMatch(/limit must be an integer from 0 to 10000/);
  });

  it('answers 500,000 __typename aliases (9.4 MB) with a coded error in bounded time', async () => {
    const query = `{ ${Array.from({ length: 500_000 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    expect(query.length).toBeGreaterThan(9_000_000);
    // Over the GraphQL body limit: refused before the body is parsed, as is an 8 MB MOC variable.
    const tooBig = [{ query }, { query: 'query($m: String!) { datasets(filter: { region: { moc: $m } }) { id } }', variables: { m: `0/0 ${'1'.repeat(8 * 1024 * 1024)}` } }];
    for (const body of tooBig) {
      const answer = await post(body);
      expect(answer.status).toBe(413);
      expect(answer.body.errors![0].extensions?.code).toBe('CONSTELLATION_E_PAYLOAD_TOO_LARGE');
      expect(answer.body.errors![0].message).toMatch(/1 MiB on \/graphql .*PUT \/sites\/:id\/capabilities/);
      expect(answer.ms).toBeLessThan(QUICK_MS);
    }
    // Under it, a query over its own size limit is refused by the guard, naming the measure.
    const long = `{ ${Array.from({ length: 40_000 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    expect(long.length).toBeGreaterThan(QUERY_LIMITS.maxBytes);
    expect(long.length).toBeLessThan(QUERY_LIMITS.maxBodyBytes);
    expectRefused(await post({ query: long }), 'bytes', QUERY_LIMITS.maxBytes);
    // Within the size limit: many same-named fields (quadratic to validate) and a fragment bomb.
    const repeated = `{ ${'__typename '.repeat(5_000)}}`;
    expectRefused(await post({ query: repeated }), 'fields', QUERY_LIMITS.maxFields);
    let bomb = 'fragment f0 on Site { id replicas(limit: 2) { table } }';
    for (let i = 1; i <= 40; i++) bomb += ` fragment f${i} on Site { ...f${i - 1} ...f${i - 1} }`;
    // Each fragment is costed once: 41 fragments analyse in microseconds, not 2^40 visits.
    const bombed = await post({ query: `{ sites { ...f40 } } ${bomb}` });
    expectRefused(bombed, 'cost', QUERY_LIMITS.maxCost);
    expect(bombed.ms).toBeLessThan(QUICK_MS);
    const directives = `{ ${Array.from({ length: 60 }, () => 'id @include(if: true)').join(' ')} }`;
    expectRefused(await post({ query: `{ sites ${directives} }` }), 'directives', QUERY_LIMITS.maxDirectives);
    // 25,000 one-letter fields fit in 50 KB: the parser gives up at the token limit.
    expectRefused(await post({ query: `{ ${'a '.repeat(25_000)}}` }), 'tokens', QUERY_LIMITS.maxTokens);
    const over = await post({ query: `{ sites { id } } ${'# padding\n'.repeat(7_000)}` });
    expectRefused(over, 'bytes', QUERY_LIMITS.maxBytes);
    // A query text that is not GraphQL is a syntax error (never read as a JSON AST).
    const ast = await post({ query: JSON.stringify({ kind: 'Document', definitions: [] }) });
    expect(ast.status).toBe(400);
    expect(ast.body.errors![0].message).toMatch(/Syntax Error/);
  }, WAITING_TEST_MS);

  it('refuses many multi-MB documents by cost, and replaces an answer over the byte cap by a coded error', async () => {
    // One document of ~12 MB (3,000 long descriptions), asked three times over by aliases: 37 MB, over the 32 MiB cap.
    const description = 'x'.repeat(3_900);
    const doc = documentFor('heavy', Array.from({ length: 3_000 }, (_, i) => ({ id: `heavy.t${i}`, table: `h.t${i}`, description })));
    const put = await fetch(`${broker.url}/sites/heavy/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
    expect(put.status, await put.text()).toBe(200);
    const four = `{ ${Array.from({ length: 4 }, (_, i) => `d${i}: site(id: "heavy") { documents(limit: 20) { document } }`).join(' ')} }`;
    expectRefused(await post({ query: four }), 'cost', QUERY_LIMITS.maxCost);
    const thrice = `{ ${Array.from({ length: 3 }, (_, i) => `d${i}: site(id: "heavy") { documents(limit: 1) { receivedAt document } }`).join(' ')} }`;
    const big = await post({ query: thrice });
    expectRefused(big, 'responseBytes', QUERY_LIMITS.maxResponseBytes);
    // Refused from the stored sizes before the third body was read, not after building the answer.
    expect(big.body.errors![0].message).toMatch(/at SiteDocument\.document, \d+ bytes so far/);
    // One document is within the cap and answers.
    const one = await post({ query: '{ site(id: "heavy") { documents(limit: 1) { origin } } }' });
    expect(one.body).toEqual({ data: { site: { documents: [{ origin: 'PUBLISH' }] } } });
  }, WAITING_TEST_MS);

  it('stops reading for a request once it has ended, and keeps answering after aborted requests', async () => {
    const budget = new RequestBudget(10);
    budget.charge(10, 'Query.sites');
    expect(() => budget.charge(1, 'Site.replicas')).toThrow(/grew past 10 objects \(at Site\.replicas\)/);
    budget.end();
    expect(() => budget.charge(0, 'Site.replicas')).toThrow(RequestEndedError);
    const bytes = new RequestBudget(10, 1_000);
    bytes.chargeBytes(600, 'SiteDocument.document');
    expect(() => bytes.chargeBytes(600, 'SiteDocument.document')).toThrow(/more than 1000 bytes \(at SiteDocument\.document, 1200 bytes so far\)/);
    const scope = new ReadScope(broker.app.services.pool);
    expect((await scope.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await scope.close();
    await expect(scope.query('SELECT 1')).rejects.toBeInstanceOf(RequestEndedError);
    if (backend === 'postgresql') {
      // A statement past the request's statement timeout is cancelled by the server (PGlite has no timer for it).
      const slow = new ReadScope(broker.app.services.pool, 200);
      const started = performance.now();
      await expect(slow.query('SELECT pg_sleep(20)')).rejects.toMatchObject({ code: 'CONSTELLATION_E_QUERY_TOO_COSTLY', message: expect.stringMatching(/ran past 200 ms and was cancelled/) });
      expect(performance.now() - started).toBeLessThan(15_000);
      await slow.close();
    }
    // Real clients going away mid-request: every request is cut short, and the broker carries on.
    const heavy = { query: '{ datasets { id columns { name } replicas { site { id services { id } } columns { name ucd } } } }' };
    await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 1 + (i % 7));
      await post(heavy, controller.signal).catch(() => undefined);
    }));
    const answer = await within(post({ query: '{ sites { id } }' }), 'broker stopped answering after aborted requests');
    expect((answer.body.data as { sites: unknown[] }).sites.length).toBeGreaterThanOrEqual(3);
  }, WAITING_TEST_MS);

  it('never serves a cached job list when a comment hides the field from a text match', async () => {
    // A site whose TAP service cannot be reached: a submitted query ends at once, but the job exists.
    const doc = documentFor('gone', [{ id: 'gone.sources', table: 'gone.sources' }]);
    doc.services[0].url = 'http://127.0.0.1:9/tap';
    const put = await fetch(`${broker.url}/sites/gone/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
    expect(put.status).toBe(200);
    const list = { query: '{ jobs#comment\n(limit: 5) { id state } }' };
    const before = await post(list);
    expect(before.body).toEqual({ data: { jobs: [] } });
    expect((await post(list)).body).toEqual({ data: { jobs: [] } });
    const submitted = await post({ query: 'mutation { submitQuery(input: { adql: "SELECT TOP 1 * FROM gone.sources", idempotencyKey: "cache-1" }) { id state } }' });
    expect(submitted.body.errors).toBeUndefined();
    const job = (submitted.body.data as { submitQuery: { id: string; state: string } }).submitQuery;
    expect(job.id).toBeTruthy();
    const after = await post(list);
    expect(after.headers.get('x-constellation-cache')).toBeNull();
    expect((after.body.data as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual([job.id]);
    // The job itself, the same trick: its state is read fresh every time.
    const one = { query: `{ job#comment\n(id: "${job.id}") { id state } }` };
    const states = [await post(one), await post(one)];
    for (const s of states) expect(s.headers.get('x-constellation-cache')).toBeNull();
    const now = (await post({ query: `query Fresh { job(id: "${job.id}") { state } }` })).body.data as { job: { state: string } };
    expect((states[1].body.data as { job: { state: string } }).job.state).toBe(now.job.state);
    // A harvest record inside a fragment is volatile too; a plain registry query is still cached.
    const fragment = { query: '{ site(id: "gone") { ...h } } fragment h on Site { lastHarvest { outcome } consecutiveFailures }' };
    await post(fragment);
    expect((await post(fragment)).headers.get('x-constellation-cache')).toBeNull();
    const plain = { query: '{ site(id: "gone") { id replicas { table } } }' };
    await post(plain);
    expect((await post(plain)).headers.get('x-constellation-cache')).toBe('hit');
  }, WAITING_TEST_MS);

  it('keeps the README\'s example queries and GraphiQL\'s introspection within the limits, and answers them', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const query of [...examples, getIntrospectionQuery()]) {
      const verdict = judgeQuery(broker.app.graphql.schema, query, {}, undefined, MAX_QUERY_DEPTH);
      expect(verdict, query).toHaveProperty('analysis');
      if ('analysis' in verdict) expect(verdict.analysis.cost, query).toBeLessThan(QUERY_LIMITS.maxCost / 100);
    }
    const first = await post({ query: examples[0] });
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data).toHaveProperty('datasets');
    // The CLI's page and the bench's region query.
    const page = await post({ query: 'query($site: ID, $offset: Int) { datasets(filter: { site: $site }, limit: 1000, offset: $offset) { id replicas { site { id } table rows access { public groups } } } }', variables: { site: 'north', offset: 0 } });
    expect((page.body.data as { datasets: unknown[] }).datasets).toHaveLength(40);
  });
});
