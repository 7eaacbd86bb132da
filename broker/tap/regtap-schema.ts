/**
 * The registry as IVOA RegTAP 1.1 (the `rr` schema), so pyvo.registry.search, TOPCAT's
 * registry window and any RegTAP client find the federation's holdings through /tap. It is
 * generated per query from the registry, for the caller:
 *
 *   ivo://constellation/tap                        this service, the federation's TAP (RegTAP data model)
 *   ivo://constellation/<site>/<service>           each member site's service, at the site's own URL
 *   ivo://constellation/<site>/<service>/<dataset> each replica the caller may see (protected ones of
 *                                                  other groups are absent), a table served through
 *                                                  this /tap under its canonical name, with its
 *                                                  columns and its MOC in rr.stc_spatial
 *
 * RegTAP's functions (ivo_hasword, ivo_nocasematch, ivo_hashlist_has, ivo_string_agg,
 * ivo_interval_overlaps, ivo_splitindex) are translated to PostgreSQL; spatial constraints
 * against rr.stc_spatial.coverage are evaluated by ./regtap-moc.ts.
 */
import type { Query } from '../../adapters/ivoa/adql/index.js';
import type { Cell } from '../../adapters/ivoa/votable/index.js';
import { columnsByReplicas, coverageByReplicas, datasetsByIds, replicasBySites } from '../../registry/store/queries/catalogue.js';
import { servicesBySites } from '../../registry/store/queries/resources.js';
import type { ColumnRow, DatasetRow, ReplicaRow, ServiceRow, SiteRow } from '../../registry/store/queries/rows.js';
import { listSites } from '../../registry/store/queries/sites.js';
import { votableType } from './catalogue.js';
import type { LocalColumn, LocalKey, LocalSchema, LocalTable, SchemaContext } from './local-schema.js';
import { hasSpatialConstraint, rewriteSpatial } from './regtap-moc.js';

const text = (name: string, description: string, extra: Partial<LocalColumn> = {}): LocalColumn => ({ name, datatype: 'char', description, ...extra });
const short = (name: string, description: string): LocalColumn => ({ name, datatype: 'short', description });

