/**
 * The registry as IVOA RegTAP 1.1 (the `rr` schema), so pyvo.registry.search, TOPCAT's
 * registry window and any RegTAP client find the federation's holdings through /tap. Each rr
 * table is one SELECT over the registry's own tables, for the caller, that a query reads in
 * place (nothing is copied, and the query's conditions and LIMIT reach the registry):
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
import { ConstellationError } from '../../registry/model/errors.js';
import { LOCAL_MAX_LOAD_ROWS, sqlLiteral, sqlTables, unionSql, type LocalColumn, type LocalKey, type LocalSchema, type LocalTable, type SchemaContext, type SqlBranch } from './local-schema.js';
import { normalisedTypeSql, votableTypeSql } from './tap-schema.js';
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

const FEDERATION_TITLE = 'Constellation federation TAP service';
const FEDERATION_DESCRIPTION = 'One TAP service for the whole federation: every canonical dataset of its member sites, queried by its canonical name and run at the site that holds it; also a RegTAP 1.1 registry of the federation.';

// ---- the rr tables as SQL over the registry --------------------------------------------------

const lit = sqlLiteral;

/** A map of ours as a CASE over `expr` (NULL when no key matches). */
const caseOf = (expr: string, map: Record<string, string>) => `CASE ${expr} ${Object.entries(map).map(([k, v]) => `WHEN ${lit(k)} THEN ${lit(v)}`).join(' ')} ELSE NULL END`;

/** Characters encodeURIComponent leaves as they are. */
const URI_SAFE = `[A-Za-z0-9_.!~*''()-]`;

/**
 * encodeURIComponent(lower(x)) in SQL. Registry ids are ASCII (the capability schema's patterns),
 * so the per-character branch (UTF-8 bytes as %XX) is reached only by a service id with a colon.
 */
function uriPart(x: string): string {
  const v = `lower(${x})`;
  return `CASE WHEN ${v} ~ '^${URI_SAFE}*$' THEN ${v} ELSE (SELECT string_agg(CASE WHEN ch ~ '^${URI_SAFE}$' THEN ch ELSE upper(regexp_replace(encode(convert_to(ch, 'UTF8'), 'hex'), '(..)', E'%\\\\1', 'g')) END, '' ORDER BY i) FROM regexp_split_to_table(${v}, '') WITH ORDINALITY AS chars(ch, i)) END`;
}

/** The lower-case ivoid of a resource under ivo://constellation, from SQL expressions (as ivoids are written in JS: each part encodeURIComponent'd). */
const ivoidSql = (...parts: string[]) => `'ivo://constellation/' || ${parts.map(uriPart).join(` || '/' || `)}`;

