/**
 * A result with every kind of cell, through a real broker from a simulated TAP site: GET
 * /results/:id passes the site's VOTable through byte for byte and converts it to CSV and JSON;
 * /tap/sync answers in CSV, TSV, JSON and TABLEDATA. Every cell read back means what the VOTable
 * says (floats in their shortest float32 digits) and what the previous converters wrote, from a
 * site that sends BINARY2 or TABLEDATA. A site whose answer is not a VOTable is refused before
 * any byte, and a client that leaves mid-result releases the site's response.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray, writeVOTableToBuffer, type Cell, type FieldMeta, type Row } from '../../adapters/ivoa/votable/index.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable, type TapService } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';
import { carried, cellsOf, MIXED_ROWS, MIXED_TABLE, oldText, sameCell } from '../unit/votable-text-support.js';

// Advertised large (so a whole-table query runs as an async job), three rows held; every answer
// is replaced by the document under test (`served`).
const MIXED: SimTable = {
  name: 'demo.mixed',
  rows: 50_000,
  heldRows: 3,
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double' },
    { name: 'mag', datatype: 'float' },
    { name: 'name', datatype: 'char' },
  ],
};
const ADQL = 'SELECT * FROM demo.mixed';

interface Expected {
  fields: FieldMeta[];
  rows: Row[];
}

describe(`results in every format through the broker (${backend})`, () => {
  let site: SimSite;
  let tap: TapService;
  let broker: TestBroker;
  let served = '';
  /** Site responses that closed before their last byte was written (the broker let go of them). */
  let cutShort = 0;

  const submit = async (): Promise<string> => {
    const { data, errors } = await broker.graphql<{ submitQuery: { id: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id } }', { i: { adql: ADQL } });
    expect(errors).toBeUndefined();
    const id = data!.submitQuery.id;
    const job = (jid: string) => broker.graphql<{ job: { state: string; error: { message: string } | null } }>('query($id: ID!) { job(id: $id) { state error { message } } }', { id: jid });
    const done = await waitUntil(async () => (await job(id)).data!.job, (j) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state), { describe: (j) => `job ${id} is still ${j.state}` });
    expect(done, done.error?.message).toMatchObject({ state: 'COMPLETED' });
    return id;
  };

  const tapSync = (format: string) =>
    fetch(`${broker.url}/tap/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: ADQL, RESPONSEFORMAT: format }) });

  /** Every cell of `text` against the VOTable, and against what the previous converters wrote. */
  const check = (format: 'csv' | 'tsv' | 'json', text: string, expected: Expected) => {
    const back = cellsOf(format, expected.fields, text);
    const before = cellsOf(format, expected.fields, oldText(format, expected.fields, expected.rows));
    expect(back.rows).toHaveLength(expected.rows.length);
    expected.rows.forEach((row, r) =>
      row.forEach((cell, c) => {
        const name = `${format} row ${r + 1}, ${expected.fields[c].name}`;
        const want = carried(expected.fields[c], cell, format);
        if (!sameCell(back.rows[r][c], want)) throw new Error(`${name}: ${String(back.rows[r][c])} read back, ${String(want)} in the VOTable`);
        // Before, -0 was written as 0: the same number (===), now with its sign.
        const old = before.rows[r][c];
        const same = (a: Cell, b: Cell): boolean => (Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, k) => same(x as Cell, b[k] as Cell)) : a === b);
        if (!same(back.rows[r][c], old)) throw new Error(`${name}: ${String(back.rows[r][c])} now, ${String(old)} before`);
      }),
    );
    expect(text).not.toContain('15.278674125671387');
    expect(text).toMatch(/\b15\.278674\b/);
  };

  beforeAll(async () => {
    site = new SimSite();
    tap = mountTapService(site, { path: '/tap', tables: [MIXED], hardMaxRec: 1_000_000 });
    site.app.addHook('onSend', async (_request, reply) => {
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) cutShort++;
      });
    });
    await site.start();
    broker = await startBroker(
      configFromYaml(`
federation: { name: results-formats }
harvest: { concurrency: 1, jitterS: 0, timeoutS: 30 }
sites:
  - { id: sim, name: Simulated archive, adapter: tap, url: "${site.url}/tap" }
`),
      undefined,
      { jobs: { pollIntervalMs: 50, tickMs: 25 } },
    );
    expect(await broker.harvest('sim')).toMatchObject({ outcome: 'OK' });
    tap.hostile.result = () => served;
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await tap?.close();
    await site?.close();
  });

  it.each(['BINARY2', 'TABLEDATA'] as const)(
    'a %s result: the VOTable passed through byte for byte, CSV and JSON from /results, CSV, TSV, JSON and TABLEDATA from /tap/sync, every cell as in the VOTable',
    async (serialization) => {
      const bytes = await writeVOTableToBuffer(MIXED_TABLE, MIXED_ROWS, { serialization, infos: [{ name: 'QUERY_STATUS', value: 'OK' }] });
      served = bytes.toString('utf8');
      const doc = await readVOTableToArray(bytes);
      const expected: Expected = { fields: doc.tables[0].meta.fields, rows: doc.tables[0].rows };
      const id = await submit();

      const votable = await fetch(`${broker.url}/results/${id}`);
      expect(votable.status).toBe(200);
      expect(votable.headers.get('content-type')).toBe('application/x-votable+xml');
      expect(Buffer.from(await votable.arrayBuffer()).equals(bytes)).toBe(true);

      for (const format of ['csv', 'json'] as const) {
        const res = await fetch(`${broker.url}/results/${id}?format=${format}`);
        expect(res.status, format).toBe(200);
        expect(res.headers.get('content-type')).toMatch(format === 'csv' ? /^text\/csv; charset=utf-8/ : /^application\/json; charset=utf-8/);
        check(format, await res.text(), expected);
      }

      for (const format of ['csv', 'tsv', 'json'] as const) {
        const res = await tapSync(format);
        expect(res.status, format).toBe(200);
        check(format, await res.text(), expected);
      }
      const passed = await tapSync('votable');
      expect(Buffer.from(await passed.arrayBuffer()).equals(bytes)).toBe(true);
      // Written again as TABLEDATA: floats in their shortest digits there too, every cell the same value.
      const td = await tapSync('votable/td');
      const tdText = await td.text();
      expect(tdText).toContain('<TD>15.278674</TD>');
      const again = await readVOTableToArray(tdText);
      again.tables[0].rows.forEach((row, r) =>
        row.forEach((cell, c) => {
          // TABLEDATA cannot tell an empty string or array from null.
          const want = carried(expected.fields[c], expected.rows[r][c], 'csv');
          if (!sameCell(cell, want)) throw new Error(`TABLEDATA row ${r + 1}, ${expected.fields[c].name}: ${String(cell)}, ${String(want)} in the VOTable`);
        }),
      );
    },
    WAITING_TEST_MS,
  );

  it('refuses an answer that is not a VOTable before any byte, in every format, and passes one whose root comes after a long prologue', async () => {
    const bytes = await writeVOTableToBuffer(MIXED_TABLE, MIXED_ROWS.slice(0, 2), { serialization: 'BINARY2' });
    served = '<!DOCTYPE html><html><body><script>alert(1)</script></body></html>';
    const id = await submit();
    const cases: [string, RegExp][] = [
      ['<!DOCTYPE html><html><body><script>alert(1)</script></body></html>', /root element is <html>/],
      ['', /is empty/],
      [`<?xml version="1.0"?><!--${'x'.repeat(70_000)} and never closed`, /root element is not found/],
      ['{"data": []}', /not a VOTable/],
    ];
    for (const [body, message] of cases) {
      served = body;
      for (const format of ['votable', 'csv', 'json']) {
        const res = await fetch(`${broker.url}/results/${id}?format=${format}`);
        const text = await res.text();
        expect(res.status, `${format}: ${body.slice(0, 30)}`).toBe(502);
        const error = JSON.parse(text) as { code: string; message: string };
        expect(error.code).toBe('CONSTELLATION_E_UPSTREAM_MALFORMED');
        expect(error.message).toMatch(message);
        expect(text).not.toContain('<script');
      }
    }
    // A comment and a doctype before the root, well under the 64 KiB prologue limit: served.
    const text = bytes.toString('utf8');
    served = text.replace('<VOTABLE', `<!-- ${'c'.repeat(30_000)} --><!DOCTYPE VOTABLE>\n<VOTABLE`);
    const res = await fetch(`${broker.url}/results/${id}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(served);
    const csv = await (await fetch(`${broker.url}/results/${id}?format=csv`)).text();
    expect(csv.split('\r\n')).toHaveLength(4);
  }, WAITING_TEST_MS);

  it('a client that leaves in the middle of a result releases the site’s response', async () => {
    const rows: Row[] = Array.from({ length: 20_000 }, (_, i) => MIXED_ROWS[i % MIXED_ROWS.length]);
    served = (await writeVOTableToBuffer(MIXED_TABLE, rows, { serialization: 'BINARY2' })).toString('utf8');
    const id = await submit();
    // The site sends its 3 MB result over minutes from here on, so it is still sending when the client leaves.
    await site.setFault({ kind: 'slow-body', bytesPerTick: 8192, tickMs: 50 });
    try {
      for (const format of ['votable', 'csv']) {
        const before = cutShort;
        const abort = new AbortController();
        const res = await fetch(`${broker.url}/results/${id}?format=${format}`, { signal: abort.signal });
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        expect((await reader.read()).done).toBe(false);
        abort.abort();
        await reader.cancel().catch((err: unknown) => expect(String(err)).toMatch(/abort/i));
        await waitUntil(() => cutShort, (n) => n > before, { describe: () => `the site's ${format} response was not let go of` });
      }
    } finally {
      await site.setFault({ kind: 'none' });
    }
  }, WAITING_TEST_MS);
});
