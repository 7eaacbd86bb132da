import { SaxesParser, type SaxesTagNS } from 'saxes';
import { isConstellationError } from '../../../registry/model/errors.js';
import type { InfoMeta, ParamMeta, QueryStatus, ReadOptions, ResourceMeta, Row, TableMeta, VOTableEvent } from './types.js';
import { compileColumn } from './fields.js';
import { malformed } from './errors.js';
import { decoderFor, sniffReady, type DocumentDecoder } from './encoding.js';
import { MetadataBuilder } from './metadata.js';
import { StreamScanner } from './stream-reader.js';
import { TableDataScanner } from './tabledata-reader.js';
import { TextTableWriter } from './text-table.js';
import { BinaryTextRows } from './binary-text.js';
import { XmlSplitter } from './xml-splitter.js';
import { XmlBudget } from '../xml/limits.js';

/** Anything that yields the document's bytes (undici body, fs.createReadStream) or text. */
export type VOTableSource =
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array | string>
  | Uint8Array
  | string;

/**
 * Reads a VOTable as a stream of events (see `VOTableEvent`): metadata first, then rows in
 * batches, in memory bounded by the batch size and the largest row, whatever the row count.
 *
 * Throws ConstellationError:
 *  - UPSTREAM when an INFO name="QUERY_STATUS" value="ERROR" appears anywhere; the INFO text
 *    is the message and `violations[0].message`. Rows before a trailing ERROR INFO may have
 *    been yielded already; the error means they must be discarded.
 *  - UPSTREAM_MALFORMED for malformed XML, a document that ends early (inside TABLEDATA, in
 *    the middle of a binary row, before </VOTABLE>), a cell that does not fit its datatype
 *    (unless `invalidValues: 'null'`), unsupported features (FITS, STREAM href), and
 *    elements nested deeper than XML_MAX_DEPTH (refused at the first such start tag).
 */
export async function* readVOTable(source: VOTableSource, opts: ReadOptions = {}): AsyncGenerator<VOTableEvent, void, undefined> {
  const reader = new VOTableReader(opts);
  for await (const chunk of chunksOf(source)) {
    reader.push(chunk);
    if (reader.events.length > 0) yield* reader.take();
  }
  reader.end();
  yield* reader.take();
}

/** The whole document in memory: for tests and small responses. */
export interface VOTableDocument {
  tables: { meta: TableMeta; rows: Row[] }[];
  resources: ResourceMeta[];
  infos: InfoMeta[];
  params: ParamMeta[];
  status: QueryStatus | null;
  overflow: boolean;
  version?: string;
}

/** Reads a whole VOTable into memory (same errors as `readVOTable`). */
export async function readVOTableToArray(source: VOTableSource, opts: ReadOptions = {}): Promise<VOTableDocument> {
  const doc: VOTableDocument = { tables: [], resources: [], infos: [], params: [], status: null, overflow: false };
  for await (const ev of readVOTable(source, opts)) {
    switch (ev.type) {
      case 'table':
        doc.tables.push({ meta: ev.table, rows: [] });
        break;
      case 'rows': {
        // Every TABLE has exactly one `table` event, in document order, so index = position.
        const rows = doc.tables[ev.table].rows;
        for (const r of ev.rows) rows.push(r);
        break;
      }
      case 'resource':
        doc.resources.push(ev.resource);
        break;
      case 'end':
        doc.infos = ev.infos;
        doc.params = ev.params;
        doc.status = ev.status;
        doc.overflow = ev.overflow;
        if (ev.version !== undefined) doc.version = ev.version;
        break;
      default:
        break;
    }
  }
  return doc;
}

/** Largest piece handed to the reader at once: bounds the rows decoded between two yields. */
const PIECE = 1 << 20;

/** The source's pieces, none longer than PIECE, each read at once by the reader. */
export async function* chunksOf(source: VOTableSource): AsyncIterable<Uint8Array | string> {
  if (typeof source === 'string' || source instanceof Uint8Array) {
    yield* pieces(source);
    return;
  }
  for await (const chunk of source) yield* pieces(chunk);
}

function* pieces(chunk: Uint8Array | string): Generator<Uint8Array | string> {
  if (chunk.length <= PIECE) {
    yield chunk;
    return;
  }
  for (let i = 0; i < chunk.length; ) {
    let end = Math.min(chunk.length, i + PIECE);
    // Keep a surrogate pair together so no piece of text ends half a character.
    if (typeof chunk === 'string' && end < chunk.length && (chunk.charCodeAt(end - 1) & 0xfc00) === 0xd800) end++;
    yield typeof chunk === 'string' ? chunk.slice(i, end) : chunk.subarray(i, end);
    i = end;
  }
}

