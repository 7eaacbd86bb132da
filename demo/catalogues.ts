/**
 * The demo's two catalogues, generated from a fixed seed with a known truth: a Gaia-like one
 * (source_id, ra, dec, phot_g_mean_mag, parallax) and a Pan-STARRS-like one (objID, raMean,
 * decMean, gMeanPSFMag) over a 10°×10° patch, a small patch across RA 0/360 and a small cap
 * round the north pole. A chosen share of Gaia sources gets a Pan-STARRS counterpart less
 * than 0.9 × radius away (some across HEALPix cell edges, across RA 0/360 and within 0.01° of
 * the pole). Every other Gaia–Pan-STARRS pair is kept at least (1 + GUARD) × radius apart by
 * rejection, so the planted pairs are exactly the pairs within the radius: recall and
 * precision of a cross-match are well defined, and the same for BEST and ALL.
 */
import { nestIndex, vecToCell } from '../registry/coverage/healpix.js';
import { cellAt, edgePair } from './edges.js';
import { SkyGrid } from './grid.js';
import { seededRandom, type Random } from './random.js';
import { normalizeRa, offsetPosition, pointInBox, separationDeg, unitVector, type SkyBox } from './sky.js';
import type { CentreTable } from './table.js';

/** Non-planted pairs are at least (1 + GUARD) × radius apart, so a matcher's rounding at the radius cannot matter. */
export const GUARD = 0.1;

/** Planted pairs are closer than this share of the radius. */
export const PLANTED_SHARE = 0.9;

/** The 10°×10° main patch (round the cone 180, 0 of the quick start). */
export const MAIN_PATCH: SkyBox = { raMin: 175, raMax: 185, decMin: -5, decMax: 5 };
/** The small patch across RA 0/360. */
export const WRAP_PATCH: SkyBox = { raMin: 359, raMax: 1, decMin: -1, decMax: 1 };
/** The small cap round the north pole (dec ≥ 89.5). */
export const POLE_PATCH: SkyBox = { raMin: 0, raMax: 360, decMin: 89.5, decMax: 90 };

/** How big and how matched the catalogues are; every field has a default. */
export interface CatalogueOptions {
  /** Seed of the generator (default 20261123): the same seed gives the same catalogues, byte for byte. */
  seed?: number;
  /** Match radius the truth is exact for, in arcseconds (default 1). */
  radiusArcsec?: number;
  /** Gaia-like rows in the main patch (default 200,000). */
  gaiaRows?: number;
  /** Pan-STARRS-like rows in the main patch (default 240,000; at least the planted pairs). */
  ps1Rows?: number;
  /** Share of Gaia sources given a planted counterpart (default 0.5). */
  pairShare?: number;
  /** Gaia-like rows in each small patch (RA wrap, pole); Pan-STARRS gets 1.2 times as many (default 2,000). */
  smallPatchRows?: number;
  /** Planted pairs straddling RA 0/360, and as many within 0.01° of the pole (default 20 each). */
  specialPairs?: number;
  /** HEALPix orders whose cell edges get planted pairs (default 1 to 12). */
  edgeOrders?: number[];
  /** Pairs planted across edges of each of those orders (default 6). */
  edgePairsPerOrder?: number;
  /** Table names as the two centres spell them. */
  gaiaTable?: string;
  ps1Table?: string;
}

/** Where a planted pair was put. */
export type PairKind = 'patch' | 'edge' | 'wrap' | 'pole';

/** One planted pair: the Gaia source, its Pan-STARRS counterpart, their positions and separation. */
export interface TruePair {
  sourceId: bigint;
  objId: bigint;
  sepArcsec: number;
  kind: PairKind;
  /** For an edge pair: the HEALPix order whose cell edge it straddles. */
  order?: number;
  gaiaRa: number;
  gaiaDec: number;
  ps1Ra: number;
  ps1Dec: number;
}

/** The generated catalogues and their truth. */
export interface DemoCatalogues {
  options: Required<CatalogueOptions>;
  gaia: CentreTable;
  ps1: CentreTable;
  /** Every pair closer than the radius, and no other. */
  truth: TruePair[];
}

