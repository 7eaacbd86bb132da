import { ConstellationError } from '../../../registry/model/errors.js';
import type { Cell, FieldMeta, LinkMeta, OptionMeta, Row, ValuesMeta } from './types.js';
import { compileColumn, isDatatype } from './fields.js';
import { parseArraysize } from './arraysize.js';
import { Binary2Encoder } from './binary-encoder.js';
import { escapeAttr, escapeText, formatTableDataCell, formatTableDataRow } from './tabledata-writer.js';

/** A FIELD to write: a reader's FieldMeta works as is; `shape` is derived from `arraysize`. */
export type WritableField = Omit<FieldMeta, 'shape'> & { shape?: FieldMeta['shape'] };

/** A PARAM to write: `rawValue` as written, or else `value` formatted like a TABLEDATA cell. */
export type WritableParam = WritableField & { value?: Cell; rawValue?: string };

/** An INFO to write. */
export interface WritableInfo {
  name: string;
  value: string;
  content?: string;
}

/** The table to write; a reader's TableMeta is accepted. */
export interface WritableTable {
  name?: string;
  description?: string;
  fields: WritableField[];
  params?: WritableParam[];
}

/** Options of `writeVOTable`. */
export interface WriteOptions {
  /** Default BINARY2: compact, exact, and null-capable for every datatype. */
  serialization?: 'TABLEDATA' | 'BINARY2';
  /** INFOs at the start of the RESOURCE, e.g. { name: 'QUERY_STATUS', value: 'OK' }. */
  infos?: WritableInfo[];
  /** INFOs after the TABLE, decided once all rows are written (e.g. a trailing OVERFLOW). */
  trailingInfos?: WritableInfo[] | (() => WritableInfo[]);
  /** Approximate size of the yielded chunks in bytes (default 64 KiB). */
  chunkBytes?: number;
}

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"' +
  ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
  ' xsi:schemaLocation="http://www.ivoa.net/xml/VOTable/v1.3 http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd">\n';

/**
 * Writes one table as a VOTable 1.4 document, streamed as UTF-8 chunks so a large TAP upload
 * never has to sit in memory. Rows are read lazily from `rows` (sync or async). Values follow
 * the reader's representation (types.ts); a long column takes bigint or safe-integer numbers.
 * Throws ConstellationError INVALID_ARGUMENT for bad metadata or a value that does not fit
 * its column (naming the row and column).
 *
 * Null is written as an empty TD (TABLEDATA) or a null flag (BINARY2). TABLEDATA cannot tell
 * an empty string or empty array from null, so those read back as null from TABLEDATA only.
 */
export async function* writeVOTable(
  table: WritableTable,
  rows: Iterable<Row> | AsyncIterable<Row>,
  opts: WriteOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const serialization = opts.serialization ?? 'BINARY2';
  if (serialization !== 'BINARY2' && serialization !== 'TABLEDATA') {
    throw new ConstellationError('INVALID_ARGUMENT', `VOTable writer: unknown serialization "${String(serialization)}"`);
  }
  const chunkBytes = Math.max(1024, opts.chunkBytes ?? 64 * 1024);
  const fields = table.fields.map(checkField);
  const cols = fields.map((f, i) => compileColumn(f, i));
  yield utf8(`${HEADER}${headerXml(table, fields, opts)}<DATA><${serialization}>`);
  if (serialization === 'BINARY2') {
    yield utf8('<STREAM encoding="base64">\n');
    const enc = new Binary2Encoder(cols);
    let index = 0;
    for await (const row of rows) {
      enc.addRow(row, index++);
      if (enc.pending >= chunkBytes) yield enc.drain(false);
    }
    yield enc.drain(true);
    yield utf8('</STREAM>');
  } else {
    yield utf8('\n');
    let parts: string[] = [];
    let size = 0;
    let index = 0;
    for await (const row of rows) {
      const tr = formatTableDataRow(cols, row, index++);
      parts.push(tr);
      size += tr.length;
      if (size >= chunkBytes) {
        yield utf8(parts.join(''));
        parts = [];
        size = 0;
      }
    }
    if (parts.length > 0) yield utf8(parts.join(''));
  }
  const trailing = typeof opts.trailingInfos === 'function' ? opts.trailingInfos() : opts.trailingInfos ?? [];
  yield utf8(`</${serialization}></DATA>\n</TABLE>\n${trailing.map(infoXml).join('')}</RESOURCE>\n</VOTABLE>\n`);
}

/** Writes the whole document into one buffer (small tables, tests). */
export async function writeVOTableToBuffer(
  table: WritableTable,
  rows: Iterable<Row> | AsyncIterable<Row>,
  opts: WriteOptions = {},
): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of writeVOTable(table, rows, opts)) parts.push(chunk);
  return Buffer.concat(parts);
}

