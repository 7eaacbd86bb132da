import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogueSearch } from '../../broker/services/catalogue-view.js';
import type { DatasetDoc } from '../../registry/model/capability.js';
import { searchDatasets, type ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import { registryVersion } from '../../registry/store/queries/sites.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { seededRandom } from '../support/random.js';
import { startBroker, type TestBroker } from '../support/broker.js';

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];

// Names chosen to exercise C order ('_' and '.' sort before letters and digits), ILIKE escaping
// (% _ \ in titles and searches), case folding and UCD atoms with and without sub-atoms.
const IDS = ['gaia_dr3.gaia_source', 'gaia_dr3.gaia_source_lite', 'gaiadr3.source', 'ps1.mean_object', 'ps1.meanobject', 'sdss.photo_obj',
  'sdss.specobj', 'a_b.c', 'ab.c', 'a1.z', 'twomass.psc', 'wise.allwise_p3as', 'x.y_', 'x.y0', 'zz.top'];
const TITLES = [undefined, 'Gaia DR3 source', 'GAIA lite', '100% complete', 'under_score', 'back\\slash', 'Café des étoiles', 'Mean Object', 'Photo obj'];
const TABLES = ['gaiadr3.gaia_source', 'GAIA.Source', 'dr3.SRC', 'ps1.MeanObject', 'public.photoobj', 'x.Y', 'tbl_%_x', 'cat\\alog'];
const UCDS = ['pos.eq.ra;meta.main', 'POS.EQ.DEC;META.MAIN', 'phot.mag;em.opt.V', 'meta.id', 'src.class.starGalaxy', 'pos', 'meta.id;meta.main', 'em.IR.3-4um'];

/** A site's document drawn from the pools above: public, group-restricted and mixed replicas. */
function siteDoc(site: string, rnd: () => number, extraTitle?: string) {
  const chosen = new Set<string>();
  const n = 3 + Math.floor(rnd() * 7);
  while (chosen.size < n) chosen.add(pick(rnd, IDS));
  const datasets: Partial<DatasetDoc>[] = [...chosen].map((id, i) => {
    const title = extraTitle ?? pick(rnd, TITLES);
    const r = rnd();
    return {
      id,
      table: `${pick(rnd, TABLES)}${i}`,
      ...(title ? { title } : {}),
      ...(rnd() < 0.4 ? { description: pick(rnd, ['Stars, galaxies and QSOs', 'ALL-SKY survey', 'deep_field 50%']) } : {}),
      columns: [
        { name: 'ra', datatype: 'double', ucd: pick(rnd, UCDS) },
        { name: 'dec', datatype: 'double', ...(rnd() < 0.8 ? { ucd: pick(rnd, UCDS) } : {}) },
      ],
      access: r < 0.6 ? { public: true } : r < 0.8 ? { public: false, groups: ['alpha'] } : { public: false, groups: ['beta', 'gamma'] },
    };
  });
  return documentFor(site, datasets);
}

const TEXTS = ['', 'gaia', 'GAIA', 'source', 'SRC', '%', '_', '\\', 'é', 'café', 'obj', 'dr3.', 'table', 'nothing-here', 'e', 'lite', 'ALL-sky', '50%'];
const UCD_SEARCHES = ['', 'pos', 'pos.eq', 'POS.EQ.RA', 'meta', 'meta.main', 'phot.mag', 'em', 'em.ir', 'x', 'pos.', 'src.class', 'po%', 'meta_main'];
const VISIBILITIES: ReplicaVisibility[] = ['all', [], ['alpha'], ['beta', 'zeta'], ['gamma', 'alpha']];
const PAGES = [{ limit: 50, offset: 0 }, { limit: 3, offset: 0 }, { limit: 2, offset: 2 }, { limit: 5, offset: 7 }, { limit: 0, offset: 0 }, { limit: 10, offset: 100 }];

