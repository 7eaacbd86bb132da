/** The planner's public surface, for the GraphQL resolver `plan(request: PlanRequest!): Plan!`. */
import type pg from 'pg';
import { plan, type PlanOptions } from './plan.js';
import type { PlannerView } from './snapshot.js';
import type { Caller, Plan, PlanRequest } from './types.js';

export { plan, QUERY_SERVICE_TYPES, type PlanOptions } from './plan.js';
export { DEFAULT_COSTS, HEALTH, formulaText, type CostConstants } from './cost.js';
export { PlannerSnapshot, PlannerView, loadPlannerSnapshot, snapshotFromDocuments, type PlannerSite, type PlannerReplica } from './snapshot.js';
export * from './types.js';

/**
 * Resolve a plan request: bring the view up to the registry version with the pool (outside any
 * request transaction), then plan synchronously. Anonymous callers pass `{ groups: [] }`.
 */
export async function planRequest(view: PlannerView, pool: pg.Pool, request: PlanRequest, caller: Caller, options?: PlanOptions): Promise<Plan> {
  return plan(await view.refresh(pool), request, caller, options);
}
