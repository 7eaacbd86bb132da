/**
 * Static analysis of a parsed GraphQL document before anything runs: how many aliases,
 * directives and fields it writes, how deep it goes, the most objects its answer could hold
 * (each list at its limit times its selection), and whether it reads anything that changes
 * without a new registry version (so the response cache must not keep it).
 */
import {
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { DOCUMENT_COST, LIST_ASSUMED, LIST_MAX } from './limits.js';

/** What the document writes, counted over every definition (fragments once). */
export interface DocumentCounts {
  aliases: number;
  directives: number;
  fields: number;
}

/** What the selected operation would do. */
export interface OperationAnalysis {
  /** The operation that would run; undefined when the document names none unambiguously (GraphQL then refuses it). */
  operation?: 'query' | 'mutation' | 'subscription';
  /** That operation's name, when it has one (metrics label it). */
  name?: string;
  /** Most objects the answer could hold. */
  cost: number;
  /** Deepest field, top-level fields at 1. */
  depth: number;
  /** True when a field read changes without a registry version (jobs, harvest records). */
  volatile: boolean;
  /** True when a list limit was read from the variables (the analysis then holds for these variables only). */
  variableLimits?: boolean;
}

/**
 * Fields whose answer changes without a new registry version: jobs move on their own, and a
 * failed or unchanged harvest is recorded without changing what the site advertises.
 */
const VOLATILE_FIELDS = new Set(['Query.me', 'Query.job', 'Query.jobs', 'Query.thread', 'Query.threads', 'Site.harvests', 'Site.lastHarvest', 'Site.consecutiveFailures']);
/** Types only reachable through volatile data (any field returning one is volatile too). */
const VOLATILE_TYPES = new Set(['Job', 'HarvestRun', 'JobEvent', 'Thread', 'ThreadStep', 'ThreadProgress']);
/** What a list of objects costs per element when nothing bounds it (every such field should be in LIST_MAX). */
const UNBOUNDED_LIST = 10_000;

// The schema comes from mercurius' copy of graphql (CommonJS) and this file's from the ES
// module: graphql's type predicates (instanceof) refuse the other copy's types, so types are
// read by shape and by their printed form ("[Site!]!").

/** True when the field's type is a list (of anything), nullable or not. */
const isList = (type: GraphQLOutputType): boolean => String(type).replace(/!$/, '').startsWith('[');
/** The named type under any list and non-null wrappers. */
const namedType = (schema: GraphQLSchema, type: GraphQLOutputType): GraphQLNamedType | undefined => schema.getType(String(type).replace(/[[\]!]/g, '')) ?? undefined;
/** Object, interface or union: a type with a selection of its own (input objects have no interfaces). */
const isComposite = (type: GraphQLNamedType | undefined | null): boolean => !!type && ('getInterfaces' in type || 'getTypes' in type);
/** The output fields of an object or interface type. */
const fieldsOf = (type: GraphQLNamedType | undefined): Record<string, GraphQLField<unknown, unknown>> | undefined =>
  type && isComposite(type) && 'getFields' in type ? (type.getFields() as Record<string, GraphQLField<unknown, unknown>>) : undefined;

/** Aliases, directives and fields of the whole document, in one linear pass. */
export function countDocument(document: DocumentNode): DocumentCounts {
  const counts: DocumentCounts = { aliases: 0, directives: 0, fields: 0 };
  const stack: SelectionSetNode[] = [];
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION && def.kind !== Kind.FRAGMENT_DEFINITION) continue;
    counts.directives += def.directives?.length ?? 0;
    counts.directives += def.kind === Kind.OPERATION_DEFINITION ? (def.variableDefinitions ?? []).reduce((n, v) => n + (v.directives?.length ?? 0), 0) : 0;
    stack.push(def.selectionSet);
  }
  while (stack.length > 0) {
    for (const sel of stack.pop()!.selections) {
      counts.directives += sel.directives?.length ?? 0;
      if (sel.kind === Kind.FIELD) {
        counts.fields++;
        if (sel.alias) counts.aliases++;
      }
      if (sel.kind !== Kind.FRAGMENT_SPREAD && sel.selectionSet) stack.push(sel.selectionSet);
    }
  }
  return counts;
}

/** The operation GraphQL would run for `operationName` (the only one when no name is given). */
export function selectOperation(document: DocumentNode, operationName?: string | null): OperationDefinitionNode | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (operationName) return operations.find((o) => o.name?.value === operationName);
  return operations.length === 1 ? operations[0] : undefined;
}

interface Walk {
  cost: number;
  depth: number;
  volatile: boolean;
}

