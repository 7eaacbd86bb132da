/**
 * Which `datasets` selections the in-memory view answers whole: the fields it holds at the
 * registry version it is at. Anything else (a replica's coverage or columns, a site's services,
 * its harvest counters, which change without a new registry version) is read from SQL.
 */
import type { FragmentDefinitionNode, GraphQLResolveInfo, SelectionSetNode } from 'graphql';

/** A type's fields the view answers, each with the type of its own selection (null: a leaf). */
type Allowed = Readonly<Record<string, string | null>>;

const TYPES: Readonly<Record<string, Allowed>> = {
  Dataset: { id: null, title: null, description: null, columns: 'Column', replicas: 'Replica' },
  Column: { name: null, canonical: null, datatype: null, arraysize: null, xtype: null, unit: null, ucd: null, description: null, indexed: null },
  Replica: { table: null, title: null, rows: null, rowBytes: null, position: 'Position', access: 'Access', site: 'Site' },
  Position: { ra: null, dec: null },
  Access: { public: null, groups: null },
  // Only the fields a publish or a status change writes (both make a new registry version).
  Site: { id: null, status: null, origin: null, seeded: null, asOf: null, publishedAt: null },
};

const verdicts = new WeakMap<object, boolean>();

/** Whether every field selected under this `datasets` field is one the view answers. */
export function viewAnswers(info: Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments'>): boolean {
  // A parsed query is cached and reused, so its field nodes are too: decide once per query.
  const key = info.fieldNodes[0];
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  const verdict = info.fieldNodes.every((n) => n.selectionSet === undefined || within(n.selectionSet, 'Dataset', info.fragments, 0));
  verdicts.set(key, verdict);
  return verdict;
}

function within(set: SelectionSetNode, type: string, fragments: Record<string, FragmentDefinitionNode>, depth: number): boolean {
  // Fragments may not cycle (validation), but a bound keeps a hostile document cheap all the same.
  if (depth > 32) return false;
  const allowed = TYPES[type];
  for (const s of set.selections) {
    if (s.kind === 'Field') {
      if (s.name.value === '__typename') continue;
      const next = allowed[s.name.value];
      if (next === undefined) return false;
      if (next !== null && (s.selectionSet === undefined || !within(s.selectionSet, next, fragments, depth + 1))) return false;
    } else {
      const on = s.kind === 'InlineFragment' ? s.typeCondition : fragments[s.name.value]?.typeCondition;
      if (on !== undefined && on.name.value !== type) return false;
      const body = s.kind === 'InlineFragment' ? s.selectionSet : fragments[s.name.value]?.selectionSet;
      if (body === undefined || !within(body, type, fragments, depth + 1)) return false;
    }
  }
  return true;
}
