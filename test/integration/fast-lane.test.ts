/**
 * The fast lane: a caller inside a member platform (the X-Constellation-Site header, or an
 * address in that site's `networks`) gets its work placed where the result need not travel, and
 * every plan says per site whether the result stays local (0 bytes moved) or how much travels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { WAITING_TEST_MS } from '../support/wait.js';

// The same catalogue at two sites: without the fast lane they tie and the smaller id (north) wins.
const replica = { id: 'gaia_dr3.gaia_source', coverage: '0/0-11', rows: 1_000_000, rowBytes: 200 };
const north = documentFor('north', [{ ...replica, table: 'gaia.source_n' }]);
const south = documentFor('south', [{ ...replica, table: 'gaia.source_s' }]);

const PLAN = `query($r: PlanRequest!) { plan(request: $r) { chosen { site { id } estimatedBytesMoved }
  candidates { site { id } eligible estimatedBytesMoved reasons { code message } } } }`;
const REQUEST = { r: { kind: 'QUERY', datasets: ['gaia_dr3.gaia_source'], region: { cone: { ra: 10, dec: 10, radiusDeg: 0.1 } } } };

type PlanAnswer = { plan: { chosen: { site: { id: string }; estimatedBytesMoved: number }; candidates: { site: { id: string }; estimatedBytesMoved: number; reasons: { code: string; message: string }[] }[] } };

describe(`the fast lane (${backend})`, () => {
  let plain: TestBroker;
  let inside: TestBroker;
  const federation = (networks: string) => `
federation: { name: fast-lane }
registration: { open: true }
sites:
  - { id: north, name: North, adapter: tap, url: "https://north.example.org" }
  - { id: south, name: South, adapter: tap, url: "https://south.example.org"${networks} }
`;

  beforeAll(async () => {
    plain = await startBroker(configFromYaml(federation('')));
    // Every test request comes from 127.0.0.1: to this broker, callers are inside south.
    inside = await startBroker(configFromYaml(federation(', networks: ["127.0.0.0/8", "::1/128"]')), plain.db);
    for (const doc of [north, south]) {
      const res = await fetch(`${plain.url}/sites/${doc.site.id}/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
      expect(res.status).toBe(200);
    }
    await inside.app.services.planner.refresh(inside.db.pool);
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await inside?.close();
    await plain?.close();
  });

  it('places a query at the site the caller names, saying its result stays there and how much the others would send', async () => {
    const outside = await plain.graphql<PlanAnswer>(PLAN, REQUEST);
    expect(outside.data?.plan.chosen.site.id).toBe('north');
    expect(outside.data?.plan.candidates.flatMap((c) => c.reasons.map((r) => r.code))).not.toContain('LOCAL');

    const fromSouth = await plain.graphql<PlanAnswer>(PLAN, REQUEST, { 'x-constellation-site': 'south' });
    const { chosen, candidates } = fromSouth.data!.plan;
    expect(chosen.site.id).toBe('south');
    expect(chosen.estimatedBytesMoved).toBe(0);
    const local = candidates.find((c) => c.site.id === 'south')!;
    expect(local.reasons.find((r) => r.code === 'LOCAL')?.message).toMatch(/0 bytes moved/);
    const remote = candidates.find((c) => c.site.id === 'north')!;
    expect(remote.estimatedBytesMoved).toBeGreaterThan(0);
    expect(remote.reasons.find((r) => r.code === 'DATA_TO_MOVE')?.message).toMatch(/travels from north to your site south/);
  });

  it('knows a caller from the site\'s networks, and the header wins over the address', async () => {
    expect((await inside.graphql<PlanAnswer>(PLAN, REQUEST)).data?.plan.chosen.site.id).toBe('south');
    expect((await inside.graphql<PlanAnswer>(PLAN, REQUEST, { 'x-constellation-site': 'north' })).data?.plan.chosen.site.id).toBe('north');
  });

  it('refuses a header naming no member site, naming the header', async () => {
    const answer = await plain.graphql(PLAN, REQUEST, { 'x-constellation-site': 'atlantis' });
    expect(answer.status).toBe(400);
    expect(JSON.stringify(answer)).toMatch(/x-constellation-site/);
    expect(JSON.stringify(answer)).toMatch(/CONSTELLATION_E_INVALID_ARGUMENT/);
  });
});
