import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';

// A closed federation: only declared sites may publish, each with its own publish key.
const FEDERATION = `
federation: { name: strict }
sites:
  - { id: good, name: Good site, adapter: tap, url: "https://good.example.org", publishKeyEnv: GOOD_KEY }
  - { id: other, name: Other site, adapter: tap, url: "https://other.example.org", publishKeyEnv: OTHER_KEY }
`;
const KEYS: Record<string, string> = { GOOD_KEY: 'good-site-publish-key-0001', OTHER_KEY: 'other-site-publish-key-0002' };

const original = documentFor('good', [
  { id: 'gaia_dr3.gaia_source', table: 'gaiadr3.gaia_source', coverage: '0/0-11' },
  { id: 'survey.deep', table: 'survey.deep', coverage: '2/5-9' },
]);

type Case = { name: string; body: string; contentType?: string; site?: string; status: number; code: string; path?: string; rule?: string };

/** A copy of the good document with `edit` applied. */
function edited(edit: (doc: Record<string, any>) => void): string {
  const doc = structuredClone(original) as unknown as Record<string, any>;
  edit(doc);
  return JSON.stringify(doc);
}

const cases: Case[] = [
  { name: 'invalid JSON', body: '{"schemaVersion": 1,', status: 400, code: 'CONSTELLATION_E_INVALID_JSON' },
  { name: 'empty body', body: '', status: 400, code: 'CONSTELLATION_E_INVALID_JSON' },
  { name: 'wrong media type', body: JSON.stringify(original), contentType: 'text/plain', status: 415, code: 'CONSTELLATION_E_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a JSON array', body: '[1, 2]', status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/', rule: 'type' },
  { name: 'wrong type of schemaVersion', body: edited((d) => { d.schemaVersion = '1'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/schemaVersion', rule: 'const' },
  { name: 'unknown root key', body: edited((d) => { d.colour = 'blue'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/colour', rule: 'additionalProperties' },
  { name: 'unknown dataset key', body: edited((d) => { d.datasets[1].nrows = 5; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/1/nrows', rule: 'additionalProperties' },
  { name: 'missing site name', body: edited((d) => { delete d.site.name; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/site/name', rule: 'required' },
  { name: 'replica naming an undeclared service', body: edited((d) => { d.datasets[0].service = 'tap2'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/0/service', rule: 'service-reference' },
  { name: 'MOC order above 29', body: edited((d) => { d.datasets[1].coverage = '30/1'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/1/coverage', rule: 'moc' },
  { name: 'MOC reversed range', body: edited((d) => { d.datasets[1].coverage = '2/9-5'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/1/coverage', rule: 'moc' },
  { name: 'MOC cell outside its order', body: edited((d) => { d.datasets[1].coverage = '0/12'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/1/coverage', rule: 'moc' },
  { name: 'MOC garbage', body: edited((d) => { d.datasets[1].coverage = 'all of it'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/1/coverage', rule: 'moc' },
  { name: 'document for another site', body: JSON.stringify(documentFor('other')), status: 409, code: 'CONSTELLATION_E_SITE_MISMATCH', path: '/site/id' },
  { name: 'site outside the federation', body: JSON.stringify(documentFor('stranger')), site: 'stranger', status: 404, code: 'CONSTELLATION_E_UNKNOWN_SITE' },
  { name: 'platform other than configured', body: edited((d) => { d.site.platform = 'mast'; }), status: 409, code: 'CONSTELLATION_E_SITE_MISMATCH', path: '/site/platform' },
  { name: 'non-canonical dataset id', body: edited((d) => { d.datasets[0].id = 'Gaia DR3'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/0/id', rule: 'pattern' },
  { name: 'duplicate dataset ids', body: edited((d) => { d.datasets[1].id = d.datasets[0].id; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/1/id', rule: 'unique' },
  { name: 'negative row count', body: edited((d) => { d.datasets[0].rows = -1; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/0/rows', rule: 'minimum' },
  { name: 'asOf not a timestamp', body: edited((d) => { d.asOf = 'yesterday'; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/asOf', rule: 'format' },
  { name: 'malformed image digest', body: edited((d) => { d.images = [{ ref: 'x/y:1', types: ['notebook'], digest: 'md5:abc' }]; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/images/0/digest', rule: 'pattern' },
  { name: 'image without types', body: edited((d) => { d.images = [{ ref: 'x/y:1', types: [] }]; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/images/0/types', rule: 'minItems' },
  { name: 'position column not among columns', body: edited((d) => { d.datasets[0].position = { ra: 'RA_ICRS', dec: 'dec' }; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/datasets/0/position/ra', rule: 'column-reference' },
  { name: 'more free cores than cores', body: edited((d) => { d.compute = [{ id: 'b', kind: 'batch', cores: 4, memoryGb: 8, freeCores: 9 }]; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/compute/0/freeCores', rule: 'capacity' },
  { name: 'services not an array', body: edited((d) => { d.services = { tap: {} }; }), status: 422, code: 'CONSTELLATION_E_INVALID_DOCUMENT', path: '/services', rule: 'type' },
];

describe(`bad input never changes stored state (${backend})`, () => {
  let broker: TestBroker;
  const put = (site: string, body: string, contentType = 'application/json') =>
    fetch(`${broker.url}/sites/${site}/capabilities`, { method: 'PUT', headers: { 'content-type': contentType, 'x-publish-key': KEYS[`${site.toUpperCase()}_KEY`] ?? 'no-key' }, body });

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(FEDERATION), undefined, { env: KEYS });
    expect((await put('good', JSON.stringify(original))).status).toBe(200);
  });
  afterAll(() => broker?.close());

  it.each(cases)('rejects $name', async (c) => {
    const res = await put(c.site ?? 'good', c.body, c.contentType);
    const body = (await res.json()) as { code: string; message: string; violations?: { path: string; rule: string }[] };
    expect(res.status).toBe(c.status);
    expect(body.code).toBe(c.code);
    expect(body.message.length).toBeGreaterThan(10);
    if (c.path) expect(body.violations?.some((v) => v.path === c.path && (!c.rule || v.rule === c.rule))).toBe(true);
  });

  it('reports every violation of a document, not only the first', async () => {
    const body = edited((d) => {
      d.site.name = '';
      d.datasets[0].rows = 'many';
      d.datasets[1].service = 'nope';
      d.images = [{ ref: 'a b', types: ['bogus'] }];
    });
    const res = await put('good', body);
    const json = (await res.json()) as { violations: { path: string }[] };
    expect(res.status).toBe(422);
    expect(json.violations.map((v) => v.path)).toEqual(expect.arrayContaining(['/site/name', '/datasets/0/rows', '/images/0/ref', '/images/0/types/0']));
  });

  it('rejects a 50 MB body with 413', async () => {
    const huge = JSON.stringify({ ...original, padding: 'x'.repeat(50 * 1024 * 1024) });
    const res = await put('good', huge);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe('CONSTELLATION_E_PAYLOAD_TOO_LARGE');
  });

  it('rejects a GraphQL query nested 50 levels deep', async () => {
    let selection = 'id';
    for (let i = 0; i < 25; i++) selection = `replicas { site { ${selection} } }`;
    const res = await broker.graphql(`{ site(id: "good") { ${selection} } }`);
    expect(res.status).toBe(400);
    expect(res.errors![0].message).toMatch(/depth/i);
  });

  it('rejects bad GraphQL: syntax, unknown fields, bad arguments and bad documents', async () => {
    const syntax = await broker.graphql('{ sites { id ');
    expect(syntax.status).toBe(400);
    expect(syntax.errors![0].message).toMatch(/Syntax Error/);
    const unknown = await broker.graphql('{ sites { colour } }');
    expect(unknown.errors![0].message).toMatch(/Cannot query field "colour"/);
    const cone = await broker.graphql('{ datasets(filter: { cone: { ra: 10, dec: 100, radiusDeg: 1 } }) { id } }');
    expect(cone.errors![0].extensions?.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(cone.errors![0].message).toMatch(/filter\.cone\.dec/);
    const both = await broker.graphql('{ datasets(filter: { region: { cone: { ra: 1, dec: 1, radiusDeg: 1 }, moc: "0/1" } }) { id } }');
    expect(both.errors![0].message).toMatch(/exactly one of cone or moc/);
    const moc = await broker.graphql('{ datasets(filter: { region: { moc: "4/1-" } }) { id } }');
    expect(moc.errors![0].extensions?.code).toBe('CONSTELLATION_E_INVALID_MOC');
    const limit = await broker.graphql('{ datasets(limit: -5) { id } }');
    expect(limit.errors![0].message).toMatch(/limit must be an integer/);
    const doc = await broker.graphql('mutation($d: JSON!) { publishCapabilities(siteId: "good", document: $d) { id } }', { d: 'not a document' }, { 'x-publish-key': KEYS.GOOD_KEY });
    expect(doc.errors![0].extensions?.code).toBe('CONSTELLATION_E_INVALID_DOCUMENT');
    const mismatch = await broker.graphql('mutation($d: JSON!) { publishCapabilities(siteId: "good", document: $d) { id } }', { d: documentFor('other') }, { 'x-publish-key': KEYS.GOOD_KEY });
    expect(mismatch.errors![0].extensions?.code).toBe('CONSTELLATION_E_SITE_MISMATCH');
  });

  it('still holds the original document and answers queries afterwards', async () => {
    const stored = await (await fetch(`${broker.url}/sites/good/capabilities`)).json();
    expect(stored).toEqual(original);
    const { data } = await broker.graphql<{ site: { replicas: { dataset: { id: string }; coverage: string }[]; documents: unknown[] } }>(
      '{ site(id: "good") { replicas { dataset { id } coverage } documents { id } } }');
    expect(data!.site.replicas.map((r) => [r.dataset.id, r.coverage])).toEqual([['gaia_dr3.gaia_source', '0/0-11'], ['survey.deep', '2/5-9']]);
    expect(data!.site.documents).toHaveLength(1);
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
  });
});
