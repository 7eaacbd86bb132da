/**
 * The sliced XML parse (parseXmlAsync) and the readers built on it: the same tree and the same
 * errors as the whole parse, wherever the slices fall, and a tableset of a million nodes read
 * without holding the event loop (a site's answer at harvest, issue 9).
 */
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseUwsJobList, parseUwsJobListAsync } from '../../adapters/ivoa/uws/job-list.js';
import { parseVosiTables, parseVosiTablesAsync } from '../../adapters/ivoa/vosi/tables.js';
import { XML_MAX_NODES } from '../../adapters/ivoa/xml/limits.js';
import { parseXml, parseXmlAsync, type XmlElement } from '../../adapters/ivoa/xml/tree.js';
import { isConstellationError } from '../../registry/model/errors.js';
import { expectLoopTurned, measureLoop } from '../support/event-loop.js';

const DIR = new URL('../fixtures/', import.meta.url);
const fixtures = ['tables', 'uws', 'capabilities', 'availability'].flatMap((d) =>
  readdirSync(new URL(`${d}/`, DIR)).filter((f) => f.endsWith('.xml')).map((f) => ({ name: `${d}/${f}`, text: readFileSync(new URL(`${d}/${f}`, DIR), 'utf8') })));

/** What a tree holds, without parent links (which make it cyclic). */
function shape(el: XmlElement): unknown {
  return { uri: el.uri, local: el.local, attrs: el.attributes, text: el.text, line: el.line, column: el.column, inner: el.innerXml(), children: el.children.map(shape) };
}

/** The outcome of a parse: its tree's shape, or its error's code and message. */
async function outcome(parse: () => XmlElement | Promise<XmlElement>): Promise<unknown> {
  try {
    return shape(await parse());
  } catch (err) {
    if (!isConstellationError(err)) throw err;
    return { code: err.code, message: err.message };
  }
}

/** A VOSI tableset of `tables` tables with `columns` columns each (about 7 nodes a column). */
function tableset(tables: number, columns: number): string {
  const parts = ['<?xml version="1.0"?><vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"><schema><name>s</name>'];
  for (let t = 0; t < tables; t++) {
    parts.push(`<table type="table"><name>s.t${t}</name><description>table ${t}</description>`);
    for (let c = 0; c < columns; c++) parts.push(`<column><name>c${c}</name><unit>deg</unit><ucd>pos.eq.ra</ucd><dataType xsi:type="vs:VOTableType">double</dataType></column>`);
    parts.push('</table>');
  }
  parts.push('</schema></vosi:tableset>');
  return parts.join('');
}

describe('parseXmlAsync', () => {
  it('builds the same tree as parseXml for every recorded fixture, whatever the slice size', async () => {
    expect(fixtures.length).toBeGreaterThan(20);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fixtures), fc.integer({ min: 1, max: 4096 }), async (f, slice) => {
        expect(await outcome(() => parseXmlAsync(f.text, f.name, {}, slice)), `${f.name} in slices of ${slice}`).toEqual(await outcome(() => parseXml(f.text, f.name)));
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same error as parseXml for a truncated or corrupted fixture, whatever the slice size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fixtures), fc.nat(), fc.integer({ min: 1, max: 512 }), fc.constantFrom('cut', 'corrupt'), async (f, at, slice, how) => {
        const i = at % f.text.length;
        const text = how === 'cut' ? f.text.slice(0, i) : f.text.slice(0, i) + '<' + f.text.slice(i + 1);
        expect(await outcome(() => parseXmlAsync(text, f.name, {}, slice))).toEqual(await outcome(() => parseXml(text, f.name)));
      }),
      { numRuns: 300 },
    );
  });

  it('reads the tableset and job-list fixtures as the synchronous readers do', async () => {
    for (const f of fixtures.filter((x) => x.name.startsWith('tables/') && /<(\w+:)?tableset[\s>]/.test(x.text))) {
      expect(await parseVosiTablesAsync(f.text), f.name).toEqual(parseVosiTables(f.text));
    }
    for (const f of fixtures.filter((x) => x.name.startsWith('uws/') && /<(\w+:)?jobs[\s>]/.test(x.text))) {
      expect(await parseUwsJobListAsync(f.text), f.name).toEqual(parseUwsJobList(f.text));
    }
  });

  it('reads a tableset of about a million nodes without holding the event loop', async () => {
    // 2,300 tables of 70 columns (6 nodes a column): about 20 MB and 975,000 nodes, just under the node budget.
    const text = tableset(2_300, 70);
    const m = await measureLoop(() => parseVosiTablesAsync(text));
    expect(m.result.schemas[0].tables).toHaveLength(2_300);
    expect(m.result.schemas[0].tables[2_299].columns).toHaveLength(70);
    // In one piece the same read blocks for its whole duration (1.5-4 s here).
    expectLoopTurned(m, `tableset of ${(text.length / 1e6).toFixed(1)} MB read`);
    // The node budget still applies, slices or not.
    await expect(parseVosiTablesAsync(tableset(2_600, 70))).rejects.toMatchObject({ code: 'CONSTELLATION_E_UPSTREAM_MALFORMED', message: expect.stringContaining(`more than ${XML_MAX_NODES} elements`) });
  }, 120_000);

  it('the loop check refuses the same read done in one piece, however starved the CPU', async () => {
    // The control for expectLoopTurned, whose bounds stretch with the CPU the process is denied.
    const text = tableset(800, 70);
    const m = await measureLoop(async () => parseVosiTables(text));
    expect(m.ticks).toBeLessThanOrEqual(1);
    expect(() => expectLoopTurned(m, 'tableset read in one piece')).toThrow();
  }, 120_000);
});
