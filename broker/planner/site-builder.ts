/**
 * Building a PlannerSite from its rows: replicas become columns ordered by dataset id, their
 * strings and access rules shared through one Interner per build (a million replicas name a few
 * thousand datasets, tables and rules), their coverage read into one PackedCoverage.
 */
import { PackedCoverageBuilder, SharedCoverages } from '../../registry/coverage/packed-builder.js';
import type { ComputeRow, ImageRow, ServiceRow, SiteRow } from '../../registry/store/queries/rows.js';
import { PlannerSite, type ReplicaAccess, type ReplicaPosition } from './site.js';

/** Shared strings, access rules, positions and long MOC texts of one build. */
export class Interner {
  private readonly strings = new Map<string, string>();
  private readonly rules = new Map<string, ReplicaAccess>();
  private readonly places = new Map<string, ReplicaPosition>();
  readonly coverages = new SharedCoverages();

  /** The one copy of `s` this build keeps. */
  string(s: string): string {
    const had = this.strings.get(s);
    if (had !== undefined) return had;
    this.strings.set(s, s);
    return s;
  }

  /** A frozen access rule equal to `a`. */
  access(a: ReplicaAccess): ReplicaAccess {
    const key = a.public ? '' : `\u0000${a.groups.join('\u0000')}`;
    let rule = this.rules.get(key);
    if (rule === undefined) {
      rule = Object.freeze({ public: a.public, groups: Object.freeze(a.groups.map((g) => this.string(g))) as string[] });
      this.rules.set(key, rule);
    }
    return rule;
  }

  /** A frozen position equal to `p`. */
  position(p: ReplicaPosition | null): ReplicaPosition | null {
    if (p === null) return null;
    const key = `${p.ra}\u0000${p.dec}`;
    let place = this.places.get(key);
    if (place === undefined) {
      place = Object.freeze({ ra: p.ra, dec: p.dec });
      this.places.set(key, place);
    }
    return place;
  }
}

/** One replica as a site is built from it (a registry row, or a document's dataset). */
export interface ReplicaInput {
  id: number;
  datasetId: string;
  serviceId: string;
  table: string;
  rows: number | null;
  rowBytes: number | null;
  position: ReplicaPosition | null;
  access: ReplicaAccess;
}

/** The site's own rows, besides its replicas. */
export interface SiteParts {
  site: SiteRow;
  preference: number;
  services: readonly ServiceRow[];
  pools: readonly ComputeRow[];
  images: readonly ImageRow[];
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Positions of the replicas to keep, ordered by dataset id: of two replicas of one dataset the
 * later, as a map keyed by dataset would keep. Rows read from the database mostly come ordered
 * already (though by the database's collation), so the sort is skipped when it has nothing to do.
 */
function byDataset(replicas: readonly ReplicaInput[]): number[] {
  const order = replicas.map((_, k) => k);
  let sorted = true;
  for (let k = 1; k < replicas.length && sorted; k++) sorted = replicas[k - 1].datasetId < replicas[k].datasetId;
  if (sorted) return order;
  // Stable, so the later of two equal dataset ids stays later.
  order.sort((a, b) => cmp(replicas[a].datasetId, replicas[b].datasetId));
  return order.filter((k, n) => n + 1 === order.length || replicas[order[n + 1]].datasetId !== replicas[k].datasetId);
}

/**
 * Build a site from its parts and its replicas, each with its MOC text (null: unknown). Of two
 * replicas of one dataset the later is kept. `previous`, the site as it was, lends the coverage
 * of every replica whose MOC text is unchanged, so a republished site costs what changed in it.
 * Throws what parseMocAscii throws on a malformed MOC.
 */
export function buildSite<R extends ReplicaInput>(parts: SiteParts, replicas: readonly R[], coverageOf: (r: R) => string | null, interner: Interner, previous?: PlannerSite): PlannerSite {
  const order = byDataset(replicas);
  const numbers = new Float64Array(3 * order.length);
  const datasets: string[] = [];
  const serviceIds: string[] = [];
  const tables: string[] = [];
  const positions: (ReplicaPosition | null)[] = [];
  const access: ReplicaAccess[] = [];
  const coverage = new PackedCoverageBuilder(interner.coverages);
  for (let i = 0; i < order.length; i++) {
    const r = replicas[order[i]];
    numbers[3 * i] = r.id;
    numbers[3 * i + 1] = r.rows ?? NaN;
    numbers[3 * i + 2] = r.rowBytes ?? NaN;
    datasets.push(interner.string(r.datasetId));
    serviceIds.push(interner.string(r.serviceId));
    tables.push(interner.string(r.table));
    positions.push(interner.position(r.position));
    access.push(interner.access(r.access));
    coverage.addText(coverageOf(r), previous?.columns.coverage, previous === undefined ? -1 : previous.find(r.datasetId));
  }
  return new PlannerSite(
    parts.site,
    parts.preference,
    // Ordered by id (images by ref) whatever order they came in, so a site built from its
    // document is the site built from its rows (which the database orders by its own collation).
    new Map([...parts.services].sort((a, b) => cmp(a.id, b.id)).map((s) => [s.id, s])),
    Object.freeze([...parts.pools].sort((a, b) => cmp(a.id, b.id))),
    Object.freeze([...parts.images].sort((a, b) => cmp(a.ref, b.ref))),
    Object.freeze({ datasets, numbers, serviceIds, tables, positions, access, coverage: coverage.finish() }),
  );
}