const DEFAULTS: Required<CatalogueOptions> = {
  seed: 20261123,
  radiusArcsec: 1,
  gaiaRows: 200_000,
  ps1Rows: 240_000,
  pairShare: 0.5,
  smallPatchRows: 2_000,
  specialPairs: 20,
  edgeOrders: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
  edgePairsPerOrder: 6,
  gaiaTable: 'gaiadr3.gaia_source',
  ps1Table: 'dbo.MeanObject',
};

const MAX_TRIES = 10_000;
const ARCSEC = 1 / 3600;

interface Position {
  ra: number;
  dec: number;
}

/** Rows as they are generated, before they become typed columns. */
class Builder {
  readonly gaia: SkyGrid;
  readonly ps1: SkyGrid;
  readonly gaiaIds: bigint[] = [];
  readonly gaiaMag: number[] = [];
  readonly parallax: number[] = [];
  readonly ps1Ids: bigint[] = [];
  readonly ps1Mag: number[] = [];
  readonly truth: TruePair[] = [];
  private readonly perCell = new Map<number, number>();
  private readonly objIds = new Set<bigint>();
  private readonly keepOut: number;
  readonly maxSep: number;

  constructor(private readonly random: Random, radiusDeg: number) {
    this.keepOut = radiusDeg * (1 + GUARD);
    this.maxSep = radiusDeg * PLANTED_SHARE;
    this.gaia = new SkyGrid(this.keepOut);
    this.ps1 = new SkyGrid(this.keepOut);
  }

  /** Plants a pair unless either member would come within the keep-out radius of another source. */
  tryPair(g: Position, p: Position, kind: PairKind, order?: number): boolean {
    const sep = separationDeg(g.ra, g.dec, p.ra, p.dec);
    if (!(sep < this.maxSep)) return false;
    if (this.ps1.within(g.ra, g.dec, this.keepOut).length > 0 || this.gaia.within(p.ra, p.dec, this.keepOut).length > 0) return false;
    const gMag = this.addGaia(g);
    const objId = this.addPs1(p, gMag + 0.35 + (this.random() - 0.5) * 0.2);
    const pair: TruePair = { sourceId: this.gaiaIds[this.gaiaIds.length - 1], objId, sepArcsec: sep * 3600, kind, gaiaRa: g.ra, gaiaDec: g.dec, ps1Ra: p.ra, ps1Dec: p.dec };
    if (order !== undefined) pair.order = order;
    this.truth.push(pair);
    return true;
  }

  /** Adds an unmatched Gaia source unless a Pan-STARRS source is within the keep-out radius. */
  tryGaia(g: Position): boolean {
    if (this.ps1.within(g.ra, g.dec, this.keepOut).length > 0) return false;
    this.addGaia(g);
    return true;
  }

  /** Adds an unmatched Pan-STARRS source unless a Gaia source is within the keep-out radius. */
  tryPs1(p: Position): boolean {
    if (this.gaia.within(p.ra, p.dec, this.keepOut).length > 0) return false;
    this.addPs1(p, 14 + this.random() * 9);
    return true;
  }

  private addGaia(g: Position): number {
    this.gaia.add(g.ra, g.dec);
    // Gaia's own scheme: the HEALPix level-12 NESTED index times 2^35, plus a running number in that cell.
    const { f, x, y } = vecToCell(12, unitVector(g.ra, g.dec));
    const cell = nestIndex(12, f, x, y);
    const n = this.perCell.get(cell) ?? 0;
    this.perCell.set(cell, n + 1);
    this.gaiaIds.push(BigInt(cell) * 34_359_738_368n + BigInt(n + 1));
    const mag = 21 - 9 * this.random() ** 2;
    this.gaiaMag.push(mag);
    this.parallax.push(-Math.log(1 - this.random()) * 0.8);
    return mag;
  }

  private addPs1(p: Position, mag: number): bigint {
    this.ps1.add(p.ra, p.dec);
    this.ps1Mag.push(mag);
    // Pan-STARRS' scheme: zone of 30 arcsec in dec, then RA in micro-degrees, then the place in the zone.
    const zh = 0.008333;
    const zone = Math.floor((p.dec + 90) / zh);
    const resid = Math.floor((((p.dec + 90) / zh) - zone) * 10_000);
    let id = (BigInt(zone) * 10_000_000_000n + BigInt(Math.floor(p.ra * 1_000_000))) * 10_000n + BigInt(Math.min(resid, 9_999));
    while (this.objIds.has(id)) id += 1n;
    this.objIds.add(id);
    this.ps1Ids.push(id);
    return id;
  }
}

