/**
 * VOTable → CSV, TSV and JSON (broker/jobs/to-text.ts toText over the reader's text mode): every
 * cell of a table with every kind of value reads back as the VOTable's own value, means what the
 * previous converters wrote, and comes out byte-identical whether the rows were BINARY2 (written
 * straight from their bytes) or TABLEDATA (decoded into rows first), however the input is cut.
 * Hostile input fails with a coded error naming the row.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray, TextTableWriter, writeVOTableToBuffer, type Cell, type FieldMeta, type Row, type WritableTable } from '../../adapters/ivoa/votable/index.js';
import { idleTextThreads, startTextThreads, textOnThread } from '../../broker/jobs/text-threads.js';
import { TextConversion, toText } from '../../broker/jobs/to-text.js';
import { carried, cellsOf, MIXED_ROWS, MIXED_TABLE, oldText, sameCell } from './votable-text-support.js';

const FORMATS = ['csv', 'tsv', 'json'] as const;

// The worker thread ready before the first conversion (else that one would run on this thread).
beforeAll(() => startTextThreads(), 120_000);
const SERIALIZATIONS = ['BINARY2', 'TABLEDATA'] as const;

async function collect(body: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const p of body) parts.push(p);
  // fatal: every output must be valid UTF-8.
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(parts));
}

/** `bytes` handed over in pieces of the given sizes (cycled), as a network would. */
function* pieces(bytes: Uint8Array, sizes: number[]): Generator<Uint8Array> {
  let k = 0;
  for (let i = 0; i < bytes.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]);
    yield bytes.subarray(i, i + n);
    i += n;
  }
}

/** Same meaning as before: as sameCell, except that -0 and 0 are one (the old converters wrote -0 as 0). */
function sameMeaning(a: Cell, b: Cell): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, k) => sameMeaning(x as Cell, b[k] as Cell));
  }
  return a === b;
}

async function mixed(serialization: 'BINARY2' | 'TABLEDATA', table: WritableTable = MIXED_TABLE, rows: Row[] = MIXED_ROWS) {
  const bytes = await writeVOTableToBuffer(table, rows, { serialization, infos: [{ name: 'QUERY_STATUS', value: 'OK' }] });
  const doc = await readVOTableToArray(bytes);
  return { bytes, fields: doc.tables[0].meta.fields, rows: doc.tables[0].rows };
}