/**
 * Analyse the operation `operationName` of `document` against `schema` ('unknown' variables:
 * a limit given by a variable counts as its maximum). The document need not
 * be valid yet: unknown fields and types cost nothing (validation refuses them), a fragment is
 * costed once however often it is spread (no exponential fragment bombs), and a fragment
 * cycle costs nothing on its second visit (validation refuses it too).
 */
export function analyseOperation(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | null | undefined | 'unknown', operationName?: string | null): OperationAnalysis {
  const op = selectOperation(document, operationName);
  if (!op) return { cost: 0, depth: 0, volatile: false };
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const fragmentWalks = new Map<string, Walk>();
  const variableDefault = (name: string): number | undefined => {
    const given = op.variableDefinitions?.find((v) => v.variable.name.value === name)?.defaultValue;
    return given?.kind === Kind.INT ? Number(given.value) : undefined;
  };
  const visiting = new Set<string>();
  let variableLimits = false;

  const limitOf = (coord: string, field: FieldNode, def: GraphQLField<unknown, unknown>): number => {
    if (coord in LIST_ASSUMED) return LIST_ASSUMED[coord];
    const max = LIST_MAX[coord];
    if (max === undefined) return UNBOUNDED_LIST;
    const arg = field.arguments?.find((a) => a.name.value === 'limit');
    let value: unknown = def.args.find((a) => a.name === 'limit')?.defaultValue;
    if (arg?.value.kind === Kind.INT) value = Number(arg.value.value);
    else if (arg?.value.kind === Kind.VARIABLE) {
      variableLimits = true;
      value = variables === 'unknown' ? undefined : (variables?.[arg.value.name.value] ?? variableDefault(arg.value.name.value) ?? value);
    } else if (arg) value = undefined;
    // A limit out of range is refused by the resolver; here it counts as the maximum.
    return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max ? value : max;
  };

  const walk = (set: SelectionSetNode, parent: GraphQLNamedType | undefined | null): Walk => {
    const out: Walk = { cost: 0, depth: 0, volatile: false };
    const add = (w: Walk, times = 1, levels = 0) => {
      out.cost += times * w.cost;
      out.depth = Math.max(out.depth, w.depth + levels);
      out.volatile ||= w.volatile;
    };
    for (const sel of set.selections) {
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        const type = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent;
        add(walk(sel.selectionSet, type));
      } else if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const name = sel.name.value;
        const fragment = fragments.get(name);
        if (!fragment || visiting.has(name)) continue;
        let w = fragmentWalks.get(name);
        if (!w) {
          visiting.add(name);
          w = walk(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value));
          visiting.delete(name);
          fragmentWalks.set(name, w);
        }
        add(w);
      } else {
        const name = sel.name.value;
        const def = fieldsOf(parent ?? undefined)?.[name];
        if (!def) {
          // __typename, introspection (bounded by the schema's size) or an unknown field (refused by validation).
          add({ cost: name.startsWith('__') && sel.selectionSet ? 1 : 0, depth: 1, volatile: false });
          continue;
        }
        const coord = `${parent!.name}.${name}`;
        const type = namedType(schema, def.type);
        const volatile = VOLATILE_FIELDS.has(coord) || VOLATILE_TYPES.has(type?.name ?? '');
        if (!isComposite(type)) {
          add({ cost: coord === 'SiteDocument.document' ? DOCUMENT_COST : 0, depth: 1, volatile });
          continue;
        }
        const inner = sel.selectionSet ? walk(sel.selectionSet, type) : { cost: 0, depth: 0, volatile: false };
        const times = isList(def.type) ? limitOf(coord, sel, def) : 1;
        add({ cost: 1 + inner.cost, depth: inner.depth, volatile: volatile || inner.volatile }, times, 1);
      }
    }
    return out;
  };

  const root = op.operation === 'query' ? schema.getQueryType() : op.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  const w = walk(op.selectionSet, root ?? undefined);
  return { operation: op.operation as OperationAnalysis['operation'], ...(op.name ? { name: op.name.value } : {}), ...w, ...(variableLimits ? { variableLimits } : {}) };
}

/**
 * Object-list fields of the schema that have neither a maximum in LIST_MAX nor an assumed
 * size in LIST_ASSUMED; checked at start so a new list field cannot escape the cost analysis.
 */
export function unboundedListFields(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    const fields = type.name.startsWith('__') ? undefined : fieldsOf(type);
    for (const [name, field] of Object.entries(fields ?? {})) {
      const coord = `${type.name}.${name}`;
      if (!isList(field.type) || !isComposite(namedType(schema, field.type))) continue;
      if (type.name === 'Subscription' || coord in LIST_ASSUMED) continue;
      const hasLimit = field.args.some((a) => a.name === 'limit' && a.defaultValue !== undefined);
      if (!(coord in LIST_MAX) || !hasLimit) missing.push(coord);
    }
  }
  return missing;
}
