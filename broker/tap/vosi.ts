/** VOSI 1.1 documents of the facade: capabilities (TAPRegExt 1.0), tables (VODataService 1.2) and availability. */
import type { TapSchemaEntry } from './catalogue.js';
import { OUTPUT_FORMATS } from './formats.js';
import { DEFAULT_MAXREC, HARD_MAXREC, UPLOAD_MAX_BYTES } from './request.js';
import { xmlEscape } from './xml.js';

/** The capabilities document; `base` is the facade's absolute URL (…/tap). */
export function capabilitiesXml(base: string): string {
  const b = xmlEscape(base);
  const formats = OUTPUT_FORMATS.map((f) => `<outputFormat><mime>${xmlEscape(f.mime)}</mime>${f.aliases.map((a) => `<alias>${a}</alias>`).join('')}</outputFormat>`).join('');
  const vosi = (std: string, path: string) =>
    `<capability standardID="ivo://ivoa.net/std/VOSI#${std}"><interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="full">${b}/${path}</accessURL></interface></capability>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
    ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">' +
    '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">' +
    `<interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">${b}</accessURL></interface>` +
    '<language><name>ADQL</name>' +
    '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version><version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>' +
    '<description>ADQL over the canonical datasets of the federation; each query runs at one member site that holds every table it reads</description>' +
    '<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">' +
    ['POINT', 'CIRCLE', 'BOX', 'POLYGON', 'CONTAINS', 'INTERSECTS', 'DISTANCE'].map((f) => `<feature><form>${f}</form></feature>`).join('') +
    '</languageFeatures></language>' +
    formats +
    '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>' +
    '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-http"/>' +
    '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-https"/>' +
    '<retentionPeriod><default>604800</default></retentionPeriod>' +
    '<executionDuration><default>3600</default></executionDuration>' +
    `<outputLimit><default unit="row">${DEFAULT_MAXREC}</default><hard unit="row">${HARD_MAXREC}</hard></outputLimit>` +
    `<uploadLimit><hard unit="byte">${UPLOAD_MAX_BYTES}</hard></uploadLimit>` +
    '</capability>' +
    vosi('capabilities', 'capabilities') +
    vosi('availability', 'availability') +
    vosi('tables', 'tables') +
    `<capability standardID="ivo://ivoa.net/std/DALI#examples"><interface xsi:type="vr:WebBrowser" xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"><accessURL use="full">${b}/examples</accessURL></interface></capability>` +
    '</vosi:capabilities>\n'
  );
}

/** The tableset: every schema the caller may see, with its tables and columns. */
export function tablesXml(schemas: readonly TapSchemaEntry[]): string {
  const col = (c: TapSchemaEntry['tables'][number]['columns'][number]) =>
    '<column>' +
    `<name>${xmlEscape(c.name)}</name>` +
    (c.description ? `<description>${xmlEscape(c.description)}</description>` : '') +
    (c.unit ? `<unit>${xmlEscape(c.unit)}</unit>` : '') +
    (c.ucd ? `<ucd>${xmlEscape(c.ucd)}</ucd>` : '') +
    `<dataType xsi:type="vs:VOTableType"${c.arraysize ? ` arraysize="${xmlEscape(c.arraysize)}"` : ''}${c.xtype ? ` extendedType="${xmlEscape(c.xtype)}"` : ''}>${xmlEscape(c.datatype)}</dataType>` +
    (c.indexed ? '<flag>indexed</flag>' : '') +
    (c.principal ? '<flag>principal</flag>' : '') +
    (c.std ? '<flag>std</flag>' : '') +
    '</column>';
  const fk = (k: { target: string; columns: { from: string; target: string }[] }) =>
    `<foreignKey><targetTable>${xmlEscape(k.target)}</targetTable>${k.columns.map((c) => `<fkColumn><fromColumn>${xmlEscape(c.from)}</fromColumn><targetColumn>${xmlEscape(c.target)}</targetColumn></fkColumn>`).join('')}</foreignKey>`;
  const body = schemas
    .map((s) =>
      `<schema><name>${xmlEscape(s.name)}</name>${s.description ? `<description>${xmlEscape(s.description)}</description>` : ''}` +
      s.tables.map((t) => `<table type="${t.type}"><name>${xmlEscape(t.name)}</name>${t.description ? `<description>${xmlEscape(t.description)}</description>` : ''}${t.columns.map(col).join('')}${(t.foreignKeys ?? []).map(fk).join('')}</table>`).join('') +
      '</schema>')
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
    body +
    '</vosi:tableset>\n'
  );
}

/** The availability document: up, with when this broker started. */
export function availabilityXml(available: boolean, upSince: Date, note: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">' +
    `<vosi:available>${available}</vosi:available><vosi:upSince>${upSince.toISOString()}</vosi:upSince><vosi:note>${xmlEscape(note)}</vosi:note>` +
    '</vosi:availability>\n'
  );
}