type DataScanner = TableDataScanner | StreamScanner;

/** The push-driven core: bytes in, events out; `readVOTable` wraps it as an async generator. */
export class VOTableReader {
  events: VOTableEvent[] = [];
  private readonly batchSize: number;
  private readonly invalidValues: 'error' | 'null';
  private readonly maxCellBytes: number;
  private readonly textFormat: ReadOptions['text'];
  /** In text mode, the writer of the table whose data is being read. */
  private textWriter: TextTableWriter | null = null;
  private readonly sax: SaxesParser<{ xmlns: true; position: true }>;
  private readonly meta: MetadataBuilder;
  private readonly splitter = new XmlSplitter();
  // Depth only: the metadata is streamed, and the rows are not elements the parser sees.
  private readonly budget = new XmlBudget('VOTable');
  private decoder: DocumentDecoder | null = null;
  private head: Uint8Array | null = null;
  private pendingCR = false;
  private started = false;
  private data: DataScanner | null = null;
  private dataQName = '';
  private requested: { kind: 'TABLEDATA' | 'STREAM'; qname: string; meta: TableMeta; binary2: boolean } | null = null;
  private batch: Row[] = [];
  private batchTable = 0;
  private rowCount = 0;
  private dataTables = 0;
  private readonly share: { every: number; phase: number };
  /** The input piece being read (see ReadOptions.textShare). */
  private piece = 0;

  constructor(opts: ReadOptions) {
    this.batchSize = Math.max(1, opts.batchSize ?? 1000);
    this.invalidValues = opts.invalidValues ?? 'error';
    this.maxCellBytes = opts.maxCellBytes ?? 64 * 1024 * 1024;
    this.textFormat = opts.text;
    this.share = opts.textShare ?? { every: 1, phase: 0 };
    this.sax = new SaxesParser({ xmlns: true, position: true });
    this.meta = new MetadataBuilder({
      table: (table) => this.events.push({ type: 'table', table }),
      startData: (kind, qname, meta, binary2) => {
        this.requested = { kind, qname, meta, binary2 };
      },
      info: (info) => this.events.push({ type: 'info', info }),
      resource: (resource) => {
        this.flushRows();
        this.events.push({ type: 'resource', resource });
      },
    });
    // Checked before saxes resolves the tag's namespaces, whose cost grows with the depth.
    this.sax.on('opentagstart', () => this.budget.open(() => this.where()));
    this.sax.on('opentag', (tag) => this.meta.open(tag as SaxesTagNS));
    this.sax.on('closetag', (tag) => {
      this.budget.close();
      this.meta.close(tag as SaxesTagNS);
    });
    this.sax.on('text', (t) => this.meta.text(t));
    this.sax.on('cdata', (t) => this.meta.text(t));
  }

  /** Where the XML parser is; its lines count only markup outside data sections, so after one, say that. */
  private where(): string {
    return this.dataTables === 0 ? `line ${this.sax.line}, column ${this.sax.column}` : `a start tag after the data of table ${this.dataTables}`;
  }

  /** Events produced so far, handed over once. */
  take(): VOTableEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** Whether this reader writes the rows the current piece completes (ReadOptions.textShare). */
  private writesPiece(): boolean {
    return this.piece % this.share.every === this.share.phase;
  }

