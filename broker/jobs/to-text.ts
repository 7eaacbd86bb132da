/** A site's VOTable result as CSV, TSV or JSON text. */
import { chunksOf, TextTableWriter, VOTableReader, type ReadOptions, type TextFormat, type VOTableSource } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError } from '../../registry/model/errors.js';

/** Which pieces' rows a conversion writes (see ReadOptions.textShare). */
export type TextShare = NonNullable<ReadOptions['textShare']>;

/**
 * The first table of a VOTable as CSV, TSV or JSON, fed one piece at a time (DALI: only the
 * first table is the result; later tables, if any, are ignored). With a share, only the text of
 * its own pieces is given: conversions of the same pieces with every phase of the share give,
 * piece by piece, the one text between them.
 */
export class TextConversion {
  private readonly reader: VOTableReader;
  private writer: TextTableWriter | undefined;
  private pieces = 0;

  constructor(
    private readonly format: TextFormat,
    private readonly share: TextShare = { every: 1, phase: 0 },
  ) {
    this.reader = new VOTableReader({ text: format, textShare: share });
  }

  /** Whether piece `n` is this conversion's to write. */
  writes(piece: number): boolean {
    return piece % this.share.every === this.share.phase;
  }

  /** The text one piece of the VOTable completes (none when it is another conversion's). */
  push(chunk: Uint8Array | string): Uint8Array[] {
    this.reader.push(chunk);
    return this.texts(this.pieces++);
  }

  /**
   * The text the end completes (the last rows, what follows them) when it is this conversion's
   * (it counts as the piece after the last). A VOTable without a table is UPSTREAM_MALFORMED.
   */
  end(): Uint8Array[] {
    this.reader.end();
    const out = this.texts(this.pieces);
    if (!this.writer) throw new ConstellationError('UPSTREAM_MALFORMED', 'the result VOTable has no table');
    const tail = this.writer.tail();
    if (this.writes(this.pieces) && tail.length > 0) out.push(tail);
    return out;
  }

  private texts(piece: number): Uint8Array[] {
    const mine = this.writes(piece);
    const out: Uint8Array[] = [];
    for (const ev of this.reader.take()) {
      if (ev.type === 'table' && ev.table.index === 0) {
        this.writer = new TextTableWriter(this.format, ev.table.fields);
        if (mine) out.push(this.writer.head());
      } else if (ev.type === 'text' && ev.table === 0 && mine) {
        out.push(ev.chunk);
      }
    }
    return out;
  }
}

/** The first table of a VOTable as CSV, TSV or JSON, converted on this thread, one piece's rows per chunk. */
export async function* toText(body: VOTableSource, format: TextFormat): AsyncIterable<Uint8Array> {
  const conversion = new TextConversion(format);
  for await (const chunk of chunksOf(body)) yield* conversion.push(chunk);
  yield* conversion.end();
}
