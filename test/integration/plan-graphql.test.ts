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

  it('counts the sites holding none of the datasets, and lists them (NO_REPLICA, in site order) when every site is asked for', async () => {
    const EVERY = `query($r: PlanRequest!, $every: Boolean) { plan(request: $r) { chosen { site { id } } sitesWithoutData
      candidates(everySite: $every) { site { id } eligible reasons { code dataset } } } }`;
    type Every = { plan: { chosen: null; sitesWithoutData: number; candidates: { site: { id: string }; eligible: boolean; reasons: { code: string; dataset: string | null }[] }[] } };
    const none = await broker.graphql<Every>(EVERY, { r: { kind: 'QUERY', datasets: ['no.such'] } });
    expect(none.errors).toBeUndefined();
    expect(none.data!.plan).toEqual({ chosen: null, sitesWithoutData: 3, candidates: [] });
    const every = await broker.graphql<Every>(EVERY, { r: { kind: 'QUERY', datasets: ['no.such'] }, every: true });
    expect(every.data!.plan.candidates).toEqual(['allsky', 'south', 'vault'].map((id) => ({ site: { id }, eligible: false, reasons: [{ code: 'NO_REPLICA', dataset: 'no.such' }] })));
    // Held at all three: every site is a candidate, none is counted.
    const held = await broker.graphql<Every>(EVERY, { r: { kind: 'QUERY', datasets: ['gaia_dr3.gaia_source'], region: { cone: { ra: 10, dec: 85, radiusDeg: 0.5 } } } });
    expect(held.data!.plan.sitesWithoutData).toBe(0);
    expect(held.data!.plan.candidates.map((c) => c.site.id).sort()).toEqual(['allsky', 'south', 'vault']);
    // Asking a site holding none of the data to run a query: refused with its NO_REPLICA reason.
    await put(documentFor('other', [{ id: 'sdss.photo', table: 'sdss.photo', coverage: '0/0-11', rows: 1e6, rowBytes: 100 }]), 'other');
    const refused = await broker.graphql(`mutation { submitQuery(input: { adql: "SELECT TOP 1 * FROM gaia_dr3.gaia_source", site: "other" }) { id } }`);
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'CONSTELLATION_E_NO_ELIGIBLE_SITE', violations: [{ path: 'candidates/other/gaia_dr3.gaia_source', rule: 'NO_REPLICA' }] });
    // Held only where the caller may not read it: FORBIDDEN there, and the four others counted in one violation.
    await put(documentFor('secret', [{ id: 'priv.secret', table: 'priv.secret', coverage: '0/0-11', rows: 10, rowBytes: 10, access: { public: false, groups: ['insiders'] } }]), 'secret');
    const nowhere = await broker.graphql(`mutation { submitQuery(input: { adql: "SELECT TOP 1 * FROM priv.secret" }) { id } }`);
    expect(nowhere.errors?.[0].extensions).toMatchObject({ code: 'CONSTELLATION_E_NO_ELIGIBLE_SITE', violations: [
      { path: 'candidates/secret/priv.secret', rule: 'FORBIDDEN' },
      { path: 'candidates/*/priv.secret', rule: 'NO_REPLICA', message: 'no replica of priv.secret is held at 4 other sites' },
    ] });
  });
});
