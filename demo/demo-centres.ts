/**
 * The demo's two simulated centres: one holding the Gaia-like catalogue (as ESA spells it,
 * gaiadr3.gaia_source), one the Pan-STARRS-like one (as MAST spells it, dbo.MeanObject, with
 * mixed-case columns), both generated from one seed with a known truth (catalogues.ts).
 */
import { generateCatalogues, type CatalogueOptions, type DemoCatalogues, type TruePair } from './catalogues.js';
import { startCentre, type Centre, type CentreLimits } from './centre.js';
import { demoCoverageMoc } from './coverage.js';

/** Canonical dataset ids the demo federation maps the two tables onto. */
export const DEMO_DATASETS = { gaia: 'gaia_dr3.gaia_source', ps1: 'ps1_dr2.mean_object' } as const;

/** Site ids of the two centres in the demo federation. */
export const DEMO_SITES = { gaia: 'gaia-centre', ps1: 'ps1-centre' } as const;

/** What to generate and how the centres are set up; every field has a default. */
export interface DemoCentresOptions {
  catalogues?: CatalogueOptions;
  /** Limits of each centre (default: 500,000 rows, 64 MiB uploads). */
  limits?: { gaia?: Partial<CentreLimits>; ps1?: Partial<CentreLimits> };
  /** Fixed ports on 127.0.0.1 (default: any free ones). */
  ports?: { gaia?: number; ps1?: number };
}

/** Two running centres, their catalogues and the truth. */
export interface DemoCentres {
  gaia: Centre;
  ps1: Centre;
  /** TAP base URLs of the two centres. */
  urls: { gaia: string; ps1: string };
  catalogues: DemoCatalogues;
  /** Every Gaia–Pan-STARRS pair within the radius, and no other. */
  truth: TruePair[];
  /** How long generating the catalogues and starting the centres (loading included) took. */
  timings: { generateMs: number; startMs: number };
  /** federation.yaml text naming the two centres as TAP sites, their tables mapped onto DEMO_DATASETS. */
  federationYaml(name?: string): string;
  close(): Promise<void>;
}

/** Generates the catalogues and starts both centres (in parallel); close() stops both. */
export async function startDemoCentres(options: DemoCentresOptions = {}): Promise<DemoCentres> {
  const t0 = performance.now();
  const catalogues = generateCatalogues(options.catalogues);
  const t1 = performance.now();
  const started = await Promise.allSettled([
    startCentre({ name: 'Gaia centre (simulated)', tables: [catalogues.gaia], limits: options.limits?.gaia, port: options.ports?.gaia }),
    startCentre({ name: 'Pan-STARRS centre (simulated)', tables: [catalogues.ps1], limits: options.limits?.ps1, port: options.ports?.ps1 }),
  ]);
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    // Stop whichever did start, so a failed start leaves nothing listening.
    for (const s of started) if (s.status === 'fulfilled') await s.value.close();
    throw failed.reason;
  }
  const [gaia, ps1] = started.map((s) => (s as PromiseFulfilledResult<Centre>).value);
  const t2 = performance.now();
  return {
    gaia,
    ps1,
    urls: { gaia: gaia.url, ps1: ps1.url },
    catalogues,
    truth: catalogues.truth,
    timings: { generateMs: Math.round(t1 - t0), startMs: Math.round(t2 - t1) },
    federationYaml: (name = 'demo') => demoFederationYaml(name, { gaia: gaia.url, ps1: ps1.url }, catalogues),
    async close() {
      await Promise.all([gaia.close(), ps1.close()]);
    },
  };
}

/** A federation of the two centres: generic TAP sites, their local tables mapped onto the canonical ids with their coverage. */
export function demoFederationYaml(name: string, urls: { gaia: string; ps1: string }, catalogues: DemoCatalogues): string {
  const coverage = JSON.stringify(demoCoverageMoc());
  return `federation: { name: ${JSON.stringify(name)} }
sites:
  - id: ${DEMO_SITES.gaia}
    name: Gaia centre (simulated)
    adapter: tap
    url: ${JSON.stringify(urls.gaia)}
    datasets:
      ${catalogues.gaia.name}: { id: ${DEMO_DATASETS.gaia}, coverage: ${coverage} }
  - id: ${DEMO_SITES.ps1}
    name: Pan-STARRS centre (simulated)
    adapter: tap
    url: ${JSON.stringify(urls.ps1)}
    datasets:
      ${catalogues.ps1.name}: { id: ${DEMO_DATASETS.ps1}, coverage: ${coverage} }
`;
}