function place(what: string, attempt: () => boolean): void {
  for (let i = 0; i < MAX_TRIES; i++) if (attempt()) return;
  throw new Error(`demo catalogues: could not place ${what} after ${MAX_TRIES} tries: the catalogues are too dense for this radius`);
}

/** Fills one patch: `pairs` planted pairs (special ones first), then unmatched sources up to the row counts. */
function fillPatch(b: Builder, random: Random, box: SkyBox, gaiaRows: number, ps1Rows: number, pairs: number, special: () => number): void {
  const planted = special();
  for (let i = planted; i < pairs; i++) {
    place('a pair', () => {
      const g = pointInBox(box, random);
      return b.tryPair(g, offsetPosition(g.ra, g.dec, b.maxSep * random(), random() * 360), 'patch');
    });
  }
  for (let i = pairs; i < gaiaRows; i++) place('a Gaia source', () => b.tryGaia(pointInBox(box, random)));
  for (let i = pairs; i < ps1Rows; i++) place('a Pan-STARRS source', () => b.tryPs1(pointInBox(box, random)));
}

/** Generates both catalogues and the truth; the same options give the same result. */
export function generateCatalogues(options: CatalogueOptions = {}): DemoCatalogues {
  const o: Required<CatalogueOptions> = { ...DEFAULTS, ...options };
  if (!(o.radiusArcsec > 0)) throw new Error('demo catalogues: radiusArcsec must be > 0');
  const random = seededRandom(o.seed);
  const radiusDeg = o.radiusArcsec * ARCSEC;
  const b = new Builder(random, radiusDeg);
  const pairsOf = (rows: number) => Math.round(rows * o.pairShare);
  const check = (gaiaRows: number, ps1Rows: number, pairs: number, special: number) => {
    if (ps1Rows < pairs || gaiaRows < pairs || pairs < special) throw new Error(`demo catalogues: ${gaiaRows} Gaia and ${ps1Rows} Pan-STARRS rows cannot hold ${Math.max(pairs, special)} pairs`);
  };

  // Main patch: pairs across HEALPix cell edges of every asked order first.
  const mainPairs = pairsOf(o.gaiaRows);
  check(o.gaiaRows, o.ps1Rows, mainPairs, o.edgeOrders.length * o.edgePairsPerOrder);
  fillPatch(b, random, MAIN_PATCH, o.gaiaRows, o.ps1Rows, mainPairs, () => {
    let n = 0;
    for (const order of o.edgeOrders) {
      for (let i = 0; i < o.edgePairsPerOrder; i++) {
        place(`a pair across an order-${order} cell edge`, () => {
          const pair = edgePair(order, MAIN_PATCH, b.maxSep * (0.2 + 0.75 * random()), random, () => pointInBox(MAIN_PATCH, random));
          if (!pair) throw new Error(`demo catalogues: no order-${order} HEALPix cell edge crosses the main patch`);
          return cellAt(order, pair.a.ra, pair.a.dec) !== cellAt(order, pair.b.ra, pair.b.dec) && b.tryPair(pair.a, pair.b, 'edge', order);
        });
        n++;
      }
    }
    return n;
  });

  const small = o.smallPatchRows;
  const smallPs1 = Math.round(small * 1.2);
  const smallPairs = Math.max(pairsOf(small), o.specialPairs);
  check(small, smallPs1, smallPairs, o.specialPairs);

  // Across RA 0/360: the Gaia source just below 360, its counterpart east of it, just above 0.
  fillPatch(b, random, WRAP_PATCH, small, smallPs1, smallPairs, () => {
    for (let i = 0; i < o.specialPairs; i++) {
      place('a pair across RA 0/360', () => {
        const dec = WRAP_PATCH.decMin + 0.1 + random() * (WRAP_PATCH.decMax - WRAP_PATCH.decMin - 0.2);
        const sep = b.maxSep * (0.5 + 0.45 * random());
        const g = { ra: normalizeRa(-(sep * random() * 0.9) / Math.cos((dec * Math.PI) / 180)), dec };
        const p = offsetPosition(g.ra, g.dec, sep, 70 + random() * 40);
        const crosses = g.ra > 359 && p.ra < 1;
        return crosses && (random() < 0.5 ? b.tryPair(g, p, 'wrap') : b.tryPair(p, g, 'wrap'));
      });
    }
    return o.specialPairs;
  });

  // Within 0.01° of the pole; the first straddles it (its members' RAs differ by 180°): only
  // one pair can, as two pairs that close to the pole would be within the keep-out of each other.
  fillPatch(b, random, POLE_PATCH, small, smallPs1, smallPairs, () => {
    for (let i = 0; i < o.specialPairs; i++) {
      place('a pair at the pole', () => {
        const ra = random() * 360;
        if (i === 0) {
          const toPole = b.maxSep * (0.1 + 0.35 * random());
          const g = { ra, dec: 90 - toPole };
          return b.tryPair(g, offsetPosition(g.ra, g.dec, toPole + b.maxSep * (0.1 + 0.4 * random()), 0), 'pole');
        }
        const g = { ra, dec: 90 - 0.01 * (0.05 + 0.95 * random()) };
        return b.tryPair(g, offsetPosition(g.ra, g.dec, b.maxSep * random(), random() * 360), 'pole');
      });
    }
    return o.specialPairs;
  });

  return { options: o, ...tables(b, o), truth: b.truth };
}

