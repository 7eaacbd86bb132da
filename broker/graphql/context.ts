/** What every resolver and loader receives. */
import type { Services } from '../factory.js';
import type { Caller } from '../planner/index.js';
import type { RequestBudget } from './budget.js';
import type { ReadScope } from './read-scope.js';

/** Every caller until identity arrives: no groups, so only public replicas are eligible. */
export const ANONYMOUS: Caller = { groups: [] };
/** The owner every job has until identity arrives. */
export const ANONYMOUS_OWNER = 'anonymous';

export interface GraphQLContext {
  /** This request's consistent read of the registry. */
  db: ReadScope;
  /** The objects this request may still build; ended when its client goes away. */
  budget: RequestBudget;
  services: Services;
}

declare module 'mercurius' {
  // Mercurius merges its own fields (reply, app, pubsub) into the context we build.
  interface MercuriusContext extends GraphQLContext {}
}
