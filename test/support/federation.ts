/**
 * A generated federation for planner tests: capability documents from a fixed seed with every
 * case a plan meets (unknown, empty, whole-sky, patchy and finer-than-order-12 coverage, private
 * replicas, non-TAP services, row limits, unknown sizes, pools and images, sites down or
 * degraded), one dataset held by every site (so it gets a sky index of its own), and requests
 * over them (cones, MOC regions, no region; QUERY and CONTAINER; callers in groups or not).
 */
import type { PlanOptions } from '../../broker/planner/plan.js';
import type { Caller, PlanRequest } from '../../broker/planner/types.js';
import { SMoc } from '../../registry/coverage/moc.js';
import type { CapabilityDocument, DatasetDoc } from '../../registry/model/capability.js';
import type { SiteStatus } from '../../registry/store/queries/rows.js';
import { seededRandom } from './random.js';

/** The clock plans over a generated federation use. */
export const FEDERATION_NOW = Date.parse('2026-11-23T13:00:00Z');
/** The dataset every generated site holds. */
export const POPULAR = 'popular.everywhere';
export const FEDERATION_IMAGE = 'images.example.org/astro/base:1.0';

export interface FederationOptions {
  sites: number;
  datasets: number;
  replicasPerSite: number;
  seed: number;
}

/** One planning call over the federation. */
export interface GeneratedPlan {
  request: PlanRequest;
  caller: Caller;
  options: PlanOptions;
}

export interface GeneratedFederation {
  docs: CapabilityDocument[];
  status: Record<string, SiteStatus>;
  plans: GeneratedPlan[];
}

const datasetId = (d: number) => `survey${Math.floor(d / 10)}.t${d % 10}`;

/** A coverage text of one of the kinds sites publish (undefined: none given). */
function coverage(rnd: () => number): string | undefined {
  const ra = rnd() * 360;
  const dec = (Math.asin(2 * rnd() - 1) * 180) / Math.PI;
  const k = rnd();
  if (k < 0.05) return undefined;
  if (k < 0.1) return '0/0-11';
  if (k < 0.12) return `${Math.floor(rnd() * 8)}/`;
  if (k < 0.72) return SMoc.fromCone(ra, dec, 0.5 + rnd() * 20, 3 + Math.floor(rnd() * 6)).toAscii();
  // Finer than the planner's order 12: widened to it.
  if (k < 0.82) return SMoc.fromCone(ra, dec, 0.05 + rnd() * 0.5, 13 + Math.floor(rnd() * 4)).toAscii();
  if (k < 0.92) {
    const order = 2 + Math.floor(rnd() * 6);
    return SMoc.fromCells(order, Array.from({ length: 1 + Math.floor(rnd() * 30) }, () => Math.floor(rnd() * 12 * 4 ** order))).toAscii();
  }
  // Written by hand: orders repeated, cells of one order split across sections, overlaps between orders.
  const a = Math.floor(rnd() * 40);
  return `3/${a} ${a + 2}-${a + 5} 5/${64 * a + 300} 3/${a + 9} 4/${4 * a + 2}-${4 * a + 9}`;
}

function dataset(d: number, rnd: () => number, services: string[]): DatasetDoc {
  const access = rnd() < 0.1 ? { public: false, groups: rnd() < 0.5 ? ['g1'] : ['g2', 'g3'] } : { public: true };
  const doc: DatasetDoc = { id: d < 0 ? POPULAR : datasetId(d), service: services[Math.floor(rnd() * services.length)], table: d < 0 ? 'pop.table' : `s${d}.tab`, access };
  if (rnd() < 0.9) doc.rows = Math.floor(rnd() * 1e9);
  if (rnd() < 0.9) doc.rowBytes = 16 + Math.floor(rnd() * 500);
  if (rnd() < 0.7) doc.position = { ra: 'ra', dec: 'dec' };
  const c = coverage(rnd);
  if (c !== undefined) doc.coverage = c;
  return doc;
}

