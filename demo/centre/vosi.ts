/** The VOSI documents of a demo centre: capabilities (with TAPRegExt), tables (with UCDs) and availability. */
import { rowCount, type CentreTable } from '../table.js';

/** Output and upload limits a centre declares and applies. */
export interface CentreLimits {
  /** Rows returned when the client gives no MAXREC. */
  maxRec: number;
  /** Rows returned at most, whatever MAXREC asks. */
  hardMaxRec: number;
  /** Bytes of one uploaded VOTable at most. */
  uploadLimitBytes: number;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const TAP_TYPE = { long: 'BIGINT', double: 'DOUBLE' } as const;

/** VOSI capabilities: TAP 1.1 with ADQL 2.0/2.1 and its geometry, the output formats, inline upload and the limits. */
export function capabilitiesXml(base: string, limits: CentreLimits): string {
  const simple = (id: string, sub: string) =>
    `<capability standardID="${id}"><interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="full">${esc(base)}/${sub}</accessURL></interface></capability>`;
  const geometry = ['POINT', 'CIRCLE', 'BOX', 'POLYGON', 'CONTAINS', 'INTERSECTS', 'DISTANCE', 'COORD1', 'COORD2']
    .map((f) => `<feature><form>${f}</form></feature>`)
    .join('');
  const format = (mime: string, aliases: string[]) => `<outputFormat><mime>${esc(mime)}</mime>${aliases.map((a) => `<alias>${a}</alias>`).join('')}</outputFormat>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
    ' xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">' +
    '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">' +
    `<interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">${esc(base)}</accessURL></interface>` +
    '<language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version><version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>' +
    `<description>ADQL 2.1, run on PostgreSQL</description><languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">${geometry}</languageFeatures></language>` +
    format('application/x-votable+xml', ['votable', 'votable/b2']) +
    format('application/x-votable+xml;serialization=TABLEDATA', ['votable/td']) +
    '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>' +
    '<retentionPeriod><default>3600</default><hard>3600</hard></retentionPeriod>' +
    `<outputLimit><default unit="row">${limits.maxRec}</default><hard unit="row">${limits.hardMaxRec}</hard></outputLimit>` +
    `<uploadLimit><default unit="byte">${limits.uploadLimitBytes}</default><hard unit="byte">${limits.uploadLimitBytes}</hard></uploadLimit>` +
    '</capability>' +
    simple('ivo://ivoa.net/std/VOSI#capabilities', 'capabilities') +
    simple('ivo://ivoa.net/std/VOSI#availability', 'availability') +
    simple('ivo://ivoa.net/std/VOSI#tables-1.1', 'tables') +
    '</vosi:capabilities>'
  );
}

/** The schema part of a `schema.table` name (public when it has none). */
export function splitTableName(name: string): [string, string] {
  const i = name.indexOf('.');
  return i < 0 ? ['public', name] : [name.slice(0, i), name.slice(i + 1)];
}

function tableXml(t: CentreTable, tag: string, namespaces = ''): string {
  const columns = t.columns
    .map(
      (c) =>
        `<column><name>${esc(c.name)}</name>${c.description ? `<description>${esc(c.description)}</description>` : ''}${c.unit ? `<unit>${esc(c.unit)}</unit>` : ''}` +
        `${c.ucd ? `<ucd>${esc(c.ucd)}</ucd>` : ''}<dataType xsi:type="vs:TAPType">${TAP_TYPE[c.datatype]}</dataType>` +
        `${/meta\.main/.test(c.ucd ?? '') ? '<flag>indexed</flag>' : ''}</column>`,
    )
    .join('');
  return `<${tag}${namespaces} type="table"><name>${esc(t.name)}</name>${t.description ? `<description>${esc(t.description)}</description>` : ''}<nrows>${rowCount(t)}</nrows>${columns}</${tag}>`;
}

const TABLES_NS = ' xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

/** VOSI tables 1.1: every table, in full (columns with units, UCDs and TAP types), by schema. */
export function tablesetXml(tables: readonly CentreTable[]): string {
  const schemas = new Map<string, CentreTable[]>();
  for (const t of tables) {
    const s = splitTableName(t.name)[0];
    schemas.set(s, [...(schemas.get(s) ?? []), t]);
  }
  const body = [...schemas].map(([s, ts]) => `<schema><name>${esc(s)}</name>${ts.map((t) => tableXml(t, 'table')).join('')}</schema>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<vosi:tableset${TABLES_NS}>${body}</vosi:tableset>`;
}

/** VOSI tables 1.1 for one table ({tables}/{name}). */
export function tableDetailXml(table: CentreTable): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${tableXml(table, 'vosi:table', TABLES_NS)}`;
}

/** VOSI availability: up, with a note. */
export function availabilityXml(note: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">' +
    `<vosi:available>true</vosi:available><vosi:note>${esc(note)}</vosi:note></vosi:availability>`
  );
}

/** A DALI error document (QUERY_STATUS=ERROR) saying `message`. */
export function errorVotable(message: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">' +
    `<RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">${esc(message)}</INFO></RESOURCE></VOTABLE>`
  );
}

/** XML text escaping, for the other documents of the centre. */
export { esc as escapeXml };