/** The rr tables and their columns as RegTAP 1.1 (and 1.2's stc_spatial) define them. */
const COLUMNS: Record<string, LocalColumn[]> = {
  resource: [
    text('ivoid', 'unambiguous reference to the resource conforming to the IVOA standard for identifiers', { ucd: 'meta.ref.ivoid', indexed: true }),
    text('res_type', 'resource type (the xsi:type of the record, lower case, e.g. vs:catalogservice)'),
    text('created', 'the date this resource metadata description was created', { xtype: 'timestamp' }),
    text('short_name', 'a short name or abbreviation given to something'),
    text('res_title', 'the full name given to the resource', { ucd: 'meta.title' }),
    text('content_level', 'hash-separated intended audiences'),
    text('res_description', 'an account of the nature of the resource'),
    text('reference_url', 'URL pointing to a human-readable document describing this resource', { ucd: 'meta.ref.url' }),
    text('creator_seq', 'the creator(s) of the resource, semicolon-separated'),
    text('content_type', 'hash-separated natures or genres of the content of the resource'),
    text('source_format', 'the format of source_value'),
    text('source_value', 'a bibliographic reference from which the present resource is derived or extracted'),
    text('res_version', 'label associated with creation or availability of a version of a resource'),
    { name: 'region_of_regard', datatype: 'double', unit: 'deg', description: 'the intrinsic spatial resolution of the data' },
    text('waveband', 'hash-separated messenger particles (IVOA messenger vocabulary)'),
    text('rights', 'a statement of usage conditions'),
    text('rights_uri', 'a URI identifier for a license'),
    text('harvested_from', 'IVOA identifier of the registry this record came from'),
    text('updated', 'the date this resource metadata description was last updated', { xtype: 'timestamp' }),
  ],
  capability: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    short('cap_index', 'an arbitrary identifier of this capability within the resource'),
    text('cap_type', 'the type of the capability (xsi:type, lower case, e.g. tr:tableaccess)'),
    text('cap_description', 'a human-readable description of what this capability provides'),
    text('standard_id', 'a URI for the standard this capability conforms to (lower case)'),
  ],
  interface: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    short('cap_index', 'the index of the parent capability'),
    short('intf_index', 'an arbitrary identifier of the interface within the resource'),
    text('intf_type', 'the type of the interface (xsi:type, lower case, e.g. vs:paramhttp)'),
    text('intf_role', 'std for the standard interface of the capability'),
    text('std_version', 'the version of the standard the interface implements'),
    text('query_type', 'hash-joined list of the HTTP verbs supported'),
    text('result_type', 'the MIME type of a document returned in the HTTP response'),
    text('wsdl_url', 'the location of a WSDL for a SOAP interface'),
    text('url_use', 'how to use the access URL: full, base, post or dir'),
    text('access_url', 'the URL at which the interface is found', { ucd: 'meta.ref.url' }),
    text('mirror_url', 'hash-joined secondary access URLs'),
    short('authenticated_only', '1 when the interface can only be used after authentication, 0 otherwise'),
  ],
  res_table: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    short('table_index', 'an arbitrary identifier of the table within the resource'),
    text('table_name', 'the fully qualified name of the table, as written in ADQL'),
    text('table_title', 'a descriptive, human-interpretable name for the table'),
    text('table_description', 'a free-text description of the table contents'),
    text('table_utype', 'an identifier for a concept in a data model that the data in this table represent'),
    text('table_type', 'a name for the role this table plays (output, base_table or view)'),
    { name: 'nrows', datatype: 'long', description: 'the approximate number of rows in the table' },
  ],
  table_column: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    short('table_index', 'the index of the table this column belongs to'),
    text('name', 'the name of the column'),
    text('ucd', 'a unified content descriptor of the column'),
    text('unit', 'the unit of the column values'),
    text('utype', 'an identifier for a role in a data model that the data in this column represent'),
    text('datatype', 'the type of the data in this column'),
    text('extended_schema', 'the namespace of an extended type'),
    text('extended_type', 'an extended type (the xtype) of the column values'),
    text('arraysize', 'the shape of the array that constitutes the value'),
    text('delim', 'the string used to delimit array elements'),
    text('type_system', 'the type system of datatype, e.g. vs:votabletype'),
    text('flag', 'hash-separated keywords: indexed, primary, nullable, std'),
    text('column_description', 'a free-text description of the column contents'),
  ],
  res_detail: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    short('cap_index', 'the index of the parent capability; NULL for details of the resource'),
    text('detail_xpath', 'the xpath of the metadata item, as RegTAP 1.1 table 7 gives it'),
    text('detail_value', 'the (string) value of the metadata item'),
  ],
  res_subject: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    text('res_subject', 'a topic, object type, or other descriptive keyword about the resource'),
  ],
  res_role: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    text('role_name', 'the real-world name or title of a person or organization'),
    text('role_ivoid', 'an IVOA identifier of a person or organization'),
    text('street_address', 'a mailing address for a person or organization'),
    text('email', 'an email address the entity can be reached at'),
    text('telephone', 'a telephone number the entity can be reached at'),
    text('logo', 'URL pointing to a graphical logo'),
    text('base_role', 'the role played by this entity: creator, contact or publisher'),
  ],
  stc_spatial: [
    text('ivoid', 'the parent resource', { ucd: 'meta.ref.ivoid', indexed: true }),
    text('coverage', 'the sky the resource covers, as an IVOA MOC 2.0 ASCII string; constrain it with CONTAINS/INTERSECTS and MOC(), POINT() or CIRCLE()', { xtype: 'moc' }),
    text('ref_system_name', 'the reference frame of the coverage'),
  ],
};

const DESCRIPTIONS: Record<string, string> = {
  resource: 'the resources of the federation: this TAP service, each member site\'s services, each table replica the caller may see',
  capability: 'pieces of behaviour of a resource',
  interface: 'the access modes of the capabilities',
  res_table: 'the tables of the resources',
  table_column: 'the columns of the tables in rr.res_table',
  res_detail: 'further metadata of resources and capabilities, by xpath',
  res_subject: 'topics, object types and other keywords of resources',
  res_role: 'entities (persons, organisations) related to resources',
  stc_spatial: 'the sky coverage of each replica that advertises one (RegTAP 1.2), as a MOC',
};

