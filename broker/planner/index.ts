/** The planner's public surface: `plan` over a `PlannerView` snapshot, for GraphQL `plan` and job routing. */
export { imageMatches, plan, QUERY_SERVICE_TYPES, type PlanOptions } from './plan.js';
export { DEFAULT_COSTS, HEALTH, formulaText, type CostConstants } from './cost.js';
export { PlannerSnapshot, loadPlannerSnapshot, snapshotFromDocuments, type PlannerSite, type PlannerReplica, type PlannerReplicaRow } from './snapshot.js';
export { PlannerView, type SnapshotFollower } from './view.js';
export * from './types.js';
export { SitesWithoutData } from './without-data.js';