describe('VOTable to CSV, TSV and JSON', () => {
  it.each(SERIALIZATIONS.flatMap((s) => FORMATS.map((f) => [s, f] as const)))('%s → %s: every cell reads back as the VOTable value', async (serialization, format) => {
    const { bytes, fields, rows } = await mixed(serialization);
    const text = await collect(toText(bytes, format));
    const back = cellsOf(format, fields, text);
    expect(back.header).toEqual(fields.map((f) => (format === 'tsv' ? f.name.replace(/[\t\r\n]/g, ' ') : f.name)));
    expect(back.rows).toHaveLength(rows.length);
    rows.forEach((row, r) =>
      row.forEach((cell, c) => {
        const want = carried(fields[c], cell, format);
        if (!sameCell(back.rows[r][c], want)) throw new Error(`row ${r + 1}, ${fields[c].name}: ${String(back.rows[r][c])} read back, ${String(want)} in the VOTable`);
      }),
    );
    if (format === 'json') expect(() => JSON.parse(text)).not.toThrow();
  });

  it.each(FORMATS)('%s means what the previous converters wrote, floats now in their shortest digits', async (format) => {
    const { bytes, fields, rows } = await mixed('BINARY2');
    const now = await collect(toText(bytes, format));
    const before = oldText(format, fields, rows);
    const a = cellsOf(format, fields, now);
    const b = cellsOf(format, fields, before);
    expect(a.header).toEqual(b.header);
    a.rows.forEach((row, r) =>
      row.forEach((cell, c) => {
        if (!sameMeaning(cell, b.rows[r][c])) throw new Error(`row ${r + 1}, ${fields[c].name}: ${String(cell)} now, ${String(b.rows[r][c])} before`);
      }),
    );
    // The float column is shorter: 15.278674, not 15.278674125671387; doubles keep every digit.
    expect(before).toContain('15.278674125671387');
    expect(now).not.toContain('15.278674125671387');
    expect(now).toMatch(/\b15\.278674\b/);
    expect(now).toContain('251.65033405646682');
    expect(now.length).toBeLessThan(before.length);
  });

  it.each(FORMATS)('%s is byte-identical from BINARY2 (bytes written directly) and from TABLEDATA (rows decoded first)', async (format) => {
    const binary = await mixed('BINARY2');
    const tabledata = await mixed('TABLEDATA');
    const fromBinary = await collect(toText(binary.bytes, format));
    expect(await collect(toText(tabledata.bytes, format))).toBe(fromBinary);
    // And on worker threads, as the results routes convert, in pieces small enough to share out.
    await threadsIdle();
    expect(await collect(textOnThread(arriving(binary.bytes, [300]), format))).toBe(fromBinary);
    await threadsIdle();
    expect(await collect(textOnThread(arriving(tabledata.bytes, [300]), format))).toBe(fromBinary);
    // And from the rows themselves, through the writer's row path.
    const writer = new TextTableWriter(format, binary.fields);
    const viaRows = Buffer.concat([writer.head(), writer.rows(binary.rows), writer.tail()]).toString('utf8');
    expect(viaRows).toBe(fromBinary);
  });

  it('gives the same bytes however the input is cut (property)', async () => {
    const { bytes } = await mixed('BINARY2');
    const whole = await collect(toText(bytes, 'json'));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }), fc.constantFrom(...FORMATS), async (sizes, format) => {
        const reference = format === 'json' ? whole : await collect(toText(bytes, format));
        expect(await collect(toText(pieces(bytes, sizes), format))).toBe(reference);
      }),
      { numRuns: 60 },
    );
  });

  it('shared between readers (each writing every n-th piece), the texts put in piece order are the same bytes (property)', async () => {
    const binary = await mixed('BINARY2');
    const tabledata = await mixed('TABLEDATA');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(...FORMATS),
        fc.constantFrom(binary.bytes, tabledata.bytes),
        async (sizes, every, format, bytes) => {
          const reference = await collect(toText(bytes, format));
          const shares = Array.from({ length: every }, (_, phase) => new TextConversion(format, { every, phase }));
          const out: Uint8Array[] = [];
          let piece = 0;
          for (const chunk of pieces(bytes, sizes)) {
            const texts = shares.map((c) => c.push(chunk));
            // Only the piece's writer gives text for it.
            texts.forEach((t, phase) => phase !== piece % every && expect(t).toEqual([]));
            out.push(...texts[piece++ % every]);
          }
          out.push(...shares.map((c) => c.end())[piece % every]);
          expect(new TextDecoder().decode(Buffer.concat(out))).toBe(reference);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps 2,000-row tables whole across the reader’s batches and input chunks', async () => {
    const table: WritableTable = { fields: [{ name: 'id', datatype: 'long' }, { name: 'x', datatype: 'double' }, { name: 'm', datatype: 'float' }, { name: 's', datatype: 'char', arraysize: '*' }] };
    const rows: Row[] = Array.from({ length: 2000 }, (_, i) => [BigInt(i) * 4_295_098_369n, i / 7, Math.fround(i / 3), i % 3 === 0 ? null : `s${i}`]);
    const { bytes, fields } = await mixed('BINARY2', table, rows);
    const text = await collect(toText(pieces(bytes, [4096, 10, 65536]), 'csv'));
    const back = cellsOf('csv', fields, text);
    expect(back.rows).toHaveLength(2000);
    back.rows.forEach((row, r) => expect(sameCell(row as Cell, carried({ ...fields[0], shape: null }, rows[r] as Cell, 'csv'))).toBe(true));
  });

  it('writes an empty string and an empty array as nothing in CSV and as "" and [] in JSON, as before', async () => {
    const table: WritableTable = { fields: [{ name: 's', datatype: 'char', arraysize: '*' }, { name: 'a', datatype: 'int', arraysize: '*' }, { name: 'c', datatype: 'char', arraysize: '4' }] };
    const { bytes, fields, rows } = await mixed('BINARY2', table, [['', [], '']]);
    expect(rows).toEqual([['', [], '']]);
    expect(await collect(toText(bytes, 'csv'))).toBe('s,a,c\r\n,,\r\n');
    const json = await collect(toText(bytes, 'json'));
    expect(JSON.parse(json).data).toEqual([['', [], '']]);
    expect(json).toBe(oldText('json', fields, rows));
  });
});

/** A BINARY2 document with the decoded STREAM bytes changed by `edit`. */
async function tamperedBinary2(table: WritableTable, rows: Row[], edit: (data: Buffer) => Buffer): Promise<Buffer> {
  const text = (await writeVOTableToBuffer(table, rows, { serialization: 'BINARY2' })).toString('latin1');
  const start = text.indexOf('>', text.indexOf('<STREAM')) + 1;
  const end = text.indexOf('</STREAM>');
  const data = edit(Buffer.from(text.slice(start, end).replace(/\s+/g, ''), 'base64'));
  return Buffer.from(text.slice(0, start) + data.toString('base64') + text.slice(end), 'latin1');
}