const rrKey = (table: string, target: string, columns: string[]): LocalKey => ({
  id: `rr_${table}_${target}`, fromTable: `rr.${table}`, targetTable: `rr.${target}`, columns: columns.map((c) => ({ from: c, target: c })),
});

const KEYS: LocalKey[] = [
  rrKey('capability', 'resource', ['ivoid']),
  rrKey('interface', 'resource', ['ivoid']),
  rrKey('res_table', 'resource', ['ivoid']),
  rrKey('table_column', 'resource', ['ivoid']),
  rrKey('res_detail', 'resource', ['ivoid']),
  rrKey('res_subject', 'resource', ['ivoid']),
  rrKey('res_role', 'resource', ['ivoid']),
  rrKey('stc_spatial', 'resource', ['ivoid']),
];

const hw = (args: string[]) => args.map((a) => `(${a})`);

/** RegTAP 1.1 section 8's functions as PostgreSQL (ivo_hasword is full-text, as in the reference implementation). */
const UDFS: NonNullable<LocalSchema['udfs']> = {
  ivo_hasword: (args) => {
    const [haystack, needle] = hw(args);
    return `CASE WHEN to_tsvector('english', COALESCE(${haystack}, '')) @@ plainto_tsquery('english', ${needle}) THEN 1 ELSE 0 END`;
  },
  ivo_nocasematch: (args) => {
    const [value, pattern] = hw(args);
    return `CASE WHEN ${value} ILIKE ${pattern} THEN 1 ELSE 0 END`;
  },
  ivo_hashlist_has: (args) => {
    const [list, item] = hw(args);
    return `CASE WHEN lower(${item}) = ANY(string_to_array(lower(${list}), '#')) THEN 1 ELSE 0 END`;
  },
  ivo_string_agg: (args) => {
    const [value, delimiter] = hw(args);
    return `string_agg(CAST(${value} AS text), CAST(${delimiter} AS text))`;
  },
  ivo_interval_overlaps: (args) => {
    const [l1, h1, l2, h2] = hw(args);
    return `CASE WHEN ${l1} <= ${h2} AND ${l2} <= ${h1} THEN 1 ELSE 0 END`;
  },
  ivo_splitindex: (args) => {
    const [value, delimiter, index] = hw(args);
    return `NULLIF(split_part(${value}, ${delimiter}, CAST(${index} AS integer)), '')`;
  },
};

/** The standard id of a service type, lower case as RegTAP stores them. */
const STANDARD_IDS: Record<string, string> = {
  tap: 'ivo://ivoa.net/std/tap', scs: 'ivo://ivoa.net/std/conesearch', sia: 'ivo://ivoa.net/std/sia', ssa: 'ivo://ivoa.net/std/ssa',
  datalink: 'ivo://ivoa.net/std/datalink#links-1.1', soda: 'ivo://ivoa.net/std/soda#sync-1.0', vospace: 'ivo://ivoa.net/std/vospace/v2.0',
};
const CAP_TYPES: Record<string, string> = { tap: 'tr:tableaccess', scs: 'cs:conesearch', sia: 'sia:simpleimageaccess', ssa: 'ssa:simplespectralaccess' };

/** The ivoid of this service itself. */
export const FEDERATION_IVOID = 'ivo://constellation/tap';

/** The lower-case ivoid of a resource under ivo://constellation. */
export function ivoidOf(...path: string[]): string {
  return `ivo://constellation/${path.map((p) => encodeURIComponent(p.toLowerCase())).join('/')}`;
}

/** What the rr tables are generated from, read once per query. */
interface Snapshot {
  sites: Map<string, SiteRow>;
  services: ServiceRow[];
  replicas: ReplicaRow[];
  datasets: Map<string, DatasetRow>;
  coverage: Map<number, string>;
}

