import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';

type PlanAnswer = { plan: { chosen: { site: { id: string } } | null; formula: string;
  candidates: { site: { id: string }; eligible: boolean; reasons: { code: string }[]; terms: { name: string; unit: string }[] }[] } };

const QUERY = `query($r: PlanRequest!) { plan(request: $r) { formula chosen { site { id } }
  candidates { site { id } eligible reasons { code } terms { name unit } } } }`;

describe(`plan over GraphQL (${backend})`, () => {
  let broker: TestBroker;
  const put = (doc: unknown, id: string) => fetch(`${broker.url}/sites/${id}/capabilities`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    // Whole sky at "allsky"; only the southern polar cap at "south"; private data at "vault".
    expect((await put(documentFor('allsky', [{ id: 'gaia_dr3.gaia_source', table: 'gaiadr3.gaia_source', coverage: '0/0-11', rows: 1e9, rowBytes: 100 }]), 'allsky')).status).toBe(200);
    expect((await put(documentFor('south', [{ id: 'gaia_dr3.gaia_source', table: 'gaia.gaia_source', coverage: '0/8-11', rows: 1e9, rowBytes: 100 }]), 'south')).status).toBe(200);
    expect((await put(documentFor('vault', [{ id: 'gaia_dr3.gaia_source', table: 'g.src', coverage: '0/0-11', rows: 1e9, rowBytes: 100,
      access: { public: false, groups: ['insiders'] } }]), 'vault')).status).toBe(200);
  });
  afterAll(() => broker?.close());

  it('chooses the site that covers the region and says why the others were rejected', async () => {
    const { data, errors } = await broker.graphql<PlanAnswer>(QUERY, { r: { kind: 'QUERY', datasets: ['gaia_dr3.gaia_source'], region: { cone: { ra: 10, dec: 85, radiusDeg: 0.5 } } } });
    expect(errors).toBeUndefined();
    expect(data!.plan.chosen!.site.id).toBe('allsky');
    const byId = new Map(data!.plan.candidates.map((c) => [c.site.id, c]));
    expect(byId.get('south')!.eligible).toBe(false);
    expect(byId.get('south')!.reasons.map((r) => r.code)).toContain('NOT_COVERED');
    expect(byId.get('vault')!.reasons.map((r) => r.code)).toContain('FORBIDDEN');
    expect(byId.get('allsky')!.terms.length).toBeGreaterThan(0);
    expect(data!.plan.formula.length).toBeGreaterThan(20);
  });

  it('follows a republish at once: the south site now covering the pole competes', async () => {
    expect((await put(documentFor('south', [{ id: 'gaia_dr3.gaia_source', table: 'gaia.gaia_source', coverage: '0/0-11', rows: 1e9, rowBytes: 100 }]), 'south')).status).toBe(200);
    const { data } = await broker.graphql<PlanAnswer>(QUERY, { r: { kind: 'QUERY', datasets: ['gaia_dr3.gaia_source'], region: { cone: { ra: 10, dec: 85, radiusDeg: 0.5 } } } });
    expect(data!.plan.candidates.find((c) => c.site.id === 'south')!.eligible).toBe(true);
  });

  it('rejects unknown datasets at every site with NO_REPLICA', async () => {
    const { data } = await broker.graphql<PlanAnswer>(QUERY, { r: { kind: 'QUERY', datasets: ['no.such'] } });
    expect(data!.plan.chosen).toBeNull();
    expect(data!.plan.candidates.every((c) => c.reasons.some((r) => r.code === 'NO_REPLICA'))).toBe(true);
  });
});
