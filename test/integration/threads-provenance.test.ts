/**
 * Provenance and re-run of cross-match threads (issue 11, points 5 and 6), through the public
 * API against simulated TAP sites running real ADQL: alpha holds a Gaia-like table, beta a
 * Pan-STARRS-like one behind a switch that sends beta's requests to one of two simulators
 * holding the same rows but for one planted partner moved away, so "a site's rows changed" is a
 * real change at the site. The provenance names every site asked, the exact query each got,
 * rows, bytes, durations, the digest of each site's capability document and the broker version,
 * as JSON and as PROV-JSON with every relation pointing at a node that exists; only the owner
 * reads it, and no token is in it. A re-run of an unchanged federation is the same; after beta's
 * rows change, the differences name beta's reads and the overall result.
 */
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../adapters/ivoa/votable/index.js';
import { checksumOf } from '../../broker/threads/checksum.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const RADIUS = 2;
const CONE = { ra: 0.4, dec: 0, radiusDeg: 0.4 };
const PATCH = { raMin: 0, raMax: 0.8, decMin: -0.5, decMax: 0.5 };

/** Pairs 0.1 to 0.9 × the radius apart, inside the cone. */
function plantedPairs(): { gaia: Row[]; ps: Row[] } {
  const gaia: Row[] = [];
  const ps: Row[] = [];
  for (let k = 0; k < 12; k++) {
    const ra = 0.25 + k * 0.025;
    const dec = ((k % 4) - 1.5) * 0.1;
    const sepDeg = ((0.1 + (0.8 * k) / 11) * RADIUS) / 3600;
    gaia.push([BigInt(1_000_000 + k), ra, dec, 15]);
    ps.push([BigInt(2_000_000 + k), ra, dec + sepDeg, 16]);
  }
  return { gaia, ps };
}
const PLANTED = plantedPairs();
// The changed beta: planted partner 5 moved 30″ north, so left row 1_000_005 has no partner any more.
const MOVED = PLANTED.ps.map((r, k) => (k === 5 ? [r[0], r[1], Number(r[2]) + 30 / 3600, r[3]] : r));