function tables(b: Builder, o: Required<CatalogueOptions>): { gaia: CentreTable; ps1: CentreTable } {
  const gaia: CentreTable = {
    name: o.gaiaTable,
    description: `Gaia-like synthetic sources (seed ${o.seed}): a 10°×10° patch round (180, 0), a patch across RA 0/360 and a cap round the north pole`,
    columns: [
      { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main', description: 'Source identifier (HEALPix level-12 index × 2^35 + running number)', values: BigInt64Array.from(b.gaiaIds) },
      { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main', description: 'Right ascension (ICRS)', values: Float64Array.from(b.gaia.ra) },
      { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main', description: 'Declination (ICRS)', values: Float64Array.from(b.gaia.dec) },
      { name: 'phot_g_mean_mag', datatype: 'double', unit: 'mag', ucd: 'phot.mag;em.opt', description: 'G-band mean magnitude', values: Float64Array.from(b.gaiaMag) },
      { name: 'parallax', datatype: 'double', unit: 'mas', ucd: 'pos.parallax', description: 'Parallax', values: Float64Array.from(b.parallax) },
    ],
  };
  const ps1: CentreTable = {
    name: o.ps1Table,
    description: `Pan-STARRS-like synthetic mean objects (seed ${o.seed}), over the same sky as the Gaia-like catalogue`,
    columns: [
      { name: 'objID', datatype: 'long', ucd: 'meta.id;meta.main', description: 'Object identifier (zone, RA, place in zone)', values: BigInt64Array.from(b.ps1Ids) },
      { name: 'raMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main', description: 'Mean right ascension (ICRS)', values: Float64Array.from(b.ps1.ra) },
      { name: 'decMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main', description: 'Mean declination (ICRS)', values: Float64Array.from(b.ps1.dec) },
      { name: 'gMeanPSFMag', datatype: 'double', unit: 'mag', ucd: 'phot.mag;em.opt.B', description: 'Mean PSF magnitude in g', values: Float64Array.from(b.ps1Mag) },
    ],
  };
  return { gaia, ps1 };
}

/** The planted pairs whose Gaia source lies within `radiusDeg` of (ra, dec): the truth for a cone. */
export function truthInCone(truth: readonly TruePair[], ra: number, dec: number, radiusDeg: number): TruePair[] {
  return truth.filter((p) => separationDeg(ra, dec, p.gaiaRa, p.gaiaDec) <= radiusDeg);
}

/** The truth as (source_id, objID) pairs, the form a result is compared with. */
export function truthPairs(truth: readonly TruePair[]): [bigint, bigint][] {
  return truth.map((p) => [p.sourceId, p.objId]);
}
