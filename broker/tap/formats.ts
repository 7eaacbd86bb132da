/**
 * RESPONSEFORMAT (DALI, TAP 1.1): which formats the facade answers in, and the conversion of a
 * site's VOTable into each, streamed one batch of rows at a time (constant memory).
 */
import { readVOTable, writeVOTable, type Row, type TableMeta, type VOTableEvent, type WritableInfo } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import { textOnThread } from '../jobs/text-threads.js';

/** A result format the facade writes. */
export interface ResponseFormat {
  kind: 'votable' | 'csv' | 'tsv' | 'json';
  /** For VOTable: the serialization asked for; undefined passes the site's VOTable through as it is. */
  serialization?: 'TABLEDATA' | 'BINARY2';
  contentType: string;
}

/** Every format, as TAPRegExt advertises it: media type and aliases. */
export const OUTPUT_FORMATS: readonly { mime: string; aliases: string[]; format: ResponseFormat }[] = [
  { mime: 'application/x-votable+xml', aliases: ['votable'], format: { kind: 'votable', contentType: 'application/x-votable+xml' } },
  { mime: 'application/x-votable+xml;serialization=BINARY2', aliases: ['votable/b2', 'votableb2'], format: { kind: 'votable', serialization: 'BINARY2', contentType: 'application/x-votable+xml;serialization=BINARY2' } },
  { mime: 'application/x-votable+xml;serialization=TABLEDATA', aliases: ['votable/td', 'votabletd'], format: { kind: 'votable', serialization: 'TABLEDATA', contentType: 'application/x-votable+xml;serialization=TABLEDATA' } },
  { mime: 'text/csv;header=present', aliases: ['csv'], format: { kind: 'csv', contentType: 'text/csv;header=present' } },
  { mime: 'text/tab-separated-values', aliases: ['tsv'], format: { kind: 'tsv', contentType: 'text/tab-separated-values' } },
  { mime: 'application/json', aliases: ['json'], format: { kind: 'json', contentType: 'application/json' } },
];

/** The format a RESPONSEFORMAT (or FORMAT) value names; absent means VOTable; anything else is INVALID_ARGUMENT listing what is known. */
export function responseFormatOf(value: string | undefined): ResponseFormat {
  if (value === undefined || value.trim() === '') return OUTPUT_FORMATS[0].format;
  const v = value.trim().toLowerCase().replace(/\s+/g, '');
  const [type, ...rest] = v.split(';');
  const params = new Map(rest.map((p) => p.split('=') as [string, string]));
  for (const f of OUTPUT_FORMATS) if (f.aliases.includes(v)) return f.format;
  if (type === 'application/x-votable+xml' || type === 'text/xml' || type === 'application/xml' || type === 'votable') {
    const s = params.get('serialization');
    if (s === undefined) return OUTPUT_FORMATS[0].format;
    if (s === 'binary2') return OUTPUT_FORMATS[1].format;
    if (s === 'tabledata') return OUTPUT_FORMATS[2].format;
  }
  if (type === 'text/csv') return OUTPUT_FORMATS[3].format;
  if (type === 'text/tab-separated-values') return OUTPUT_FORMATS[4].format;
  if (type === 'application/json') return OUTPUT_FORMATS[5].format;
  throw invalidArgument('RESPONSEFORMAT', `"${value.slice(0, 100)}" is not a format this service writes; use one of ${OUTPUT_FORMATS.map((f) => f.mime).join(', ')} (or ${OUTPUT_FORMATS.flatMap((f) => f.aliases).join(', ')})`);
}

/** A site's VOTable `body` in `format`, as a byte stream (CSV, TSV and JSON by textOnThread; TSV writes tabs and line breaks in text as spaces). */
export function convertTo(body: AsyncIterable<Uint8Array>, format: ResponseFormat): AsyncIterable<Uint8Array> {
  if (format.kind === 'votable') return format.serialization ? reencode(body, format.serialization) : body;
  return textOnThread(body, format.kind);
}

/** The first table of a VOTable written again in `serialization`, its OVERFLOW status kept (DALI: an INFO after the table). */
async function* reencode(body: AsyncIterable<Uint8Array>, serialization: 'TABLEDATA' | 'BINARY2'): AsyncIterable<Uint8Array> {
  const events = readVOTable(body)[Symbol.asyncIterator]();
  let table: TableMeta | undefined;
  const leading: WritableInfo[] = [];
  while (!table) {
    const next = await events.next();
    if (next.done) throw new ConstellationError('UPSTREAM_MALFORMED', 'the result VOTable has no table');
    if (next.value.type === 'table') table = next.value.table;
  }
  for (const info of table.resource.infos) if (info.name !== 'QUERY_STATUS') leading.push({ name: info.name, value: info.value, ...(info.content ? { content: info.content } : {}) });
  let overflow = false;
  const rows = async function* (): AsyncIterable<Row> {
    for (;;) {
      const next: IteratorResult<VOTableEvent> = await events.next();
      if (next.done) return;
      const ev = next.value;
      if (ev.type === 'rows' && ev.table === 0) yield* ev.rows;
      else if (ev.type === 'info' && ev.info.name === 'QUERY_STATUS' && ev.info.value === 'OVERFLOW') overflow = true;
      else if (ev.type === 'end' && ev.overflow) overflow = true;
    }
  };
  yield* writeVOTable(
    { ...(table.name ? { name: table.name } : {}), fields: table.fields, params: table.params },
    rows(),
    { serialization, infos: [{ name: 'QUERY_STATUS', value: 'OK' }, ...leading], trailingInfos: () => (overflow ? [{ name: 'QUERY_STATUS', value: 'OVERFLOW' }] : []) },
  );
}
