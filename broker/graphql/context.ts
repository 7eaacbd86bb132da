/** What every resolver and loader receives. */
import { groupsOf, isAdmin, type Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import type { ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
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
  /** Who is asking (anonymous without a credential). */
  identity: Identity;
  /** A site's publish key, when the request carried one (X-Publish-Key). */
  publishKey?: string;
  /** The member site the caller is inside, when they are (the fast lane: X-Constellation-Site or sites[].networks). */
  callerSite?: string;
}

/** The planner's view of a caller: the groups whose replicas they may read, and the site they call from (the fast lane). */
export function callerOf(identity: Identity, site?: string): Caller {
  return { groups: groupsOf(identity), ...(site ? { site } : {}) };
}

/** Which replicas a caller sees in discovery: all (admins) or the public ones and those of their groups. */
export type Visibility = ReplicaVisibility;

/** The replicas `identity` may see. */
export function visibilityOf(identity: Identity): Visibility {
  return isAdmin(identity) ? 'all' : groupsOf(identity);
}

declare module 'mercurius' {
  // Mercurius merges its own fields (reply, app, pubsub) into the context we build.
  interface MercuriusContext extends GraphQLContext {}
}
