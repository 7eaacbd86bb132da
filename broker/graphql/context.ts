/** What every resolver and loader receives. */
import type { Services } from '../factory.js';
import type { ReadScope } from './read-scope.js';

export interface GraphQLContext {
  /** This request's consistent read of the registry. */
  db: ReadScope;
  services: Services;
}

declare module 'mercurius' {
  // Mercurius merges its own fields (reply, app, pubsub) into the context we build.
  interface MercuriusContext extends GraphQLContext {}
}