  /** Reads one piece of input; the events it completes wait in `events`. */
  push(chunk: Uint8Array | string): void {
    if (typeof chunk === 'string') {
      if (this.head !== null) this.startDecoding();
      // A byte-order mark survives in text that was decoded without stripping it.
      if (!this.started && chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      this.started = true;
      this.text(chunk);
    } else if (this.decoder !== null) {
      this.text(this.decoder.decode(chunk, { stream: true }));
    } else {
      // Hold the first bytes until the encoding can be told from the XML declaration.
      this.head = this.head === null ? chunk : concat(this.head, chunk);
      if (sniffReady(this.head)) this.startDecoding();
    }
    this.flushRows();
    this.piece++;
  }

  /** The input is over: checks the document is complete and queues the `end` event. */
  end(): void {
    if (this.head !== null) this.startDecoding();
    if (this.decoder !== null) this.text(this.decoder.decode());
    if (this.pendingCR) {
      this.pendingCR = false;
      this.process('\n');
    }
    if (this.data !== null) {
      const where = this.dataQName.endsWith('TABLEDATA') ? 'TABLEDATA' : 'a binary STREAM';
      throw malformed(`the document ends inside ${where}, ${this.data.describe()}: truncated`);
    }
    if (!this.meta.sawRoot) throw malformed('the document is empty (no <VOTABLE> element)');
    if (!this.meta.rootClosed) throw malformed('the document ends before </VOTABLE>: truncated');
    this.saxCall(() => this.sax.close());
    this.flushRows();
    this.events.push({
      type: 'end',
      status: this.meta.status,
      overflow: this.meta.overflow,
      infos: this.meta.infos,
      params: this.meta.params,
      tableCount: this.meta.tables,
      rowCount: this.rowCount,
      ...(this.meta.version !== undefined ? { version: this.meta.version } : {}),
    });
  }

  private startDecoding(): void {
    const head = this.head ?? new Uint8Array(0);
    this.head = null;
    this.started = true;
    this.decoder = decoderFor(head);
    this.text(this.decoder.decode(head, { stream: true }));
  }

  /** XML line-end normalisation (CR LF and lone CR become LF) before anything reads the text. */
  private text(text: string): void {
    if (this.pendingCR) {
      text = `\r${text}`;
      this.pendingCR = false;
    }
    if (text.length === 0) return;
    if (text.charCodeAt(text.length - 1) === 13) {
      this.pendingCR = true;
      text = text.slice(0, -1);
    }
    if (text.indexOf('\r') >= 0) text = text.replace(/\r\n?/g, '\n');
    this.process(text);
  }

  private process(text: string): void {
    let i = 0;
    const n = text.length;
    while (i < n) {
      if (this.data === null) {
        const k = this.splitter.scan(text, i);
        const stop = k < 0 ? n : k;
        this.saxWrite(text.slice(i, stop));
        i = stop;
        if (this.requested !== null) {
          if (k < 0) throw malformed('internal error: data section start not found by the splitter');
          this.startData();
        }
      } else {
        const k = this.data.scan(text, i);
        if (k < 0) return;
        i = k;
        this.endData();
      }
    }
  }

  private startData(): void {
    const req = this.requested!;
    this.requested = null;
    const cols = req.meta.fields.map((f, i) => compileColumn(f, i));
    const opts = { invalidValues: this.invalidValues, maxCellBytes: this.maxCellBytes };
    const table = req.meta.index;
    const onRow = (row: Row): void => {
      if (this.batchTable !== table) {
        this.flushRows();
        this.batchTable = table;
      }
      this.batch.push(row);
      if (this.batch.length >= this.batchSize) this.flushRows();
    };
    this.dataQName = req.qname;
    this.dataTables++;
    if (this.textFormat === undefined) {
      this.data = req.kind === 'TABLEDATA' ? new TableDataScanner(cols, opts, onRow, req.qname) : new StreamScanner(cols, req.binary2, opts, onRow);
      return;
    }
    this.flushRows();
    const text = new TextTableWriter(this.textFormat, req.meta.fields);
    this.textWriter = text;
    this.batchTable = table;
    if (req.kind === 'TABLEDATA') {
      this.data = new TableDataScanner(cols, opts, onRow, req.qname);
    } else {
      const rows = new BinaryTextRows(cols, req.binary2, text, this.invalidValues);
      this.data = new StreamScanner(cols, req.binary2, opts, onRow, (buf, view, starts, count, first) => {
        if (this.writesPiece()) rows.write(buf, view, starts, count, first);
        else text.skipRows(count);
      });
    }
  }

  private endData(): void {
    this.rowCount += this.data!.rowCount;
    this.data = null;
    this.flushRows();
    this.textWriter = null;
    // The XML parser saw the start tag; give it the matching end tag.
    this.saxWrite(`</${this.dataQName}>`);
  }

  private flushRows(): void {
    const text = this.textWriter;
    if (text !== null) {
      // Text mode: binary rows are in the writer already, TABLEDATA rows are written now.
      if (this.batch.length > 0 && this.writesPiece()) text.appendRows(this.batch);
      else text.skipRows(this.batch.length);
      this.batch = [];
      const chunk = text.take();
      if (chunk.length > 0) this.events.push({ type: 'text', table: this.batchTable, chunk });
      return;
    }
    if (this.batch.length === 0) return;
    this.events.push({ type: 'rows', table: this.batchTable, rows: this.batch });
    this.batch = [];
  }

  private saxWrite(text: string): void {
    if (text.length > 0) this.saxCall(() => this.sax.write(text));
  }

  private saxCall(f: () => void): void {
    try {
      f();
    } catch (err) {
      if (isConstellationError(err)) throw err;
      throw malformed(`malformed XML: ${(err as Error).message}`, err);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
