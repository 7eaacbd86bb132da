/**
 * Token verification on the request path: the same GraphQL discovery request sent anonymously
 * and with a bearer token from a real OpenID provider (test/support/oidc-provider.ts), against
 * one broker, interleaved, three repetitions each, with the response cache on and off. The
 * token's signature is checked once; later requests find it in the verifier's cache.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../broker/app.js';
import { parseConfig } from '../broker/config/load.js';
import { openDatabase } from '../broker/db/database.js';
import { migrate } from '../registry/store/migrate.js';
import { BROKER_AUDIENCE, startOidcProvider } from '../test/support/oidc-provider.js';
import { seededRandom as random } from '../test/support/random.js';
import { REGION_QUERY, siteDocument } from './registry-graphql.js';
import { load, type LoadResult } from './support.js';

export interface IdentityBenchResult {
  /** requests/s per variant and repetition. */
  runs: Record<'cachedAnonymous' | 'cachedBearer' | 'uncachedAnonymous' | 'uncachedBearer', number[]>;
  /** bearer ÷ anonymous, median of the repetitions' ratios. */
  cachedRatio: number;
  uncachedRatio: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Populate `sites` bench sites, then time anonymous and bearer discovery in turn. */
export async function benchIdentity(opts: { sites: number; seconds: number; repetitions?: number }): Promise<IdentityBenchResult> {
  const idp = await startOidcProvider();
  // Always a fresh embedded database: what is measured is the request path before any SQL.
  const database = await openDatabase({ dataDir: await mkdtemp(join(tmpdir(), 'constellation-bench-')) }, { max: 20 });
  try {
    await migrate(database.pool);
    const yaml = `federation: { name: bench }\nregistration: { open: true }\nidentity: { issuer: "${idp.issuer}", audience: "${BROKER_AUDIENCE}" }\nsites: []\n`;
    const cached = await buildApp(parseConfig(yaml, { LOG_LEVEL: 'error' }), { database, prepared: true, logger: false });
    const uncached = await buildApp(parseConfig(yaml, { LOG_LEVEL: 'error', CONSTELLATION_CACHE_MB: '0' }), { database, prepared: true, logger: false });
    const rnd = random(20261205);
    for (let i = 0; i < opts.sites; i++) await cached.services.publisher.publish(`site-${String(i).padStart(4, '0')}`, siteDocument(i, { replicasPerSite: 20, datasets: 500 }, rnd), 'publish');
    await uncached.services.planner.refresh(database.pool);
    const token = await idp.tokenFor('alice');
    const bearer = { authorization: `Bearer ${token}` };
    const body = JSON.stringify({ query: REGION_QUERY, variables: { ra: 180, dec: 20 } });
    const urls = { cached: `${await cached.listen({ host: '127.0.0.1', port: 0 })}/graphql`, uncached: `${await uncached.listen({ host: '127.0.0.1', port: 0 })}/graphql` };
    const check = async (url: string, headers: Record<string, string>) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      if (res.status !== 200) throw new Error(`bench request answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    };
    await check(urls.uncached, bearer);
    await check(urls.cached, {});
    const runs: IdentityBenchResult['runs'] = { cachedAnonymous: [], cachedBearer: [], uncachedAnonymous: [], uncachedBearer: [] };
    const run = async (name: keyof IdentityBenchResult['runs'], url: string, headers: Record<string, string>) => {
      const r: LoadResult = await load(url, body, opts.seconds, 10, headers);
      if (r.errors || r.non2xx) throw new Error(`${name}: ${r.errors} errors, ${r.non2xx} non-2xx`);
      runs[name].push(r.requestsPerSecond);
      process.stderr.write(`  [identity] ${name} ${r.requestsPerSecond.toFixed(0)} req/s\n`);
    };
    for (let i = 0; i < (opts.repetitions ?? 3); i++) {
      // Alternate which goes first, so drift in the machine's speed does not favour one side.
      const pairs: [keyof IdentityBenchResult['runs'], string, Record<string, string>][] = [
        ['cachedAnonymous', urls.cached, {}], ['cachedBearer', urls.cached, bearer], ['uncachedAnonymous', urls.uncached, {}], ['uncachedBearer', urls.uncached, bearer],
      ];
      for (const [name, url, headers] of i % 2 === 0 ? pairs : [pairs[1], pairs[0], pairs[3], pairs[2]]) await run(name, url, headers);
    }
    await cached.close();
    await uncached.close();
    const ratios = (a: number[], b: number[]) => median(b.map((x, i) => x / a[i]));
    return { runs, cachedRatio: ratios(runs.cachedAnonymous, runs.cachedBearer), uncachedRatio: ratios(runs.uncachedAnonymous, runs.uncachedBearer) };
  } finally {
    await database.close();
    await idp.close();
  }
}

/** Print the result as a table of req/s and the ratios. */
export function printIdentity(r: IdentityBenchResult): void {
  console.log('Token verification on the request path (discovery, bearer token vs anonymous; target >= 0.9x)');
  for (const [name, xs] of Object.entries(r.runs)) console.log(`  ${name.padEnd(18)} ${xs.map((x) => x.toFixed(0).padStart(7)).join(' ')} req/s`);
  console.log(`  bearer / anonymous: cached ${r.cachedRatio.toFixed(2)}x, uncached ${r.uncachedRatio.toFixed(2)}x (median of per-repetition ratios)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printIdentity(await benchIdentity({ sites: Number(process.env.SITES ?? 50), seconds: Number(process.env.SECONDS ?? 5) }));
}
