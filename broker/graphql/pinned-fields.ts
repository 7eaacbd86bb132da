/**
 * The nested fields of objects answered from the in-memory view, answered at once. A pinned
 * dataset or replica carries its nested rows from its registry version, so mercurius' loader
 * batching (a stringified key per parent, a promise and a tick per field) only adds cost: in a
 * profile of the README's query it was a third of the broker's CPU (issue 13, point 1). Every
 * other parent goes on to the field's loader, which reads SQL in one batch.
 */
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import type { GraphQLContext } from './context.js';
import { listLimit } from './limits.js';
import { PinnedDataset, PinnedReplica } from './pinned.js';

/** Marks a parent the view did not answer: the field's loader takes it. */
const NOT_PINNED = Symbol('not pinned');

// `limit` always has a value: schema.graphql gives each of these lists a default.
type Fast = (parent: unknown, args: { limit: number }, ctx: GraphQLContext) => unknown;

/** Per field, the answer for a pinned parent, or NOT_PINNED. */
const FAST: Record<string, Record<string, Fast>> = {
  Dataset: {
    replicas: (d, { limit }, ctx) => (d instanceof PinnedDataset ? charged(ctx, 'Dataset.replicas', d.replicas(listLimit('Dataset.replicas', limit))) : NOT_PINNED),
    columns: (d, { limit }, ctx) => (d instanceof PinnedDataset ? charged(ctx, 'Dataset.columns', d.columns().slice(0, listLimit('Dataset.columns', limit))) : NOT_PINNED),
  },
  Replica: {
    site: (r, _args, ctx) => {
      if (!(r instanceof PinnedReplica)) return NOT_PINNED;
      ctx.budget.charge(1, 'references');
      return r.site;
    },
  },
};

/** Charge a list answered at once to the request's budget, as the loader charges its batch. */
function charged<T>(ctx: GraphQLContext, field: string, list: T[]): T[] {
  ctx.budget.charge(list.length, field);
  return list;
}

/**
 * Put the pinned answer in front of each field's loader in `schema` (after mercurius defined the
 * loaders), returning the resolvers to hand to mercurius' `defineResolvers`.
 */
export function pinnedFieldResolvers(schema: GraphQLSchema): Record<string, Record<string, GraphQLFieldResolver<unknown, GraphQLContext>>> {
  const out: Record<string, Record<string, GraphQLFieldResolver<unknown, GraphQLContext>>> = {};
  for (const [typeName, fields] of Object.entries(FAST)) {
    const type = schema.getType(typeName);
    out[typeName] = {};
    for (const [field, fast] of Object.entries(fields)) {
      // Not `instanceof GraphQLObjectType`: mercurius may hold graphql's CommonJS build, this file its ESM one.
      const found = type !== undefined && type !== null && 'getFields' in type ? type.getFields()[field] : undefined;
      const loader = found !== undefined && 'resolve' in found ? found.resolve : undefined;
      if (loader === undefined) throw new Error(`schema.graphql's ${typeName}.${field} has no loader to put the pinned answer in front of`);
      out[typeName][field] = (parent, args, ctx, info) => {
        const answer = fast(parent, args, ctx);
        return answer === NOT_PINNED ? loader(parent, args, ctx, info) : answer;
      };
    }
  }
  return out;
}
