import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapabilityDocument, DatasetDoc } from '../../registry/model/capability.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';

// Issue 13, point 3: a publish writes only the rows that differ from the stored ones, in one
// transaction, and a reader sees each publish whole or not at all.

type Answer = { siteId: string; registryVersion: number; documentId: number; replicas: number; rowsWritten: { upserted: number; deleted: number } };

const HOUR = 3_600_000;
const T0 = Date.parse('2026-11-23T00:00:00Z');
const at = (hours: number) => new Date(T0 + hours * HOUR).toISOString();

/** A site of `n` datasets on services "a" and "b", with columns, coverage and a compute pool. */
function baseDocument(site: string, n = 12): CapabilityDocument {
  const doc = documentFor(site, Array.from({ length: n }, (_, i) => ({
    id: `cat.t${String(i).padStart(3, '0')}`, table: `local.t${i}`, rows: 1000 + i, title: `Table ${i}`,
    // MOCs in normal form, as validation leaves them.
    coverage: i % 3 === 0 ? '0/0-11' : `3/${i * 4 + 1}`,
    service: i % 2 ? 'b' : 'a',
  })), {
    compute: [{ id: 'batch', kind: 'batch', cores: 64, memoryGb: 256, freeCores: 10 }],
    images: [{ ref: 'images.example.org/base:1', types: ['headless'] }],
    asOf: at(0),
  });
  doc.services = [
    { id: 'a', type: 'tap', url: `https://${site}.example.org/a`, auth: ['anonymous'] },
    { id: 'b', type: 'tap', url: `https://${site}.example.org/b`, auth: ['anonymous'] },
  ];
  return doc;
}

/** What a reader sees of a site, from GraphQL. */
const SITE_VIEW = `query($id: ID!) { site(id: $id) {
  asOf services { id url } compute { id freeCores } images { ref }
  replicas { dataset { id } table rows title service { id } coverage columns { name ucd } access { public groups } }
} }`;

interface SiteView {
  asOf: string;
  services: { id: string; url: string }[];
  compute: { id: string; freeCores: number | null }[];
  images: { ref: string }[];
  replicas: { dataset: { id: string }; table: string; rows: number | null; title: string | null; service: { id: string }; coverage: string | null;
    columns: { name: string; ucd: string | null }[]; access: { public: boolean; groups: string[] } }[];
}