async function readSnapshot(ctx: SchemaContext): Promise<Snapshot> {
  const sites = await listSites(ctx.db);
  const ids = sites.map((s) => s.id);
  const [services, replicas] = await Promise.all([servicesBySites(ctx.db, ids), replicasBySites(ctx.db, ids, undefined, ctx.visibility)]);
  const [datasets, coverage] = await Promise.all([
    datasetsByIds(ctx.db, [...new Set(replicas.map((r) => r.datasetId))], ctx.visibility),
    coverageByReplicas(ctx.db, replicas.map((r) => r.id)),
  ]);
  return {
    sites: new Map(sites.map((s) => [s.id, s])),
    services,
    replicas,
    datasets: new Map(datasets.map((d) => [d.id, d])),
    coverage: new Map(coverage.map((c) => [c.replicaId, c.moc])),
  };
}

// One registry read per query: the rows of every rr table it names and its spatial rewrite share it.
const snapshots = new WeakMap<SchemaContext, Promise<Snapshot>>();
const snapshotOf = (ctx: SchemaContext): Promise<Snapshot> => {
  let s = snapshots.get(ctx);
  if (!s) snapshots.set(ctx, (s = readSnapshot(ctx)));
  return s;
};

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/** One resource row in COLUMNS.resource order. */
function resourceRow(r: { ivoid: string; type: string; at: Date | null; shortName: string; title: string; description: string; reference: string | null; creator: string | null; contentType: string | null }): Cell[] {
  return [r.ivoid, r.type, iso(r.at), r.shortName.slice(0, 16), r.title, 'research', r.description, r.reference, r.creator, r.contentType, null, null, null, null, null, null, null, FEDERATION_IVOID, iso(r.at)];
}