function checkField(f: WritableField, i: number): FieldMeta {
  const where = `VOTable writer: FIELD ${i + 1}${typeof f.name === 'string' ? ` "${f.name}"` : ''}`;
  if (typeof f.name !== 'string' || f.name === '') throw new ConstellationError('INVALID_ARGUMENT', `${where} needs a name`);
  if (typeof f.datatype !== 'string' || !isDatatype(f.datatype)) {
    throw new ConstellationError('INVALID_ARGUMENT', `${where} has unknown datatype "${String(f.datatype)}"`);
  }
  try {
    return { ...f, shape: parseArraysize(f.arraysize, `FIELD "${f.name}"`) };
  } catch (err) {
    throw new ConstellationError('INVALID_ARGUMENT', `${where}: ${(err as Error).message}`, { cause: err });
  }
}

function headerXml(table: WritableTable, fields: FieldMeta[], opts: WriteOptions): string {
  let out = '<RESOURCE type="results">\n';
  for (const info of opts.infos ?? []) out += infoXml(info);
  out += `<TABLE${attr('name', table.name)}>\n`;
  if (table.description !== undefined) out += `<DESCRIPTION>${escapeText(table.description)}</DESCRIPTION>\n`;
  for (const p of table.params ?? []) out += paramXml(p);
  for (const f of fields) out += fieldXml('FIELD', f, '');
  return out;
}

function fieldXml(element: 'FIELD' | 'PARAM', f: WritableField, extra: string): string {
  let out = `<${element}${attr('name', f.name)}${attr('ID', f.ID)}${attr('datatype', f.datatype)}${attr('arraysize', f.arraysize)}`;
  out += `${attr('width', f.width === undefined ? undefined : String(f.width))}${attr('precision', f.precision)}`;
  out += `${attr('unit', f.unit)}${attr('ucd', f.ucd)}${attr('utype', f.utype)}${attr('xtype', f.xtype)}${attr('ref', f.ref)}${extra}`;
  const children = descriptionXml(f.description) + valuesXml(f.values) + (f.links ?? []).map(linkXml).join('');
  return children === '' ? `${out}/>\n` : `${out}>${children}</${element}>\n`;
}

function paramXml(p: WritableParam): string {
  const field = checkField(p, 0);
  let raw = p.rawValue;
  if (raw === undefined) {
    raw = p.value === null || p.value === undefined ? '' : formatTableDataCell(compileColumn(field, 0), p.value, 0);
  }
  return fieldXml('PARAM', p, attr('value', raw));
}

function descriptionXml(d: string | undefined): string {
  return d === undefined ? '' : `<DESCRIPTION>${escapeText(d)}</DESCRIPTION>`;
}

function valuesXml(v: ValuesMeta | undefined): string {
  if (v === undefined) return '';
  let out = `<VALUES${attr('ID', v.ID)}${attr('type', v.type)}${attr('null', v.null)}${attr('ref', v.ref)}`;
  let children = '';
  if (v.min !== undefined) children += `<MIN${attr('value', v.min.value)}${attr('inclusive', v.min.inclusive ? undefined : 'no')}/>`;
  if (v.max !== undefined) children += `<MAX${attr('value', v.max.value)}${attr('inclusive', v.max.inclusive ? undefined : 'no')}/>`;
  children += (v.options ?? []).map(optionXml).join('');
  out += children === '' ? '/>' : `>${children}</VALUES>`;
  return out;
}

function optionXml(o: OptionMeta): string {
  const head = `<OPTION${attr('name', o.name)}${attr('value', o.value)}`;
  return o.options === undefined || o.options.length === 0 ? `${head}/>` : `${head}>${o.options.map(optionXml).join('')}</OPTION>`;
}

function linkXml(l: LinkMeta): string {
  return `<LINK${attr('ID', l.ID)}${attr('content-role', l.contentRole)}${attr('content-type', l.contentType)}${attr('title', l.title)}${attr('value', l.value)}${attr('href', l.href)}${attr('action', l.action)}/>`;
}

function infoXml(i: WritableInfo): string {
  const head = `<INFO${attr('name', i.name)}${attr('value', i.value)}`;
  return i.content === undefined || i.content === '' ? `${head}/>\n` : `${head}>${escapeText(i.content)}</INFO>\n`;
}

function attr(name: string, value: string | undefined): string {
  return value === undefined ? '' : ` ${name}="${escapeAttr(value)}"`;
}

function utf8(s: string): Uint8Array {
  return Buffer.from(s, 'utf8');
}
