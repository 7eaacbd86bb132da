/**
 * The simulated federation of the fleet harness: `count` TAP sites, each dataset held at three
 * neighbouring sites (so every job has candidates to fail over to), each site drawing faults
 * per request and keeping the ledger of work it was asked to do. The jobs read small tables
 * whose rows are known here, so a result can be checked row for row.
 */
import type { Socket } from 'node:net';
import { injectFaults, type FaultInjector, type FaultRates, type ForcedFault, type RouteClass } from '../sites/fault-injector.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';

/** Rows each table holds (it advertises far more, so a query without TOP runs as an async job). */
export const HELD_ROWS = 200;
/** Rows each table advertises through VOSI. */
export const ADVERTISED_ROWS = 5_000_000;
/** Each dataset is held at this many consecutive sites. */
export const REPLICAS = 3;
/** A synchronous job asks for at most this many rows (TOP). */
export const SYNC_TOP = 50;

/** Fault rates of the harness's default mix (about one request in five faulted while creating work or following it). */
export const DEFAULT_RATES: Partial<Record<RouteClass, FaultRates>> = {
  submit: { '503': 0.04, '429': 0.04, hang: 0.005, reset: 0.02, 'reset-after': 0.02, 'stall-after': 0.005, 'slow-body': 0.03, truncate: 0.02, malformed: 0.02 },
  job: { '503': 0.04, '429': 0.04, hang: 0.005, reset: 0.02, 'reset-after': 0.02, 'stall-after': 0.005, 'slow-body': 0.03, truncate: 0.02, malformed: 0.02 },
  harvest: { '503': 0.03, '429': 0.03, reset: 0.01, 'slow-body': 0.02, truncate: 0.01, malformed: 0.01 },
};

/** The table of dataset `d`. */
export function datasetTable(d: number): SimTable {
  return {
    name: `fleet.d${d}`,
    rows: ADVERTISED_ROWS,
    heldRows: HELD_ROWS,
    position: { ra: 'ra', dec: 'dec' },
    columns: [
      { name: 'id', datatype: 'long', ucd: 'meta.id;meta.main' },
      { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'mag', datatype: 'double', unit: 'mag', ucd: 'phot.mag' },
    ],
  };
}

/** One job the harness submits: its key, its query and the rows its result must hold. */
export interface JobSpec {
  n: number;
  key: string;
  dataset: string;
  mode: 'sync' | 'async';
  adql: string;
  /** The ids the result must hold (a sync job: any SYNC_TOP of them when more match). */
  matching: bigint[];
  expectedRows: number;
}

/** The `n`-th job of run `run` over `datasets` datasets: alternately sync (TOP) and async, a different magnitude cut each. */
export function jobSpec(run: string, n: number, datasets: number): JobSpec {
  const d = n % datasets;
  const mode = Math.floor(n / datasets) % 2 === 0 ? 'sync' : 'async';
  // 10.0 to 20.9: the generated magnitudes are uniform in [10, 21).
  const cut = (100 + ((n * 37) % 110)) / 10;
  const table = datasetTable(d);
  const mag = table.columns.findIndex((c) => c.name === 'mag');
  const matching = simRows(table).filter((r) => Number(r[mag]) < cut).map((r) => BigInt(String(r[0])));
  const columns = 'id, ra, dec, mag';
  const adql = mode === 'sync'
    ? `SELECT TOP ${SYNC_TOP} ${columns} FROM ${table.name} WHERE mag < ${cut.toFixed(1)}`
    : `SELECT ${columns} FROM ${table.name} WHERE mag < ${cut.toFixed(1)}`;
  return { n, key: `${run}-${n}`, dataset: table.name, mode, adql, matching, expectedRows: mode === 'sync' ? Math.min(SYNC_TOP, matching.length) : matching.length };
}

/** One simulated site of the fleet. */
export interface FleetSite {
  id: string;
  site: SimSite;
  tap: TapService;
  faults: FaultInjector;
}

export interface FleetSitesOptions {
  count: number;
  seed: number;
  rates?: Partial<Record<RouteClass, FaultRates>>;
  /** Faults forced at every site. */
  forced?: readonly ForcedFault[];
  /** Who sent a connection (test/support/peer-process.ts over the fleet's live pids). */
  peerOf?: (socket: Socket) => number | undefined;
}

/** Start `count` sites; site i holds datasets i, i−1 and i−2 (mod count). Faults start disabled. */
export async function startFleetSites(options: FleetSitesOptions): Promise<FleetSite[]> {
  const out: FleetSite[] = [];
  try {
    for (let i = 0; i < options.count; i++) {
      const site = new SimSite();
      const tables = Array.from({ length: REPLICAS }, (_, k) => datasetTable((i - k + options.count) % options.count));
      const tap = mountTapService(site, { path: '/tap', tables, asyncDelayMs: 30 });
      const faults = injectFaults(site, { name: `s${i}`, seed: options.seed * 101 + i, rates: options.rates ?? DEFAULT_RATES, peerOf: options.peerOf, forced: options.forced });
      faults.enabled = false;
      await site.start();
      out.push({ id: `s${i}`, site, tap, faults });
      // Boot the site's query engine now, not while a broker waits on it.
      const warm = await fetch(`${site.url}/tap/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: `SELECT TOP 1 * FROM ${tables[0].name}` }) });
      await warm.arrayBuffer();
      if (warm.status !== 200) throw new Error(`site s${i} did not answer its warm-up query: HTTP ${warm.status}`);
    }
  } catch (err) {
    await closeFleetSites(out);
    throw err;
  }
  return out;
}

/** Stop every site (held requests are released first). */
export async function closeFleetSites(sites: readonly FleetSite[]): Promise<void> {
  for (const s of sites) {
    s.faults.enabled = false;
    await s.tap.close();
    await s.site.close();
  }
}

/** The federation.yaml of the fleet: every site harvested on `harvestSchedule`, job timings short enough for a run of minutes. */
export function fleetFederation(sites: readonly FleetSite[], harvestSchedule: string): string {
  return `
federation: { name: fleet-faults }
# A development federation: the harness harvests through the API without an admin's token.
registration: { open: true }
harvest: { concurrency: 2, jitterS: 0, timeoutS: 10, leaseS: 6 }
jobs: { pollIntervalS: 0.5, leaseS: 6, requestTimeoutS: 4, submitTimeoutS: 8 }
sites:
${sites.map((s) => `  - { id: ${s.id}, name: Site ${s.id}, adapter: tap, url: "${s.site.url}/tap", harvest: { schedule: "${harvestSchedule}" } }`).join('\n')}
`;
}
