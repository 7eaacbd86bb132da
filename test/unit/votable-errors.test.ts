import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConstellationError } from '../../registry/model/errors.js';
import { readVOTable, readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import type { ReadOptions, VOTableEvent } from '../../adapters/ivoa/votable/index.js';

const DIR = fileURLToPath(new URL('../fixtures/votable/', import.meta.url));
const bytes = (name: string): Buffer => readFileSync(DIR + name);

/** Runs the reader to the end; returns the events seen and the error thrown, if any. */
async function run(source: string | Uint8Array, opts?: ReadOptions): Promise<{ events: VOTableEvent[]; error: ConstellationError | null }> {
  const events: VOTableEvent[] = [];
  try {
    for await (const ev of readVOTable(source, opts)) events.push(ev);
  } catch (err) {
    expect(err).toBeInstanceOf(ConstellationError);
    return { events, error: err as ConstellationError };
  }
  return { events, error: null };
}

async function failure(source: string | Uint8Array, opts?: ReadOptions): Promise<ConstellationError> {
  const { error } = await run(source, opts);
  if (error === null) throw new Error('expected the read to fail');
  return error;
}

const table = (fields: string, data: string) =>
  `<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results"><TABLE>${fields}<DATA>${data}</DATA></TABLE></RESOURCE></VOTABLE>`;
const INT = '<FIELD name="n" datatype="int"/>';

describe('QUERY_STATUS=ERROR', () => {
  it('throws with the INFO text even though rows follow, before any row is emitted', async () => {
    const { events, error } = await run(bytes('votable-query-status-error-with-rows.xml'));
    expect(error?.kind).toBe('UPSTREAM');
    expect(error?.code).toBe('CONSTELLATION_E_UPSTREAM');
    expect(error?.message).toContain('QUERY_STATUS=ERROR');
    expect(error?.violations[0]).toMatchObject({ rule: 'QUERY_STATUS', message: 'ERROR' });
    expect(events.some((e) => e.type === 'rows')).toBe(false);
  });

  it('carries the multi-line VizieR message from an INFO under VOTABLE with ns0: prefixes', async () => {
    const error = await failure(bytes('vizier-query-status-error.xml'));
    expect(error.kind).toBe('UPSTREAM');
    expect(error.message).toContain("Can't connect to ReferenceDirectory 'metaviz@PCDSPOOL'");
    expect(error.violations[0].message).toMatch(/^-- no connection\n Report from: stdb_pg/);
    expect(error.violations[0].path).toBe("/VOTABLE/INFO[@name='QUERY_STATUS']");
  });

  it('throws on an ERROR that comes after the table (rows already read must be discarded)', async () => {
    const head = `<VOTABLE><RESOURCE type="results"><TABLE>${INT}<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>`;
    const tail = `<INFO name="QUERY_STATUS" value="ERROR">timeout after 1 row</INFO></RESOURCE></VOTABLE>`;
    async function* chunks(): AsyncGenerator<string> {
      yield head;
      yield tail;
    }
    const events: VOTableEvent[] = [];
    const reading = (async () => {
      for await (const ev of readVOTable(chunks())) events.push(ev);
    })();
    await expect(reading).rejects.toThrow(/QUERY_STATUS=ERROR: timeout after 1 row/);
    // Streamed rows went out before the status arrived; the error tells the consumer to drop them.
    expect(events.filter((e) => e.type === 'rows')).toHaveLength(1);
    expect((await run(head + tail)).error?.kind).toBe('UPSTREAM');
  });

  it('uses the value attribute when the INFO has no text', async () => {
    const error = await failure(`<VOTABLE><INFO name="QUERY_STATUS" value="error"/><RESOURCE/></VOTABLE>`);
    expect(error.violations[0].message).toBe('error');
  });
});

describe('truncated documents', () => {
  it('ending inside TABLEDATA is an error naming the place', async () => {
    const xml = bytes('gaia-dr3-gaia_source-2rows-tabledata.vot').toString('utf8');
    const cut = xml.indexOf('</TR>') + 5;
    const error = await failure(xml.slice(0, cut));
    expect(error.kind).toBe('UPSTREAM_MALFORMED');
    expect(error.message).toMatch(/ends inside TABLEDATA, after row 1: truncated/);
  });

  it('ending in the middle of a binary row is an error', async () => {
    const xml = bytes('gaia-user-table-upload-binary2.vot').toString('utf8');
    // Rows are 29 bytes (flags, int, long, two doubles): 20 base64 characters are 15 bytes of row 1.
    const cut = xml.indexOf('AAAAAAE1NrFZ') + 20;
    const error = await failure(xml.slice(0, cut));
    expect(error.message).toMatch(/ends inside a binary STREAM, in the middle of row 1 \(15 bytes of it read\): truncated/);
  });

  it('a STREAM that closes mid-row is an error, not a short read', async () => {
    const data = Buffer.alloc(10, 1).toString('base64');
    const error = await failure(table(INT, `<BINARY><STREAM encoding="base64">${data}</STREAM></BINARY>`));
    expect(error.message).toMatch(/STREAM ends in the middle of row 3 \(2 bytes of it present\)/);
  });

  it('ending before </VOTABLE> is an error', async () => {
    const xml = bytes('gaia-user-table-upload-tabledata.vot').toString('utf8');
    const error = await failure(xml.slice(0, xml.indexOf('</RESOURCE>')));
    expect(error.message).toMatch(/ends before <\/VOTABLE>/);
  });

  const FILES = ['gaia-dr3-gaia_source-1row-binary2.vot', 'gaia-user-table-upload-tabledata.vot', 'gavo-rosat-scs-binary.xml', 'alltypes-tabledata.xml', 'irsa-gator-cone-votable-1.0-dtd.xml'];
  it.each(FILES)('%s: every cut before </VOTABLE> ends is an error', async (name) => {
    const buf = bytes(name);
    const end = buf.lastIndexOf('</VOTABLE>') + '</VOTABLE>'.length;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: end - 1 }), async (cut) => {
        const error = await failure(buf.subarray(0, cut));
        expect(error.kind).toBe('UPSTREAM_MALFORMED');
      }),
      { numRuns: 60 },
    );
  });
});