describe(`the in-memory discovery catalogue answers as the SQL search does (${backend})`, () => {
  let broker: TestBroker;
  const sites = ['alpha-site', 'beta', 'c1', 'c_2', 'delta', 'eps'].map((s) => s.replace('_', '-'));
  const put = async (id: string, doc: unknown) => {
    const res = await fetch(`${broker.url}/sites/${id}/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
    expect(res.status, await res.text()).toBe(200);
  };

  /** Compare `rounds` random searches; returns how many the view answered itself. */
  async function compare(rnd: () => number, rounds: number): Promise<number> {
    let found = 0;
    const { catalogue, pool } = broker.app.services;
    expect(catalogue.version).toBe(await registryVersion(pool));
    let answered = 0;
    for (let k = 0; k < rounds; k++) {
      const page = pick(rnd, PAGES);
      const search: CatalogueSearch = {
        text: pick(rnd, TEXTS) || undefined,
        ucd: rnd() < 0.5 ? pick(rnd, UCD_SEARCHES) || undefined : undefined,
        site: rnd() < 0.3 ? pick(rnd, [...sites, 'nowhere']) : undefined,
        visibility: pick(rnd, VISIBILITIES),
        ...page,
      };
      if (rnd() < 0.3) search.ids = new Set(IDS.filter(() => rnd() < 0.5));
      const fromView = catalogue.search(search);
      const fromSql = await searchDatasets(pool, { ...search, ids: search.ids && [...search.ids] });
      if (fromView === undefined) continue;
      answered++;
      if (fromSql.length > 0) found++;
      expect(fromView, JSON.stringify({ ...search, ids: search.ids && [...search.ids] })).toEqual(fromSql);
    }
    // Not a comparison of empty pages: a good share of the searches find something.
    expect(found).toBeGreaterThan(answered / 5);
    return answered;
  }

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    const rnd = seededRandom(20261205);
    for (const s of sites) await put(s, siteDoc(s, rnd));
  });
  afterAll(() => broker?.close());

  it('gives the same page as SQL for text, UCD, site, visibility, id sets, limits and offsets', async () => {
    const answered = await compare(seededRandom(1), 400);
    // Only UCD searches holding LIKE wildcards are left to SQL here.
    expect(answered).toBeGreaterThan(300);
  });

  it('follows republishes site by site: datasets dropped, moved, renamed and restricted', async () => {
    const rnd = seededRandom(2);
    for (const s of ['beta', 'delta']) await put(s, siteDoc(s, rnd));
    await put('eps', documentFor('eps', []));
    await put('zeta', siteDoc('zeta', rnd));
    expect(await compare(seededRandom(3), 300)).toBeGreaterThan(200);
  });

  it('leaves to SQL only what depends on the database locale, and still agrees', async () => {
    // U+212A KELVIN SIGN folds to "k" under a Unicode locale and not under C.
    await put('c1', siteDoc('c1', seededRandom(4), 'Kelvin \u212a scale'));
    const { catalogue, pool } = broker.app.services;
    expect(catalogue.search({ text: 'kelvin', visibility: 'all', limit: 50, offset: 0 })).toBeUndefined();
    const plain = catalogue.search({ text: 'scale', visibility: 'all', limit: 50, offset: 0 });
    expect(plain).toEqual(await searchDatasets(pool, { text: 'scale', limit: 50, offset: 0 }));
    expect(plain!.length).toBeGreaterThan(0);
    await compare(seededRandom(5), 200);
  });

  it('answers GraphQL datasets(filter) with the SQL search page, in C order', async () => {
    const query = 'query($f: DatasetFilter, $l: Int!, $o: Int!) { datasets(filter: $f, limit: $l, offset: $o) { id title description } }';
    for (const [f, l, o] of [[{ text: 'gaia' }, 50, 0], [{ ucd: 'pos.eq' }, 4, 1], [{ site: 'beta', text: '_' }, 50, 0], [null, 5, 3]] as const) {
      const { data, errors } = await broker.graphql<{ datasets: unknown[] }>(query, { f, l, o });
      expect(errors).toBeUndefined();
      const sql = await searchDatasets(broker.app.services.pool, { text: f?.text, ucd: f?.ucd, site: f?.site, visibility: [], limit: l, offset: o });
      expect(data!.datasets).toEqual(sql);
    }
  });
});