const COLUMNS_GAIA = [
  { name: 'source_id', datatype: 'long' as const },
  { name: 'ra', datatype: 'double' as const, unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
  { name: 'dec', datatype: 'double' as const, unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
  { name: 'phot_g_mean_mag', datatype: 'double' as const, unit: 'mag' },
];
const GAIA: SimTable = { name: 'gaia_dr3.gaia_source', rows: 200, position: { ra: 'ra', dec: 'dec' }, region: PATCH, planted: PLANTED.gaia, columns: COLUMNS_GAIA };
// Advertised far larger than held, so reads at beta (maxRec 120) are tiled: several steps per side.
const PS = (planted: Row[]): SimTable => ({
  name: 'ps1_dr2.mean_object',
  rows: 20_000_000,
  heldRows: 200,
  position: { ra: 'ra', dec: 'dec' },
  region: PATCH,
  planted,
  columns: [
    { name: 'objid', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'rmag', datatype: 'double', unit: 'mag' },
  ],
});

/** An HTTP front that forwards every request, Host header kept, to whichever site `target` names. */
class SwitchingFront {
  target: string;
  url = '';
  private readonly server: Server;
  constructor(target: string) {
    this.target = target;
    this.server = createServer((req, res) => {
      const up = new URL(this.target);
      const forward = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', (err) => res.destroy(err));
      req.pipe(forward);
    });
    // Longer than the broker's keep-alive (10 s): the client, not the front, closes an idle
    // connection. With Node's 5 s default, a loaded machine let the broker send a query on a
    // connection the front was closing at that moment (seen as "connection reset").
    this.server.keepAliveTimeout = 120_000;
  }
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the front has no port');
    this.url = `http://127.0.0.1:${address.port}`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

type Answer<T> = { status: number; data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
interface StepView { ordinal: number; kind: string; site: string | null; state: string; job: { id: string; siteJobId: string | null } | null; rowsOut: number | null }
interface ThreadView { id: string; state: string; resultRows: number | null; resultChecksum: string | null; brokerVersion: string | null; rerunOf: { id: string } | null; steps: StepView[]; error: { code: string; message: string } | null }
const THREAD = 'id state resultRows resultChecksum brokerVersion rerunOf { id } error { code message } steps { ordinal kind site state job { id siteJobId } rowsOut }';
interface Comparison { rowsBefore: number | null; rowsAfter: number | null; checksumBefore: string | null; checksumAfter: string | null; same: boolean }
interface Differences { original: string; compared: boolean; stepsComparable: boolean; same: boolean; overall: Comparison; steps: (Comparison & { ordinal: number; kind: string; siteBefore: string | null; siteAfter: string | null })[] }
const DIFFERENCES = 'differences { original compared stepsComparable same overall { rowsBefore rowsAfter checksumBefore checksumAfter same } steps { ordinal kind siteBefore siteAfter rowsBefore rowsAfter checksumBefore checksumAfter same } }';

interface Provenance {
  thread: { id: string; owner: string; state: string; strategy: string; rerunOf: string | null; durationMs: number | null };
  broker: { software: string; version: string };
  sitesAsked: string[];
  documents: { siteId: string; documentId: number; digest: string }[];
  inputs: { side: string; dataset: string; site: string; table: string }[];
  steps: { ordinal: number; kind: string; site: string | null; jobId: string | null; siteJobId: string | null; query: { adql: string; service: string } | null; rowsOut: number | null; bytesIn: number | null; durationMs: number | null; checksum: string | null }[];
  result: { rows: number; bytes: number; checksum: string; url: string };
}

describe(`thread provenance and re-run (${backend})`, () => {
  let idp: TestOidcProvider;
  let alpha: SimSite;
  let betaBefore: SimSite;
  let betaAfter: SimSite;
  let front: SwitchingFront;
  let broker: TestBroker;
  let dataDir: string;
  const tokens: Record<string, string> = {};
  let original: ThreadView;

  async function gql<T>(query: string, variables: Record<string, unknown> = {}, token: string | undefined = tokens.alice): Promise<Answer<T>> {
    const res = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, ...((await res.json()) as object) };
  }
  const thread = async (id: string) => (await gql<{ thread: ThreadView | null }>(`query($id: ID!) { thread(id: $id) { ${THREAD} } }`, { id })).data?.thread ?? null;
  const ended = async (id: string) => {
    const t = await waitUntil(() => thread(id), (x) => x !== null && ['COMPLETED', 'ERROR', 'ABORTED'].includes(x.state), { describe: (x) => `thread ${id} is ${x?.state}` });
    expect(t!.state, JSON.stringify(t!.error)).toBe('COMPLETED');
    return t!;
  };
  const rerun = async (id: string, replan = false) => {
    const started = await gql<{ rerunThread: ThreadView }>(`mutation($id: ID!, $r: Boolean) { rerunThread(id: $id, replan: $r) { ${THREAD} } }`, { id, r: replan });
    expect(started.errors, JSON.stringify(started.errors)).toBeUndefined();
    return started.data!.rerunThread;
  };
  const differences = async (id: string) => (await gql<{ thread: { differences: Differences | null } }>(`query($id: ID!) { thread(id: $id) { ${DIFFERENCES} } }`, { id })).data!.thread.differences!;
  // token null: no credential at all (undefined would be alice, the default).
  const provenance = (id: string, format?: string, token: string | null = tokens.alice) =>
    fetch(`${broker.url}/threads/${id}/provenance${format ? `?format=${format}` : ''}`, { headers: token !== null ? { authorization: `Bearer ${token}` } : {} });
  /** No bearer token of this file, and nothing shaped like a JWT, in `text`. */
  const expectNoToken = (text: string) => {
    for (const t of Object.values(tokens)) expect(text.includes(t)).toBe(false);
    expect(text).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
  };

  beforeAll(async () => {
    idp = await startOidcProvider();
    alpha = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [GAIA] });
    betaBefore = new SimSite();
    mountTapService(betaBefore, { path: '/tap', tables: [PS(PLANTED.ps)], maxRec: 120 });
    betaAfter = new SimSite();
    mountTapService(betaAfter, { path: '/tap', tables: [PS(MOVED)], maxRec: 120 });
    await Promise.all([alpha.start(), betaBefore.start(), betaAfter.start()]);
    front = new SwitchingFront(betaBefore.url);
    await front.start();
    dataDir = await mkdtemp(join(tmpdir(), 'threads-provenance-'));
    const yaml = `
federation: { name: provenance }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  anonymous: submit
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${alpha.url}/tap" }
  - { id: beta, name: Beta, adapter: tap, url: "${front.url}/tap" }
`;
    broker = await startBroker(configFromYaml(yaml, { CONSTELLATION_DATA: dataDir }), undefined, { jobs: { pollIntervalMs: 50, tickMs: 25 } });
    for (const user of ['alice', 'bob'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    for (const id of ['alpha', 'beta']) expect(await broker.harvest(id), id).toMatchObject({ outcome: 'OK' });
    const started = await gql<{ crossmatch: ThreadView }>(`mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${THREAD} } }`, {
      i: {
        left: { dataset: 'gaia_dr3.gaia_source', columns: ['source_id', 'ra'] },
        right: { dataset: 'ps1_dr2.mean_object', columns: ['objid', 'ra'] },
        region: { cone: CONE }, radiusArcsec: RADIUS, strategy: 'BROKER', sites: ['alpha', 'beta'],
      },
    });
    expect(started.errors, JSON.stringify(started.errors)).toBeUndefined();
    original = await ended(started.data!.crossmatch.id);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await front?.close();
    await Promise.all([alpha?.close(), betaBefore?.close(), betaAfter?.close()]);
    await idp?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('records every site asked, the exact query each got, rows, bytes, durations, document digests and the broker version', async () => {
    const res = await provenance(original.id);
    expect(res.status).toBe(200);
    const text = await res.text();
    expectNoToken(text);
    const p = JSON.parse(text) as Provenance;
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(p.broker).toEqual({ software: 'constellation', version: pkg.version });
    expect(original.brokerVersion).toBe(pkg.version);
    expect(p.thread).toMatchObject({ id: original.id, state: 'COMPLETED', strategy: 'BROKER', rerunOf: null });
    expect(p.thread.durationMs).toBeGreaterThanOrEqual(0);
    expect([...p.sitesAsked].sort()).toEqual(['alpha', 'beta']);
    // The digest each decision used: the site's stored capability document when the thread was planned.
    const stored = await broker.db.pool.query<{ id: string; site_id: string; digest: string }>(
      `SELECT DISTINCT ON (site_id) id::text, site_id, digest FROM site_documents WHERE site_id IN ('alpha', 'beta') ORDER BY site_id, id DESC`);
    expect(p.documents.map((d) => ({ site: d.siteId, id: String(d.documentId), digest: d.digest })).sort((a, b) => a.site.localeCompare(b.site)))
      .toEqual(stored.rows.map((r) => ({ site: r.site_id, id: r.id, digest: r.digest })));
    for (const d of p.documents) expect(d.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(p.inputs.map((i) => `${i.side} ${i.dataset} ${i.site}`).sort()).toEqual(['left gaia_dr3.gaia_source alpha', 'right ps1_dr2.mean_object beta']);
    // Each site step: its job, the exact ADQL its job sent (the job's own stored query), rows, bytes, a duration and a checksum.
    const reads = p.steps.filter((s) => s.kind === 'site-read');
    expect(reads.length).toBeGreaterThan(2);
    expect(p.steps.at(-1)!.kind).toBe('match');
    for (const s of reads) {
      const view = original.steps.find((v) => v.ordinal === s.ordinal)!;
      expect(s.jobId).toBe(view.job!.id);
      expect(s.siteJobId).toBe(view.job!.siteJobId);
      expect(s.site).toBe(view.site);
      expect(s.query!.adql).toMatch(s.site === 'alpha' ? /FROM gaia_dr3\.gaia_source/i : /FROM ps1_dr2\.mean_object/i);
      expect(s.query!.adql).toMatch(/CIRCLE|POLYGON|ivo_healpix_index/i);
      expect(s.rowsOut).toBe(view.rowsOut);
      expect(s.bytesIn).toBeGreaterThan(0);
      expect(s.durationMs).toBeGreaterThanOrEqual(0);
      expect(s.checksum).toMatch(/^[0-9a-f]{16}$/);
    }
    // The query the job stored is the one recorded, character for character.
    const first = reads[0];
    const job = await gql<{ job: { candidateIndex: number; plan: { candidates: { siteId: string; siteQuery: { adql: string } }[] } } }>(
      'query($id: ID!) { job(id: $id) { candidateIndex plan { candidates { siteId ... on QueryCandidate { siteQuery { adql } } } } } }', { id: first.jobId });
    expect(job.errors, JSON.stringify(job.errors)).toBeUndefined();
    expect(job.data!.job.plan.candidates[job.data!.job.candidateIndex].siteQuery.adql).toBe(first.query!.adql);
    expect(p.result).toEqual({ rows: original.resultRows, bytes: expect.any(Number), checksum: original.resultChecksum, url: `/results/${original.id}` });
    expect(original.resultChecksum).toMatch(/^[0-9a-f]{16}$/);
    // GraphQL's Thread.provenance is the same record.
    const viaGraphql = await gql<{ thread: { provenance: Provenance } }>('query($id: ID!) { thread(id: $id) { provenance } }', { id: original.id });
    expect(viaGraphql.data!.thread.provenance).toEqual(p);
  }, WAITING_TEST_MS);

  it('PROV-JSON: inputs with their document digests, each step and the match, the broker with its version and the user, every relation pointing at a node that exists', async () => {
    const res = await provenance(original.id, 'prov-json');
    expect(res.status).toBe(200);
    const text = await res.text();
    expectNoToken(text);
    const doc = JSON.parse(text) as Record<string, Record<string, Record<string, unknown>>>;
    for (const key of ['entity', 'activity', 'agent', 'used', 'wasGeneratedBy', 'wasAssociatedWith', 'wasDerivedFrom']) expect(Object.keys(doc[key] ?? {}).length, key).toBeGreaterThan(0);
    const agents = Object.values(doc.agent);
    expect(agents.find((a) => a['prov:type'] === 'prov:SoftwareAgent')).toMatchObject({ 'cst:version': original.brokerVersion });
    expect(agents.some((a) => a['prov:type'] === 'prov:Person')).toBe(true);
    const inputs = Object.values(doc.entity).filter((e) => e['prov:type'] === 'cst:InputDataset');
    expect(inputs.map((e) => e['cst:site']).sort()).toEqual(['alpha', 'beta']);
    for (const e of inputs) expect(e['cst:capabilityDocumentSha256']).toMatch(/^[0-9a-f]{64}$/);
    const result = doc.entity[`cst:thread/${original.id}/result`];
    expect(result).toMatchObject({ 'prov:type': 'cst:CrossmatchResult', 'cst:rows': original.resultRows, 'cst:checksum': original.resultChecksum });
    expect(Object.keys(doc.activity)).toHaveLength(original.steps.length);
    const queries = Object.values(doc.activity).filter((a) => typeof a['cst:query'] === 'string');
    expect(queries).toHaveLength(original.steps.filter((s) => s.kind !== 'match').length);
    // Referential integrity: every relation names entities, activities and agents of this document.
    const isEntity = (x: unknown) => typeof x === 'string' && x in doc.entity;
    const isActivity = (x: unknown) => typeof x === 'string' && x in doc.activity;
    const isAgent = (x: unknown) => typeof x === 'string' && x in doc.agent;
    for (const u of Object.values(doc.used)) expect(isActivity(u['prov:activity']) && isEntity(u['prov:entity']), JSON.stringify(u)).toBe(true);
    for (const g of Object.values(doc.wasGeneratedBy)) expect(isEntity(g['prov:entity']) && isActivity(g['prov:activity']), JSON.stringify(g)).toBe(true);
    for (const w of Object.values(doc.wasAssociatedWith)) expect(isActivity(w['prov:activity']) && isAgent(w['prov:agent']), JSON.stringify(w)).toBe(true);
    for (const d of Object.values(doc.wasDerivedFrom)) expect(isEntity(d['prov:generatedEntity']) && isEntity(d['prov:usedEntity']), JSON.stringify(d)).toBe(true);
    // The result was generated, and derived from the reads of both sites.
    expect(Object.values(doc.wasGeneratedBy).some((g) => g['prov:entity'] === `cst:thread/${original.id}/result`)).toBe(true);
    const derivedFrom = Object.values(doc.wasDerivedFrom).filter((d) => d['prov:generatedEntity'] === `cst:thread/${original.id}/result`);
    expect(derivedFrom).toHaveLength(original.steps.filter((s) => s.kind === 'site-read').length);
  }, WAITING_TEST_MS);

  it('is the owner\'s only: another user, an anonymous caller and an unknown id get NOT_FOUND; a bad format is INVALID_ARGUMENT', async () => {
    for (const token of [tokens.bob, null]) {
      for (const format of [undefined, 'prov-json']) {
        const res = await provenance(original.id, format, token);
        expect(res.status).toBe(404);
        const body = await res.text();
        expect(body).toMatch(/NOT_FOUND/);
        expect(body).not.toMatch(/alpha|gaia/);
      }
    }
    expect((await provenance('6b1f4f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f')).status).toBe(404);
    expect((await provenance('not-a-uuid')).status).toBe(404);
    const bad = await provenance(original.id, 'turtle');
    expect(bad.status).toBe(400);
    // Bob cannot re-run it, nor read its provenance through GraphQL.
    const theirs = await gql<{ rerunThread: ThreadView }>('mutation($id: ID!) { rerunThread(id: $id) { id } }', { id: original.id }, tokens.bob);
    expect(theirs.errors?.[0]?.extensions?.code).toMatch(/NOT_FOUND/);
    expect((await gql<{ thread: null }>('query($id: ID!) { thread(id: $id) { provenance } }', { id: original.id }, tokens.bob)).data?.thread).toBeNull();
  }, WAITING_TEST_MS);

  it('a re-run of an unchanged federation is the same, per step and overall; with replan too', async () => {
    const again = await rerun(original.id);
    expect(again.id).not.toBe(original.id);
    expect(again.rerunOf).toEqual({ id: original.id });
    const done = await ended(again.id);
    expect(done.resultRows).toBe(original.resultRows);
    const d = await differences(again.id);
    expect(d).toMatchObject({ original: original.id, compared: true, stepsComparable: true, same: true });
    expect(d.overall).toEqual({ rowsBefore: original.resultRows, rowsAfter: original.resultRows, checksumBefore: original.resultChecksum, checksumAfter: original.resultChecksum, same: true });
    expect(d.steps).toHaveLength(original.steps.length);
    expect(d.steps.every((s) => s.same)).toBe(true);
    // Its provenance names the run it repeats.
    const p = (await (await provenance(again.id)).json()) as Provenance;
    expect(p.thread.rerunOf).toBe(original.id);
    // The original is no re-run.
    expect(await differences(original.id)).toBeNull();
    const replanned = await rerun(original.id, true);
    await ended(replanned.id);
    expect(await differences(replanned.id)).toMatchObject({ compared: true, same: true, overall: { same: true } });
  }, WAITING_TEST_MS);

  it('after a site\'s rows change, the differences name the steps that read there and the overall change', async () => {
    front.target = betaAfter.url;
    try {
      const again = await rerun(original.id);
      const done = await ended(again.id);
      expect(done.resultRows).toBe(original.resultRows! - 1);
      const d = await differences(again.id);
      expect(d).toMatchObject({ compared: true, stepsComparable: true, same: false });
      expect(d.overall).toMatchObject({ rowsBefore: original.resultRows, rowsAfter: original.resultRows! - 1, same: false });
      expect(d.overall.checksumAfter).not.toBe(d.overall.checksumBefore);
      const changed = d.steps.filter((s) => !s.same);
      // Beta's reads over the tile (or tiles, with the margin) holding the moved row, and the match; nothing read at alpha.
      expect(changed.filter((s) => s.kind === 'site-read').length).toBeGreaterThan(0);
      for (const s of changed.filter((x) => x.kind === 'site-read')) {
        expect(s.siteAfter).toBe('beta');
        expect(s.rowsAfter).toBe(s.rowsBefore);
        expect(s.checksumAfter).not.toBe(s.checksumBefore);
      }
      expect(changed.find((s) => s.kind === 'match')).toMatchObject({ rowsBefore: original.resultRows, rowsAfter: original.resultRows! - 1 });
      expect(d.steps.filter((s) => s.siteBefore === 'alpha').every((s) => s.same)).toBe(true);
    } finally {
      front.target = betaBefore.url;
    }
  }, WAITING_TEST_MS);
});

describe('the result checksum', () => {
  it('is independent of row order, counts a repeated row, and tells types and values apart', () => {
    const rows: Row[] = [[1n, 0.1, 'a', null], [2n, -0, 'b', true], [2n ** 70n, 1e-300, '', false], [[1, 2], 3.5, 'ü', null]];
    const sum = checksumOf(rows);
    expect(sum).toMatch(/^[0-9a-f]{16}$/);
    expect(checksumOf([...rows].reverse())).toBe(sum);
    expect(checksumOf([...rows, rows[0]])).not.toBe(sum);
    expect(checksumOf([...rows, rows[0], rows[0]])).not.toBe(checksumOf([...rows, rows[0]]));
    expect(checksumOf([[1n]])).not.toBe(checksumOf([[1]]));
    expect(checksumOf([[1]])).not.toBe(checksumOf([['1']]));
    expect(checksumOf([['ab', 'c']])).not.toBe(checksumOf([['a', 'bc']]));
    expect(checksumOf([[0.1 + 0.2]])).not.toBe(checksumOf([[0.3]]));
    expect(checksumOf([])).toBe('0000000000000000');
  });
});
