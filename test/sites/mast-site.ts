/**
 * A simulated STScI MAST VO-TAP: collections gaiadr3 (dbo.gaia_source) and mast_catalogs
 * (lower-case ps1_dr2 schema) at /vo-tap/api/v0.1/{collection}, each a TAP service capped at
 * 100,000 rows, and optionally the legacy PS1 DR2 service (dbo.MeanObjectView, CamelCase).
 */
import { SimSite } from './sim-site.js';
import { mountTapService, type SimTable, type TapService } from './tap-service.js';

/** Tables per collection. */
export const MAST_COLLECTIONS: Record<string, SimTable[]> = {
  gaiadr3: [
    {
      name: 'dbo.gaia_source',
      columns: [
        { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
        { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
        { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
        { name: 'parallax', datatype: 'double', unit: 'mas' },
        { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag' },
      ],
      rows: 300,
      position: { ra: 'ra', dec: 'dec' },
      region: { raMin: 40, raMax: 50, decMin: 0, decMax: 10 },
    },
  ],
  mast_catalogs: [
    {
      name: 'ps1_dr2.forced_mean_object',
      columns: [
        { name: 'objid', datatype: 'long', ucd: 'meta.id;meta.main' },
        { name: 'ramean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
        { name: 'decmean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
        { name: 'ifpsfmag', datatype: 'float', unit: 'mag' },
        { name: 'ifkronmag', datatype: 'float', unit: 'mag' },
        { name: 'iflags', datatype: 'int' },
      ],
      rows: 300,
      position: { ra: 'ramean', dec: 'decmean' },
      region: { raMin: 40, raMax: 50, decMin: 0, decMax: 10 },
    },
    {
      name: 'ps1_dr2.stack_object',
      columns: [
        { name: 'objid', datatype: 'long', ucd: 'meta.id;meta.main' },
        { name: 'primarydetection', datatype: 'short' },
      ],
      rows: 50,
    },
  ],
};

/** The legacy PS1 DR2 service's view. */
export const PS1_LEGACY_TABLE: SimTable = {
  name: 'dbo.MeanObjectView',
  columns: [
    { name: 'objID', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'raMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'decMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'nDetections', datatype: 'short' },
    { name: 'gMeanPSFMag', datatype: 'float', unit: 'mag' },
  ],
  rows: 200,
  position: { ra: 'raMean', dec: 'decMean' },
  region: { raMin: 40, raMax: 50, decMin: 0, decMax: 10 },
};

/** A running simulated MAST. */
export interface MastSite {
  site: SimSite;
  /** The site URL as federation.yaml gives it ({origin}/vo-tap/api/v0.1). */
  url: string;
  /** The legacy PS1 DR2 TAP base, when started with it. */
  legacyUrl?: string;
  services: TapService[];
  close(): Promise<void>;
}

/** Starts a simulated MAST on 127.0.0.1. */
export async function startMastSite(options: { legacy?: boolean } = {}): Promise<MastSite> {
  const site = new SimSite();
  const services = Object.entries(MAST_COLLECTIONS).map(([c, tables]) =>
    mountTapService(site, { path: `/vo-tap/api/v0.1/${c}`, tables, maxRec: 100_000, hardMaxRec: 100_000, asyncDelayMs: 20 }),
  );
  if (options.legacy) services.push(mountTapService(site, { path: '/PS1DR2/tapservice.aspx', tables: [PS1_LEGACY_TABLE], tablesDetail: 'full' }));
  await site.start();
  return {
    site,
    url: `${site.url}/vo-tap/api/v0.1`,
    legacyUrl: options.legacy ? `${site.url}/PS1DR2/tapservice.aspx` : undefined,
    services,
    async close() {
      for (const s of services) await s.close();
      await site.close();
    },
  };
}