/** Both threads back from the last conversion, so the next one runs on them (not on this thread for want of one). */
async function threadsIdle(): Promise<void> {
  await expect.poll(() => idleTextThreads(), { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
}

/** The body as a network gives it: chunks arriving asynchronously. */
async function* arriving(body: Uint8Array, sizes = [65536]): AsyncGenerator<Uint8Array> {
  yield* pieces(body, sizes);
}

async function failureOf(text: AsyncIterable<Uint8Array>): Promise<{ kind?: string; message?: string }> {
  try {
    await collect(text);
  } catch (err) {
    return err as { kind?: string; message?: string };
  }
  throw new Error('the conversion did not fail');
}

/** The error converting `body` fails with: the same code and message on this thread and on a worker thread. */
async function failure(body: Uint8Array, format: 'csv' | 'tsv' | 'json' = 'csv', sizes = [65536]): Promise<{ kind?: string; message?: string }> {
  const here = await failureOf(toText(body, format));
  await threadsIdle();
  const there = await failureOf(textOnThread(arriving(body, sizes), format));
  expect(there).toMatchObject({ kind: here.kind, message: here.message });
  return here;
}

describe('hostile VOTables in the text converters', () => {
  const BOOLS: WritableTable = { fields: [{ name: 'id', datatype: 'int' }, { name: 'flag', datatype: 'boolean' }, { name: 'name', datatype: 'char', arraysize: '*' }] };
  const ROWS: Row[] = [[1, true, 'a'], [2, false, 'b'], [3, true, 'c']];

  it.each(FORMATS)('%s: an invalid boolean byte is UPSTREAM_MALFORMED naming the row', async (format) => {
    // Row 2 starts after row 1 (1 flag byte, int, boolean, 4-byte length, 'a') = 11 bytes; its boolean is at 11 + 1 + 4.
    const body = await tamperedBinary2(BOOLS, ROWS, (d) => {
      d[16] = 0x58;
      return d;
    });
    const err = await failure(body, format);
    expect(err.kind).toBe('UPSTREAM_MALFORMED');
    expect(err.message).toMatch(/row 2\b.*boolean/);
  });

  it('a negative or huge variable-length count is UPSTREAM_MALFORMED, not an allocation', async () => {
    const negative = await tamperedBinary2(BOOLS, ROWS, (d) => {
      d.writeInt32BE(-5, 6);
      return d;
    });
    expect(await failure(negative)).toMatchObject({ kind: 'UPSTREAM_MALFORMED', message: expect.stringMatching(/negative array length/) });
    const huge = await tamperedBinary2(BOOLS, ROWS, (d) => {
      d.writeInt32BE(0x7fffffff, 6);
      return d;
    });
    expect(await failure(huge)).toMatchObject({ kind: 'UPSTREAM_MALFORMED', message: expect.stringMatching(/cell limit/) });
  });

  it('a STREAM cut in the middle of a row is UPSTREAM_MALFORMED (truncated)', async () => {
    const body = await tamperedBinary2(BOOLS, ROWS, (d) => d.subarray(0, d.length - 2));
    expect(await failure(body, 'json')).toMatchObject({ kind: 'UPSTREAM_MALFORMED', message: expect.stringMatching(/truncated/) });
  });

  it('a document cut inside the STREAM, and one without a table, are UPSTREAM_MALFORMED', async () => {
    const whole = await writeVOTableToBuffer(BOOLS, ROWS, { serialization: 'BINARY2' });
    const cut = whole.subarray(0, whole.indexOf('</STREAM>') - 3);
    expect(await failure(cut)).toMatchObject({ kind: 'UPSTREAM_MALFORMED' });
    const empty = Buffer.from('<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE type="results"><INFO name="QUERY_STATUS" value="OK"/></RESOURCE></VOTABLE>');
    expect(await failure(empty)).toMatchObject({ kind: 'UPSTREAM_MALFORMED', message: expect.stringMatching(/no table/) });
  });

  it('a QUERY_STATUS=ERROR after the rows fails the conversion with the site’s message', async () => {
    const text = (await writeVOTableToBuffer(BOOLS, ROWS, { serialization: 'BINARY2', trailingInfos: [{ name: 'QUERY_STATUS', value: 'ERROR', content: 'query ran out of time' }] })).toString();
    const err = await failure(Buffer.from(text), 'json');
    expect(err.kind).toBe('UPSTREAM');
    expect(err.message).toContain('query ran out of time');
  });

  it('a bad row before a reading error fails with the row’s error, however the input is cut', async () => {
    const body = await tamperedBinary2(BOOLS, ROWS, (d) => {
      d[16] = 0x58;
      return d;
    });
    const cut = body.subarray(0, body.indexOf('</STREAM>') - 3);
    for (const sizes of [[65536], [5], [37, 3]]) {
      expect(await failure(cut, 'json', sizes)).toMatchObject({ kind: 'UPSTREAM_MALFORMED', message: expect.stringMatching(/row 2\b.*boolean/) });
    }
  });

  it('a bad row in a later table fails the conversion as on one thread, though its text is not wanted', async () => {
    const one = (await writeVOTableToBuffer(BOOLS, ROWS, { serialization: 'BINARY2' })).toString('latin1');
    const bad = (await tamperedBinary2(BOOLS, ROWS, (d) => {
      d[16] = 0x58;
      return d;
    })).toString('latin1');
    const inner = bad.slice(bad.indexOf('<RESOURCE'), bad.lastIndexOf('</VOTABLE>'));
    const two = Buffer.from(one.replace('</VOTABLE>', `${inner}</VOTABLE>`), 'latin1');
    expect(await failure(two, 'csv', [50])).toMatchObject({ kind: 'UPSTREAM_MALFORMED', message: expect.stringMatching(/row 2\b.*boolean/) });
  });

  it('only the first table is converted; rows of later tables are not written', async () => {
    const one = (await writeVOTableToBuffer(BOOLS, ROWS, { serialization: 'BINARY2' })).toString();
    const inner = one.slice(one.indexOf('<RESOURCE'), one.lastIndexOf('</VOTABLE>'));
    const two = one.replace('</VOTABLE>', `${inner}</VOTABLE>`);
    const csv = await collect(toText(Buffer.from(two), 'csv'));
    expect(csv).toBe('id,flag,name\r\n1,true,a\r\n2,false,b\r\n3,true,c\r\n');
  });
});

describe('TextTableWriter cells', () => {
  const fields = (datatype: FieldMeta['datatype'], arraysize?: string): FieldMeta[] => [{ name: 'v', datatype, shape: arraysize ? { dims: [], variable: true, maxLast: null } : null, ...(arraysize ? { arraysize } : {}) }];
  const csv = (f: FieldMeta[], rows: Row[]) => new TextTableWriter('csv', f).rows(rows).toString('utf8');
  const json = (f: FieldMeta[], rows: Row[]) => new TextTableWriter('json', f).rows(rows).toString('utf8');

  it('writes -0, the infinities and float extremes as they read back', () => {
    expect(csv(fields('float'), [[-0], [Infinity], [-Infinity], [Math.fround(1e-45)], [3.4028234663852886e38], [15.278674125671387]])).toBe('-0\r\nInfinity\r\n-Infinity\r\n1e-45\r\n3.4028235e+38\r\n15.278674\r\n');
    expect(json(fields('float'), [[-0], [Infinity], [Math.fround(0.1)]])).toBe('\n[-0],\n[null],\n[0.1]');
    expect(csv(fields('double'), [[-0], [0], [5e-324], [1e21], [Math.fround(0.1)]])).toBe('-0\r\n0\r\n5e-324\r\n1e+21\r\n0.10000000149011612\r\n');
    expect(json(fields('double'), [[-Infinity], [Number.NaN], [-0]])).toBe('\n[null],\n[null],\n[-0]');
  });

  it('writes float arrays and complex numbers at float precision', () => {
    expect(csv(fields('float', '*'), [[[Math.fround(0.1), null, Math.fround(15.278674)]]])).toBe('0.1  15.278674\r\n');
    expect(json(fields('floatComplex'), [[[Math.fround(1.1), Math.fround(-2.2)]]])).toBe('\n[[1.1,-2.2]]');
  });

  it('quotes CSV strings as RFC 4180 asks and escapes JSON strings', () => {
    const s = fields('char', '*');
    expect(csv(s, [['a,b'], ['say "hi"'], [' lead'], ['trail\t'], ['two\nlines'], ['ünï, too'], ['plain']])).toBe('"a,b"\r\n"say ""hi"""\r\n" lead"\r\n"trail\t"\r\n"two\nlines"\r\n"ünï, too"\r\nplain\r\n');
    expect(json(s, [['a"b\\c\u0001'], ['Ωmega']])).toBe('\n["a\\"b\\\\c\\u0001"],\n["Ωmega"]');
    expect(new TextTableWriter('tsv', s).rows([['a\tb\r\nc']]).toString()).toBe('a b  c\n');
  });
});