/** Every rr row for the caller, table by table. */
function rowsOf(s: Snapshot, baseUrl: string, columns: ColumnRow[] | undefined): Record<string, Cell[][]> {
  const out: Record<string, Cell[][]> = Object.fromEntries(Object.keys(COLUMNS).map((t) => [t, []]));
  const interfaceRow = (ivoid: string, cap: number, url: string, std: string | null, authenticated: boolean): Cell[] => [ivoid, cap, 1, 'vs:paramhttp', 'std', std, null, null, null, 'base', url, null, authenticated ? 1 : 0];

  // This service: the federation's TAP, which also serves this registry.
  out.resource.push(resourceRow({ ivoid: FEDERATION_IVOID, type: 'vs:catalogservice', at: null, shortName: 'constellation', title: 'Constellation federation TAP service',
    description: 'One TAP service for the whole federation: every canonical dataset of its member sites, queried by its canonical name and run at the site that holds it; also a RegTAP 1.1 registry of the federation.',
    reference: baseUrl, creator: null, contentType: 'Catalog' }));
  out.capability.push([FEDERATION_IVOID, 1, 'tr:tableaccess', 'the federation as one TAP service', STANDARD_IDS.tap]);
  out.interface.push(interfaceRow(FEDERATION_IVOID, 1, baseUrl, '1.1', false));
  out.res_detail.push([FEDERATION_IVOID, 1, '/capability/dataModel/@ivo-id', 'ivo://ivoa.net/std/regtap#1.1']);
  out.res_detail.push([FEDERATION_IVOID, 1, '/capability/dataModel', 'Registry 1.1']);

  for (const svc of s.services) {
    const site = s.sites.get(svc.siteId);
    if (!site) continue;
    const ivoid = ivoidOf(site.id, svc.id);
    const std = (svc.standardId ?? STANDARD_IDS[svc.type] ?? null)?.toLowerCase() ?? null;
    out.resource.push(resourceRow({ ivoid, type: svc.type === 'tap' ? 'vs:catalogservice' : 'vs:dataservice', at: site.publishedAt, shortName: site.id,
      title: svc.title ?? `${site.name} ${svc.type.toUpperCase()} service`,
      description: `The ${svc.type.toUpperCase()} service of ${site.name} (site ${site.id}), a member of the Constellation federation; its own endpoint, reached directly.`,
      reference: site.url, creator: site.name, contentType: null }));
    out.capability.push([ivoid, 1, CAP_TYPES[svc.type] ?? null, `${svc.type} service of site ${site.id}`, std]);
    out.interface.push(interfaceRow(ivoid, 1, svc.url, null, svc.auth.length > 0 && !svc.auth.includes('anonymous')));
    out.res_role.push([ivoid, site.name, ivoidOf(site.id), null, null, null, null, 'publisher']);
  }

  const byReplica = new Map<number, ColumnRow[]>();
  for (const c of columns ?? []) byReplica.set(c.replicaId, [...(byReplica.get(c.replicaId) ?? []), c]);
  for (const r of s.replicas) {
    const site = s.sites.get(r.siteId);
    const dataset = s.datasets.get(r.datasetId);
    if (!site || !dataset) continue;
    const ivoid = ivoidOf(site.id, r.serviceId, r.datasetId);
    const title = r.title ?? dataset.title ?? r.datasetId;
    const about = r.description ?? dataset.description;
    out.resource.push(resourceRow({ ivoid, type: 'vs:catalogresource', at: site.publishedAt, shortName: r.datasetId, title: `${title} (${site.name})`,
      description: `${about ? `${about} ` : ''}The table ${r.datasetId} as held by ${site.name} (site ${site.id}, local table ${r.table}); query it as ${r.datasetId} through the federation's TAP service, which runs the query at a site holding it.`,
      reference: site.url, creator: site.name, contentType: 'Catalog' }));
    out.capability.push([ivoid, 1, 'tr:tableaccess', `the federation's TAP service, where this table is ${r.datasetId}`, STANDARD_IDS.tap]);
    out.interface.push(interfaceRow(ivoid, 1, baseUrl, '1.1', !r.access.public));
    out.res_table.push([ivoid, 1, r.datasetId, title, about ?? null, null, 'base_table', r.rows]);
    out.res_subject.push([ivoid, r.datasetId.split('.')[0]]);
    out.res_role.push([ivoid, site.name, ivoidOf(site.id), null, null, null, null, 'publisher']);
    const moc = s.coverage.get(r.id);
    if (moc !== undefined) out.stc_spatial.push([ivoid, moc, 'ICRS']);
    for (const c of byReplica.get(r.id) ?? []) {
      const t = votableType(c.datatype, c.arraysize);
      const flags = [c.indexed ? 'indexed' : undefined, 'nullable'].filter(Boolean).join('#');
      out.table_column.push([ivoid, 1, c.canonical ?? c.name.toLowerCase(), c.ucd, c.unit, null, t.datatype, null, c.xtype ?? t.xtype ?? null, t.arraysize ?? null, null, 'vs:votabletype', flags, c.description]);
    }
  }
  return out;
}

/** The rr schema: RegTAP 1.1 over the registry, for each caller. */
export function regtapSchema(): LocalSchema {
  return {
    name: 'rr',
    description: 'the federation as an IVOA RegTAP 1.1 registry (pyvo.registry.search works against this service)',
    keys: KEYS,
    udfs: UDFS,
    async prepare(query: Query, ctx: SchemaContext): Promise<Query> {
      if (!hasSpatialConstraint(query)) return query;
      const s = await snapshotOf(ctx);
      return rewriteSpatial(query, [...s.coverage.values()]);
    },
    tables(ctx: SchemaContext): LocalTable[] {
      const baseUrl = ctx.baseUrl ?? '/tap';
      let all: Promise<Record<string, Cell[][]>> | undefined;
      // Columns are read only when rr.table_column is asked for.
      const rows = (withColumns: boolean) => snapshotOf(ctx).then(async (s) => rowsOf(s, baseUrl, withColumns ? await columnsByReplicas(ctx.db, s.replicas.map((r) => r.id)) : undefined));
      return Object.keys(COLUMNS).map((name) => ({
        name,
        description: DESCRIPTIONS[name],
        columns: COLUMNS[name],
        rows: async () => (name === 'table_column' ? (await rows(true)).table_column : (await (all ??= rows(false)))[name]),
      }));
    },
  };
}
