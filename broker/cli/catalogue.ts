/**
 * What the read commands (`sites`, `datasets`) show, from either source: a broker already
 * running for this federation (asked over HTTP, well under a second) or the database itself.
 */
import type pg from 'pg';
import { ConstellationError } from '../../registry/model/errors.js';
import { replicasByDatasets, searchDatasets } from '../../registry/store/queries/catalogue.js';
import { listSites } from '../../registry/store/queries/sites.js';
import type { Config } from '../config/config.js';

/** One line of `constellation sites`. */
export interface SiteLine {
  id: string;
  name: string;
  platform: string;
  status: string;
  origin: string | null;
  asOf: string | null;
  url: string | null;
}

/** One line of `constellation datasets`: a replica. */
export interface ReplicaLine {
  datasetId: string;
  siteId: string;
  table: string;
  rows: number | null;
  access: { public: boolean; groups: string[] };
}

/** The read side both sources offer. */
export interface Catalogue {
  /** Where the answers come from, for the operator. */
  readonly source: string;
  sites(): Promise<SiteLine[]>;
  replicas(filter: { text?: string; site?: string }): Promise<ReplicaLine[]>;
}

/** How long to wait for a running broker before reading the database instead. */
const PROBE_MS = 1_000;
const PAGE = 1_000;

/** The broker serving this federation at HOST:PORT, if one answers ready; else undefined. */
export async function runningBroker(config: Config): Promise<Catalogue | undefined> {
  const { host, port } = config.server;
  if (port === 0) return undefined;
  // A broker bound to every interface is reached on loopback.
  const name = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const base = `http://${name}:${port}`;
  try {
    const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(PROBE_MS) });
    const body = (await res.json()) as { status?: string; federation?: string };
    if (res.status !== 200 || body.status !== 'ready' || body.federation !== config.federation.name) return undefined;
  } catch {
    return undefined; // Nothing listening, or not a broker of this federation: read the database.
  }
  const graphql = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
    const res = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
    if (body.errors?.length || !body.data) {
      throw new ConstellationError('INTERNAL', `the broker at ${base} answered: ${body.errors?.map((e) => `${e.extensions?.code ?? 'error'}: ${e.message}`).join('; ') ?? `HTTP ${res.status}`}`);
    }
    return body.data;
  };
  return {
    source: `the broker at ${base}`,
    async sites() {
      const data = await graphql<{ sites: (Omit<SiteLine, 'origin'> & { origin: string | null })[] }>('{ sites { id name platform status origin asOf url } }', {});
      return data.sites.map((s) => ({ ...s, origin: s.origin?.toLowerCase() ?? null }));
    },
    async replicas(filter) {
      type Page = { datasets: { id: string; replicas: { site: { id: string }; table: string; rows: number | null; access: ReplicaLine['access'] }[] }[] };
      const out: ReplicaLine[] = [];
      for (let offset = 0; ; offset += PAGE) {
        const { datasets } = await graphql<Page>(
          'query($filter: DatasetFilter, $limit: Int, $offset: Int) { datasets(filter: $filter, limit: $limit, offset: $offset) { id replicas { site { id } table rows access { public groups } } } }',
          { filter: { text: filter.text, site: filter.site }, limit: PAGE, offset },
        );
        for (const d of datasets) for (const r of d.replicas) out.push({ datasetId: d.id, siteId: r.site.id, table: r.table, rows: r.rows, access: r.access });
        if (datasets.length < PAGE) return out;
      }
    },
  };
}

/** The same answers read straight from the database. */
export function databaseCatalogue(pool: pg.Pool, source: string): Catalogue {
  return {
    source,
    async sites() {
      return (await listSites(pool)).map((s) => ({ id: s.id, name: s.name, platform: s.platform, status: s.status, origin: s.origin, asOf: s.asOf?.toISOString() ?? null, url: s.url }));
    },
    async replicas(filter) {
      const datasets = await searchDatasets(pool, { text: filter.text, site: filter.site, limit: 100_000, offset: 0 });
      return (await replicasByDatasets(pool, datasets.map((d) => d.id))).map((r) => ({ datasetId: r.datasetId, siteId: r.siteId, table: r.table, rows: r.rows, access: r.access }));
    },
  };
}