describe('malformed input', () => {
  it.each([
    ['mismatched tags', `<VOTABLE><RESOURCE><TABLE></RESOURCE></VOTABLE>`, /malformed XML/],
    ['garbage', `this is not xml`, /malformed XML|empty/],
    ['an HTML error page', `<html><body>502 Bad Gateway</body></html>`, /root element is <html>/],
    ['an empty body', ``, /empty/],
    ['an element inside a TD', table(INT, '<TABLEDATA><TR><TD><b>1</b></TD></TR></TABLEDATA>'), /element inside a TD/],
    ['text between cells', table(INT, '<TABLEDATA><TR>1<TD>1</TD></TR></TABLEDATA>'), /unexpected text "1/],
    ['too many cells', table(INT, '<TABLEDATA><TR><TD>1</TD><TD>2</TD></TR></TABLEDATA>'), /more cells than the table's 1 FIELDs/],
    ['too few cells', table(INT + INT, '<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>'), /row 1 has 1 cells, the table has 2 FIELDs/],
    ['an unknown entity', table(INT, '<TABLEDATA><TR><TD>&nbsp;</TD></TR></TABLEDATA>'), /unknown entity &nbsp;/],
    ['a bad base64 character', table(INT, '<BINARY><STREAM encoding="base64">AAAA*AAA</STREAM></BINARY>'), /invalid character "\*"/],
    ['an element inside a STREAM', table(INT, '<BINARY><STREAM encoding="base64">AAAA<x/></STREAM></BINARY>'), /unexpected markup/],
    ['a bad arraysize', table('<FIELD name="a" datatype="int" arraysize="*x3"/>', '<TABLEDATA/>'), /arraysize "\*x3"/],
    ['an unknown datatype', table('<FIELD name="a" datatype="string"/>', '<TABLEDATA/>'), /unknown datatype "string"/],
    ['a FIELD without datatype', table('<FIELD name="a"/>', '<TABLEDATA/>'), /has no datatype/],
    ['the FITS serialisation', table(INT, '<FITS extnum="1"><STREAM href="http://x/y.fits"/></FITS>'), /FITS serialisation, which is not supported/],
    ['a remote STREAM', table(INT, '<BINARY2><STREAM href="https://example.org/data.bin"/></BINARY2>'), /STREAM href="https:\/\/example.org\/data.bin" \(remote data\) is not supported/],
    ['a gzip STREAM', table(INT, '<BINARY><STREAM encoding="gzip">AAAA</STREAM></BINARY>'), /STREAM encoding "gzip" is not supported/],
    ['data for a TABLE without FIELDs', table('', '<BINARY><STREAM encoding="base64">AAAA</STREAM></BINARY>'), /TABLE without FIELDs/],
    ['an encoded TD', table(INT, '<TABLEDATA><TR><TD encoding="base64">AAAAAQ==</TD></TR></TABLEDATA>'), /TD encoding attribute/],
  ])('%s', async (_what, xml, message) => {
    const error = await failure(xml);
    expect(error.kind).toBe('UPSTREAM_MALFORMED');
    expect(error.code).toBe('CONSTELLATION_E_UPSTREAM_MALFORMED');
    expect(error.message).toMatch(message);
  });

  it('keeps the XML parser error as the cause', async () => {
    const error = await failure(`<VOTABLE><RESOURCE></VOTABLE>`);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.message).toMatch(/1:\d+/);
  });

  it('names the row and column of an undecodable cell', async () => {
    const xml = table('<FIELD name="ra" datatype="double"/><FIELD name="n" datatype="short"/>', '<TABLEDATA><TR><TD>1</TD><TD>2</TD></TR><TR><TD>1</TD><TD>40000</TD></TR></TABLEDATA>');
    const error = await failure(xml);
    expect(error.message).toMatch(/TABLEDATA row 2, column "n": "40000" is not a valid short/);
  });

  it('reads undecodable cells as null when asked to', async () => {
    const xml = table('<FIELD name="ra" datatype="double"/><FIELD name="b" datatype="boolean"/>', '<TABLEDATA><TR><TD>abc</TD><TD>yes</TD></TR></TABLEDATA>');
    expect((await readVOTableToArray(xml, { invalidValues: 'null' })).tables[0].rows).toEqual([[null, null]]);
  });

  it('rejects an invalid boolean byte in BINARY with its row', async () => {
    const data = Buffer.from('TFX').toString('base64');
    const error = await failure(table('<FIELD name="b" datatype="boolean"/>', `<BINARY><STREAM encoding="base64">${data}</STREAM></BINARY>`));
    expect(error.message).toMatch(/row 3: byte 0x58 is not a valid boolean in column "b"/);
  });

  it('bounds a hostile variable-length count instead of buffering it', async () => {
    const data = Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 0]).toString('base64');
    const error = await failure(table('<FIELD name="s" datatype="char" arraysize="*"/>', `<BINARY><STREAM encoding="base64">${data}</STREAM></BINARY>`), { maxCellBytes: 1024 });
    expect(error.message).toMatch(/column "s": 2147483647 bytes exceeds the 1024-byte cell limit/);
  });

  it('rejects a negative variable-length count', async () => {
    const data = Buffer.from([0xff, 0xff, 0xff, 0xff]).toString('base64');
    const error = await failure(table('<FIELD name="s" datatype="char" arraysize="*"/>', `<BINARY><STREAM encoding="base64">${data}</STREAM></BINARY>`));
    expect(error.message).toMatch(/negative array length -1/);
  });

  it('a TABLEDATA cell beyond the cell limit is an error', async () => {
    const xml = table('<FIELD name="s" datatype="char" arraysize="*"/>', `<TABLEDATA><TR><TD>${'x'.repeat(5000)}</TD></TR></TABLEDATA>`);
    const error = await failure(xml, { maxCellBytes: 1000 });
    expect(error.message).toMatch(/cell exceeds 1000 characters/);
  });
});