/** A timestamp as Date.toISOString writes it. */
const isoSql = (x: string) => `to_char(${x} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** An rr table as the UNION ALL of its branches. */
const unionOf = (table: string, branches: readonly SqlBranch[]) => unionSql(`rr.${table}`, COLUMNS[table], branches);

/**
 * One rr table for one caller, in SQL: `caller.visible()` is their groups as text[] (NULL: every
 * replica), `caller.baseUrl()` this service's URL; each a bind parameter made when first used
 * (PostgreSQL refuses a parameter the statement never uses).
 */
function rrSql(table: string, caller: { visible(): string; baseUrl(): string }): string {
  const services = 'services svc JOIN sites s ON s.id = svc.site_id';
  const replicas = `replicas r JOIN sites s ON s.id = r.site_id JOIN datasets d ON d.id = r.dataset_id`;
  const isVisible = () => `(${caller.visible()} IS NULL OR r.public OR r.groups && ${caller.visible()})`;
  const fed = { ivoid: lit(FEDERATION_IVOID) };
  const svc = { ivoid: ivoidSql('s.id', 'svc.id'), type: 'upper(svc.type)' };
  const rep = { ivoid: ivoidSql('s.id', 'r.service_id', 'r.dataset_id'), title: 'COALESCE(r.title, d.title, r.dataset_id)', about: 'COALESCE(r.description, d.description)' };
  const std = `lower(COALESCE(svc.standard_id, ${caseOf('svc.type', STANDARD_IDS)}))`;
  const publisher = (ivoid: string) => ({ ivoid, role_name: 's.name', role_ivoid: ivoidSql('s.id'), base_role: lit('publisher') });
  const at = isoSql('s.published_at');
  const intf = (ivoid: string, url: string, version: string, authenticated: string) => ({
    ivoid, cap_index: '1', intf_index: '1', intf_type: lit('vs:paramhttp'), intf_role: lit('std'), std_version: version, url_use: lit('base'), access_url: url, authenticated_only: authenticated,
  });
  const common = { content_level: lit('research'), harvested_from: lit(FEDERATION_IVOID) };
  switch (table) {
    case 'resource':
      return unionOf(table, [
        { cells: { ...fed, ...common, res_type: lit('vs:catalogservice'), short_name: lit('constellation'), res_title: lit(FEDERATION_TITLE), res_description: lit(FEDERATION_DESCRIPTION), reference_url: caller.baseUrl(), content_type: lit('Catalog') } },
        { from: services, cells: { ...common, ivoid: svc.ivoid, res_type: `CASE WHEN svc.type = 'tap' THEN 'vs:catalogservice' ELSE 'vs:dataservice' END`, created: at, updated: at, short_name: 'left(s.id, 16)',
          res_title: `COALESCE(svc.title, s.name || ' ' || ${svc.type} || ' service')`,
          res_description: `'The ' || ${svc.type} || ' service of ' || s.name || ' (site ' || s.id || '), a member of the Constellation federation; its own endpoint, reached directly.'`,
          reference_url: 's.url', creator_seq: 's.name' } },
        { from: `${replicas} WHERE ${isVisible()}`, cells: { ...common, ivoid: rep.ivoid, res_type: lit('vs:catalogresource'), created: at, updated: at, short_name: 'left(r.dataset_id, 16)',
          res_title: `${rep.title} || ' (' || s.name || ')'`,
          res_description: `CASE WHEN ${rep.about} <> '' THEN ${rep.about} || ' ' ELSE '' END || 'The table ' || r.dataset_id || ' as held by ' || s.name || ' (site ' || s.id || ', local table ' || r.local_table || '); query it as ' || r.dataset_id || ${lit(" through the federation's TAP service, which runs the query at a site holding it.")}`,
          reference_url: 's.url', creator_seq: 's.name', content_type: lit('Catalog') } },
      ]);
    case 'capability':
      return unionOf(table, [
        { cells: { ...fed, cap_index: '1', cap_type: lit('tr:tableaccess'), cap_description: lit('the federation as one TAP service'), standard_id: lit(STANDARD_IDS.tap) } },
        { from: services, cells: { ivoid: svc.ivoid, cap_index: '1', cap_type: caseOf('svc.type', CAP_TYPES), cap_description: `svc.type || ' service of site ' || s.id`, standard_id: std } },
        { from: `${replicas} WHERE ${isVisible()}`, cells: { ivoid: rep.ivoid, cap_index: '1', cap_type: lit('tr:tableaccess'), cap_description: `${lit("the federation's TAP service, where this table is ")} || r.dataset_id`, standard_id: lit(STANDARD_IDS.tap) } },
      ]);
    case 'interface':
      return unionOf(table, [
        { cells: intf(fed.ivoid, caller.baseUrl(), lit('1.1'), '0') },
        { from: services, cells: intf(svc.ivoid, 'svc.url', 'NULL', `CASE WHEN cardinality(svc.auth) > 0 AND NOT ('anonymous' = ANY (svc.auth)) THEN 1 ELSE 0 END`) },
        { from: `${replicas} WHERE ${isVisible()}`, cells: intf(rep.ivoid, caller.baseUrl(), lit('1.1'), 'CASE WHEN r.public THEN 0 ELSE 1 END') },
      ]);
    case 'res_table':
      return unionOf(table, [{ from: `${replicas} WHERE ${isVisible()}`, cells: { ivoid: rep.ivoid, table_index: '1', table_name: 'r.dataset_id', table_title: rep.title, table_description: rep.about, table_type: lit('base_table'), nrows: 'r.rows' } }]);
    case 'table_column': {
      const type = votableTypeSql('vt.t', 'c.arraysize');
      const normalised = normalisedTypeSql('c.datatype');
      return unionOf(table, [{
        from: `${replicas} JOIN replica_columns c ON c.replica_id = r.id CROSS JOIN LATERAL (SELECT ${normalised} AS t) vt WHERE ${isVisible()}`,
        cells: { ivoid: rep.ivoid, table_index: '1', name: 'COALESCE(c.canonical, lower(c.name))', ucd: 'c.ucd', unit: 'c.unit', datatype: type.datatype, extended_type: `COALESCE(c.xtype, ${type.xtype})`,
          arraysize: type.arraysize, type_system: lit('vs:votabletype'), flag: `CASE WHEN c.indexed THEN 'indexed#nullable' ELSE 'nullable' END`, column_description: 'c.description' },
      }]);
    }
    case 'res_detail':
      return unionOf(table, [
        { cells: { ...fed, cap_index: '1', detail_xpath: lit('/capability/dataModel/@ivo-id'), detail_value: lit('ivo://ivoa.net/std/regtap#1.1') } },
        { cells: { ...fed, cap_index: '1', detail_xpath: lit('/capability/dataModel'), detail_value: lit('Registry 1.1') } },
      ]);
    case 'res_subject':
      return unionOf(table, [{ from: `${replicas} WHERE ${isVisible()}`, cells: { ivoid: rep.ivoid, res_subject: `split_part(r.dataset_id, '.', 1)` } }]);
    case 'res_role':
      return unionOf(table, [{ from: services, cells: publisher(svc.ivoid) }, { from: `${replicas} WHERE ${isVisible()}`, cells: publisher(rep.ivoid) }]);
    case 'stc_spatial':
      return unionOf(table, [{ from: `${replicas} JOIN coverage cv ON cv.replica_id = r.id WHERE ${isVisible()}`, cells: { ivoid: rep.ivoid, coverage: 'cv.moc', ref_system_name: lit('ICRS') } }]);
    default:
      throw new Error(`no SQL for rr.${table}`);
  }
}

// ---- spatial constraints: the coverages they are decided against ---------------------------

/** Most bytes of MOC text a spatial constraint is decided against (each distinct MOC is parsed here). */
export const MAX_COVERAGE_BYTES = 64 * 1024 * 1024;

/**
 * Every distinct coverage the caller can see, counted first: more than the load limit, or more
 * than MAX_COVERAGE_BYTES of MOC text, is QUERY_TOO_COSTLY before any is read.
 */
async function visibleCoverages(ctx: SchemaContext): Promise<string[]> {
  const visible = ctx.visibility === 'all' ? null : [...ctx.visibility];
  const distinct = `SELECT DISTINCT cv.moc FROM coverage cv JOIN replicas r ON r.id = cv.replica_id WHERE ($1::text[] IS NULL OR r.public OR r.groups && $1::text[])`;
  const { rows: [size] } = await ctx.db.query<{ n: number; bytes: number }>(`SELECT count(*)::int AS n, COALESCE(sum(octet_length(moc)), 0)::float8 AS bytes FROM (${distinct}) m`, [visible]);
  const limit = ctx.maxLoadRows ?? LOCAL_MAX_LOAD_ROWS;
  if (size.n > limit || size.bytes > MAX_COVERAGE_BYTES) {
    throw new ConstellationError('QUERY_TOO_COSTLY', `QUERY constrains rr.stc_spatial.coverage, which holds ${size.n} distinct MOCs (${size.bytes} bytes); a spatial constraint is decided here against at most ${limit} MOCs of at most ${MAX_COVERAGE_BYTES} bytes in all: constrain the query another way`);
  }
  return (await ctx.db.query<{ moc: string }>(distinct, [visible])).rows.map((r) => r.moc);
}

/** `make`'s value, made on the first call only. */
function once(make: () => string): () => string {
  let made: string | undefined;
  return () => (made ??= make());
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
      return rewriteSpatial(query, await visibleCoverages(ctx));
    },
    tables(ctx: SchemaContext): LocalTable[] {
      const visible = ctx.visibility === 'all' ? null : ctx.visibility;
      return sqlTables(COLUMNS, DESCRIPTIONS, (name, param) => rrSql(name, { visible: once(() => param(visible, 'text[]')), baseUrl: once(() => param(ctx.baseUrl ?? '/tap', 'text')) }));
    },
  };
}
