/** The demo's ground: generated catalogues with a known truth, and simulated TAP centres serving them. */
export { generateCatalogues, truthInCone, truthPairs, GUARD, MAIN_PATCH, PLANTED_SHARE, POLE_PATCH, WRAP_PATCH } from './catalogues.js';
export type { CatalogueOptions, DemoCatalogues, PairKind, TruePair } from './catalogues.js';
export { startCentre } from './centre.js';
export type { Centre, CentreLimits, CentreOptions, LedgerTotals, QueryRecord } from './centre.js';
export { demoFederationYaml, startDemoCentres, DEMO_DATASETS, DEMO_SITES } from './demo-centres.js';
export type { DemoCentres, DemoCentresOptions } from './demo-centres.js';
export type { CentreColumn, CentreTable } from './table.js';