describe('constant memory', () => {
  it('holds back at most a batch of rows: the consumer sees rows before the document ends', async () => {
    let produced = 0;
    const ROWS = 20_000;
    async function* source(): AsyncGenerator<string> {
      yield `<VOTABLE><RESOURCE><TABLE>${INT}<DATA><TABLEDATA>`;
      for (let i = 0; i < ROWS; i += 100) {
        let chunk = '';
        for (let j = i; j < i + 100; j++) chunk += `<TR><TD>${j}</TD></TR>`;
        produced += 100;
        yield chunk;
      }
      yield '</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>';
    }
    let seen = 0;
    for await (const ev of readVOTable(source(), { batchSize: 500 })) {
      if (ev.type !== 'rows') continue;
      expect(ev.rows.length).toBeLessThanOrEqual(500);
      // Rows are handed over as they are read, never more than one input chunk behind.
      expect(produced - (seen + ev.rows.length)).toBeLessThan(100);
      seen += ev.rows.length;
    }
    expect(seen).toBe(ROWS);
  });

  it('splits one huge input chunk, so rows flow out before all of it is decoded', async () => {
    const row = '<TR><TD>Ωmega ☺ 𝔾aia</TD></TR>';
    const body = row.repeat(100_000);
    const xml = `\uFEFF<VOTABLE><RESOURCE><TABLE><FIELD name="s" datatype="char" arraysize="*"/><DATA><TABLEDATA>${body}</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`;
    for (const source of [xml, Buffer.from(xml.slice(1))]) {
      let events = 0;
      let rows = 0;
      for await (const ev of readVOTable(source, { batchSize: 1_000_000 })) {
        if (ev.type !== 'rows') continue;
        events++;
        rows += ev.rows.length;
        expect(ev.rows[0]).toEqual(['Ωmega ☺ 𝔾aia']);
      }
      expect(rows).toBe(100_000);
      expect(events).toBeGreaterThan(2);
    }
  });

  it('stops reading the source when the consumer stops', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<string> {
      yield `<VOTABLE><RESOURCE><TABLE>${INT}<DATA><TABLEDATA>`;
      for (;;) {
        pulled++;
        yield '<TR><TD>1</TD></TR>'.repeat(10);
      }
    }
    let rows = 0;
    for await (const ev of readVOTable(source())) {
      if (ev.type === 'rows') rows += ev.rows.length;
      if (rows >= 50) break;
    }
    expect(pulled).toBe(5);
  });
});