/** The view a reader must see once `doc` is stored (GraphQL lists replicas by dataset id, services and pools by id). */
function expectedView(doc: CapabilityDocument): SiteView {
  const byId = <T>(key: (t: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  return {
    asOf: new Date(doc.asOf).toISOString(),
    services: doc.services.map((s) => ({ id: s.id, url: s.url })).sort(byId((s) => s.id)),
    compute: doc.compute.map((p) => ({ id: p.id, freeCores: p.freeCores ?? null })).sort(byId((p) => p.id)),
    images: doc.images.map((m) => ({ ref: m.ref })).sort(byId((m) => m.ref)),
    replicas: doc.datasets.map((d) => ({
      dataset: { id: d.id }, table: d.table, rows: d.rows ?? null, title: d.title ?? null, service: { id: d.service }, coverage: d.coverage ?? null,
      columns: (d.columns ?? []).map((c) => ({ name: c.name, ucd: c.ucd ?? null })), access: { public: d.access.public, groups: d.access.groups ?? [] },
    })).sort(byId((r) => r.dataset.id)),
  };
}

describe(`publishing writes only what changed (${backend})`, () => {
  let broker: TestBroker;
  const put = async (doc: CapabilityDocument): Promise<Answer> => {
    const res = await fetch(`${broker.url}/sites/${doc.site.id}/capabilities`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body as Answer;
  };
  const view = async (site: string) => {
    const { data, errors } = await broker.graphql<{ site: SiteView }>(SITE_VIEW, { id: site });
    expect(errors).toBeUndefined();
    return data!.site;
  };
  /** Every row the site holds, with the transaction that last wrote it (xmin) and its id. */
  const rowVersions = async (site: string) => {
    const q = async (sql: string) => (await broker.db.pool.query<{ k: string; xmin: string }>(sql, [site])).rows.map((r) => `${r.k}@${r.xmin}`).sort();
    return {
      services: await q('SELECT id AS k, xmin::text FROM services WHERE site_id = $1'),
      replicas: await q(`SELECT dataset_id || '#' || id AS k, xmin::text FROM replicas WHERE site_id = $1`),
      columns: await q(`SELECT c.replica_id || '/' || c.ordinal AS k, c.xmin::text FROM replica_columns c JOIN replicas r ON r.id = c.replica_id WHERE r.site_id = $1`),
      coverage: await q(`SELECT c.replica_id::text AS k, c.xmin::text FROM coverage c JOIN replicas r ON r.id = c.replica_id WHERE r.site_id = $1`),
      compute: await q('SELECT id AS k, xmin::text FROM compute_pools WHERE site_id = $1'),
      images: await q('SELECT ref AS k, xmin::text FROM images WHERE site_id = $1'),
      datasets: await q('SELECT d.id AS k, d.xmin::text FROM datasets d WHERE EXISTS (SELECT 1 FROM replicas r WHERE r.dataset_id = d.id AND r.site_id = $1)'),
    };
  };
  const replicaIds = async (site: string) => new Map((await broker.db.pool.query<{ dataset: string; id: number }>(
    'SELECT dataset_id AS dataset, id FROM replicas WHERE site_id = $1', [site])).rows.map((r) => [r.dataset, r.id]));

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
  }, 60_000);
  afterAll(() => broker?.close());

  it('writes none of the rows when a republish changes only asOf', async () => {
    const doc = baseDocument('same');
    const first = await put(doc);
    expect(first.rowsWritten.deleted).toBe(0);
    expect(first.rowsWritten.upserted).toBe(2 + 12 + 24 + 12 + 1 + 1);
    const before = await rowVersions('same');
    const again = await put({ ...doc, asOf: at(1) });
    expect(again.rowsWritten).toEqual({ upserted: 0, deleted: 0 });
    expect(await rowVersions('same')).toEqual(before);
    // Still a new registry version and a new document: asOf and the history changed.
    expect(again.registryVersion).toBeGreaterThan(first.registryVersion);
    expect(again.documentId).toBeGreaterThan(first.documentId);
    expect(await view('same')).toEqual(expectedView({ ...doc, asOf: at(1) }));
  });

  it('writes one row for one change, and every replica keeps its id', async () => {
    const doc = baseDocument('one');
    await put(doc);
    const ids = await replicaIds('one');
    const before = await rowVersions('one');
    const next = structuredClone(doc);
    next.asOf = at(1);
    next.datasets[5].rows = 77;
    const answer = await put(next);
    expect(answer.rowsWritten).toEqual({ upserted: 1, deleted: 0 });
    expect(await replicaIds('one')).toEqual(ids);
    const after = await rowVersions('one');
    const replicaId = ids.get(next.datasets[5].id)!;
    expect(after.replicas.filter((r) => !before.replicas.includes(r))).toEqual([expect.stringMatching(new RegExp(`^cat\\.t005#${replicaId}@`))]);
    for (const table of ['services', 'columns', 'coverage', 'compute', 'images', 'datasets'] as const) expect(after[table]).toEqual(before[table]);
    expect(await view('one')).toEqual(expectedView(next));
  });

  it('moves replicas between services, drops a service, grows and shrinks columns, adds and removes coverage', async () => {
    const doc = baseDocument('move');
    await put(doc);
    const ids = await replicaIds('move');
    const next = structuredClone(doc);
    next.asOf = at(1);
    // Service "a" goes; its replicas move to "b" or to the new "c".
    next.services = [next.services[1], { id: 'c', type: 'tap', url: 'https://move.example.org/c', auth: ['anonymous'] }];
    next.datasets.forEach((d, i) => {
      if (d.service === 'a') d.service = i % 4 === 0 ? 'c' : 'b';
    });
    next.datasets[1].columns = [...next.datasets[1].columns!, { name: 'mag', ucd: 'phot.mag' }, { name: 'err', ucd: 'stat.error' }];
    next.datasets[2].columns = [next.datasets[2].columns![0]];
    delete next.datasets[2].position;
    delete next.datasets[3].coverage;
    next.datasets[4].coverage = '1/1-3';
    next.compute = [];
    next.images = [{ ref: 'images.example.org/base:2', types: ['batch'] }];
    const answer = await put(next);
    expect(answer.rowsWritten.deleted).toBeGreaterThan(0);
    expect(await replicaIds('move')).toEqual(ids);
    expect(await view('move')).toEqual(expectedView(next));
    const left = await broker.db.pool.query('SELECT 1 FROM replica_columns c JOIN replicas r ON r.id = c.replica_id WHERE r.site_id = $1 AND c.ordinal >= 1 AND r.dataset_id = $2', ['move', next.datasets[2].id]);
    expect(left.rowCount).toBe(0);
  });

  it('keeps the newest 20 documents of a site, whatever changed', async () => {
    const doc = baseDocument('history', 2);
    const ids: number[] = [];
    for (let n = 0; n < 23; n++) ids.push((await put({ ...doc, asOf: at(n), datasets: n % 3 ? doc.datasets : doc.datasets.slice(1) })).documentId);
    const { rows } = await broker.db.pool.query<{ id: number }>('SELECT id FROM site_documents WHERE site_id = $1 ORDER BY id DESC', ['history']);
    expect(rows.map((r) => r.id)).toEqual(ids.slice(-20).reverse());
  });

  it('deletes a canonical dataset with its last replica only', async () => {
    const shared = (site: string, ids: string[]) => {
      const doc = baseDocument(site, 0);
      doc.datasets = ids.map((id, i) => ({ id, service: 'a', table: `x.t${i}`, access: { public: true } }));
      return doc;
    };
    await put(shared('left', ['shared.both', 'shared.leftonly']));
    await put(shared('right', ['shared.both']));
    await put({ ...shared('left', ['shared.new']), asOf: at(1) });
    const { rows } = await broker.db.pool.query<{ id: string }>(`SELECT id FROM datasets WHERE id LIKE 'shared.%' ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual(['shared.both', 'shared.new']);
    await put({ ...shared('right', []), asOf: at(1) });
    expect((await broker.db.pool.query(`SELECT id FROM datasets WHERE id = 'shared.both'`)).rowCount).toBe(0);
  });

  it('publishes sites sharing datasets concurrently without deadlock, orphans or lost datasets', async () => {
    // Eight sites, each publishing five versions that take and let go of datasets from one pool of
    // twelve, in different orders: every publish must succeed and the datasets table must end as
    // exactly the datasets some replica holds.
    const pool = Array.from({ length: 12 }, (_, i) => `race.d${String(i).padStart(2, '0')}`);
    const version = (s: number, v: number) => {
      const doc = baseDocument(`race-${s}`, 0);
      doc.asOf = at(v);
      const chosen = pool.filter((_, i) => (i * 7 + s * 3 + v * 5) % 3 !== 0);
      if ((s + v) % 2) chosen.reverse();
      doc.datasets = chosen.map((id, i): DatasetDoc => ({ id, service: 'a', table: `r.t${i}`, rows: v, access: { public: true } }));
      return doc;
    };
    await Promise.all(Array.from({ length: 8 }, async (_, s) => {
      for (let v = 0; v < 5; v++) await put(version(s, v));
    }));
    const held = await broker.db.pool.query<{ id: string }>(`SELECT DISTINCT dataset_id AS id FROM replicas WHERE dataset_id LIKE 'race.%' ORDER BY 1`);
    const stored = await broker.db.pool.query<{ id: string }>(`SELECT id FROM datasets WHERE id LIKE 'race.%' ORDER BY 1`);
    expect(stored.rows).toEqual(held.rows);
    const expected = new Set(Array.from({ length: 8 }, (_, s) => version(s, 4).datasets.map((d) => d.id)).flat());
    expect(held.rows.map((r) => r.id)).toEqual([...expected].sort());
  }, 120_000);

  it('shows a reader each partial republish whole or not at all', async () => {
    // Each generation changes part of the site: row counts of a few replicas, one replica moved
    // to the other service, one dataset swapped, one column list and one coverage changed, the
    // compute pool's free cores. Every read must equal exactly one generation.
    const generations: CapabilityDocument[] = [baseDocument('flux', 40)];
    for (let n = 1; n <= 14; n++) {
      const next = structuredClone(generations[n - 1]);
      next.asOf = at(n);
      for (let k = 0; k < 5; k++) next.datasets[(n * 7 + k * 3) % 40].rows = n * 100 + k;
      const moved = next.datasets[n % 40];
      moved.service = moved.service === 'a' ? 'b' : 'a';
      next.datasets[(n * 11) % 40] = { ...next.datasets[(n * 11) % 40], id: `cat.gen${n}`, table: `local.gen${n}` };
      const widened = next.datasets[(n * 13) % 40];
      widened.columns = n % 2 ? [...widened.columns!, { name: `c${n}` }] : widened.columns!.slice(0, 1);
      if (n % 2 === 0 && widened.position) delete widened.position;
      next.datasets[(n * 17) % 40].coverage = `4/${n}`;
      next.compute[0].freeCores = n;
      generations.push(next);
    }
    const expected = new Map(generations.map((g) => [new Date(g.asOf).toISOString(), expectedView(g)]));
    await put(generations[0]);
    let publishing = true;
    const seen = new Set<string>();
    const reader = async () => {
      let reads = 0;
      while (publishing || reads < 3) {
        const got = await view('flux');
        expect(expected.has(got.asOf), `a read at asOf ${got.asOf}`).toBe(true);
        expect(got).toEqual(expected.get(got.asOf));
        seen.add(got.asOf);
        reads++;
      }
      return reads;
    };
    const readers = [reader(), reader(), reader()];
    try {
      for (const g of generations.slice(1)) {
        const answer = await put(g);
        // A partial change writes a part: far fewer rows than the site's 40 replicas, 80 columns, 40 coverages.
        expect(answer.rowsWritten.upserted + answer.rowsWritten.deleted).toBeLessThan(25);
      }
    } finally {
      publishing = false;
    }
    await Promise.all(readers);
    expect(seen.size).toBeGreaterThan(1);
    expect(await view('flux')).toEqual(expected.get(at(14)));
  }, 120_000);
});