function site(i: number, opts: FederationOptions, rnd: () => number): CapabilityDocument {
  const id = `g${String(i).padStart(4, '0')}`;
  const scs = rnd() < 0.15;
  const services = scs ? ['tap', 'tap', 'tap', 'cone'] : ['tap'];
  const held = new Set<number>();
  while (held.size < Math.min(opts.replicasPerSite, opts.datasets)) held.add(Math.floor(rnd() * opts.datasets));
  const maxRec = [undefined, 10_000, 1_000_000, 100_000_000][Math.floor(rnd() * 4)];
  const batch = rnd() < 0.6;
  return {
    schemaVersion: 1,
    site: { id, name: `Generated site ${i}`, platform: 'tap', url: `https://${id}.example.org` },
    services: [
      { id: 'tap', type: 'tap', url: `https://${id}.example.org/tap`, upload: true, async: true, ...(maxRec === undefined ? {} : { maxRec }), auth: ['anonymous'] },
      ...(scs ? [{ id: 'cone', type: 'scs' as const, url: `https://${id}.example.org/scs` }] : []),
    ],
    datasets: [-1, ...held].map((d) => dataset(d, rnd, services)),
    compute: batch ? [{
      id: 'batch', kind: 'batch', cores: 64 + Math.floor(rnd() * 512), memoryGb: 256 + Math.floor(rnd() * 2048), gpus: Math.floor(rnd() * 3),
      freeCores: Math.floor(rnd() * 64), queueWaitS: Math.floor(rnd() * 3600), maxWalltimeS: 86_400,
    }] : [],
    images: batch && rnd() < 0.8 ? [{ ref: FEDERATION_IMAGE, arch: rnd() < 0.9 ? 'amd64' : 'arm64', types: ['headless'] }] : [],
    asOf: new Date(FEDERATION_NOW - rnd() * 5 * 86_400_000).toISOString(),
  };
}

/** A region of one of the kinds callers ask for (undefined: none). */
function region(rnd: () => number): PlanRequest['region'] {
  const k = rnd();
  if (k < 0.1) return undefined;
  if (k < 0.2) return { moc: SMoc.fromCone(rnd() * 360, (Math.asin(2 * rnd() - 1) * 180) / Math.PI, 0.5 + rnd() * 10, 2 + Math.floor(rnd() * 8)).toAscii() };
  const radiusDeg = k < 0.3 ? 10 + rnd() * 40 : k < 0.4 ? 0.001 + rnd() * 0.05 : 0.05 + rnd() * 5;
  return { cone: { ra: rnd() * 360, dec: (Math.asin(2 * rnd() - 1) * 180) / Math.PI, radiusDeg } };
}

/** The federation and plans of `opts` (the same for the same options). */
export function generatedFederation(opts: FederationOptions, planCount: number): GeneratedFederation {
  const rnd = seededRandom(opts.seed);
  const docs = Array.from({ length: opts.sites }, (_, i) => site(i, opts, rnd));
  const status: Record<string, SiteStatus> = {};
  for (const doc of docs) {
    const k = rnd();
    status[doc.site.id] = k < 0.08 ? 'DOWN' : k < 0.16 ? 'DEGRADED' : k < 0.2 ? 'UNKNOWN' : 'UP';
  }
  const plans: GeneratedPlan[] = Array.from({ length: planCount }, () => {
    const n = 1 + Math.floor(rnd() * 3);
    const datasets = Array.from({ length: n }, () => (rnd() < 0.2 ? POPULAR : rnd() < 0.05 ? 'nowhere.at_all' : datasetId(Math.floor(rnd() * opts.datasets))));
    const container = rnd() < 0.5;
    const request: PlanRequest = container
      ? { kind: 'CONTAINER', datasets, region: region(rnd), image: FEDERATION_IMAGE, cores: 1 + Math.floor(rnd() * 32), memoryGb: Math.floor(rnd() * 64), gpus: Math.floor(rnd() * 2) }
      : { kind: 'QUERY', datasets, region: region(rnd) };
    const caller: Caller = { groups: rnd() < 0.3 ? ['g1'] : rnd() < 0.2 ? ['g3'] : [], ...(rnd() < 0.2 ? { site: docs[Math.floor(rnd() * docs.length)].site.id } : {}) };
    return { request, caller, options: { now: FEDERATION_NOW, ...(container && rnd() < 0.3 ? { requireAllLocal: true } : {}) } };
  });
  return { docs, status, plans };
}
