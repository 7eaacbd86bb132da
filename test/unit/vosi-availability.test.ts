import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAvailability } from '../../adapters/ivoa/vosi/availability.js';
import { parseDateTime, parseInstant } from '../../adapters/ivoa/xml/datetime.js';
import { ConstellationError } from '../../registry/model/errors.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/availability/${name}`, import.meta.url));

describe('parseAvailability', () => {
  it('reads a default-namespace document (CASDA) with milliseconds and an empty note', () => {
    const a = parseAvailability(fixture('casda-availability.xml'));
    expect(a.available).toBe(true);
    expect(a.upSince).toEqual({ raw: '2022-04-07T11:11:40.006Z', date: new Date('2022-04-07T11:11:40.006Z') });
    expect(a.notes).toEqual([]);
    expect(a.downAt).toBeUndefined();
  });

  it('keeps invalid dates as raw text with a null date (DaCHS-style avl: prefix)', () => {
    const a = parseAvailability(fixture('dachs-availability-all-fields.xml'));
    expect(a.available).toBe(true);
    expect(a.upSince).toEqual({ raw: '2000-00-00T00:00:00Z', date: null });
    expect(a.downAt).toEqual({ raw: '2666-00-00T00:00:00Z', date: null });
    expect(a.backAt).toEqual({ raw: '2666-23-23T13:37:00Z', date: null });
    expect(a.notes).toEqual(['foo', 'bar']);
  });

  it('reads available=false with a multi-line note (Rubin SIA, no XML declaration)', () => {
    const a = parseAvailability(fixture('rsp-sia-availability-down-404.xml'));
    expect(a.available).toBe(false);
    expect(a.notes).toHaveLength(1);
    expect(a.notes[0]).toMatch(/^Client error '404 Not Found' for url 'https:\/\/example\.com\/api\/butler\/repo\/dp02\/butler\.yaml'\nFor more/);
  });

  it('reads a minimal single-line document', () => {
    expect(parseAvailability(fixture('rsp-sia-availability-ok.xml'))).toEqual({ available: true, notes: [] });
  });

  it('reads the spec sample (default and vosi: prefix on one URI, upSince without zone as UTC)', () => {
    const a = parseAvailability(fixture('vosi-spec-sample-availability.xml'));
    expect(a.available).toBe(true);
    expect(a.upSince?.date?.toISOString()).toBe('2008-11-15T09:14:33.000Z');
  });

  it('reads a vosi:-prefixed document with a note and no upSince', () => {
    const a = parseAvailability(fixture('constellation-availability-vosi-prefix-note.xml'));
    expect(a).toEqual({ available: true, notes: ['service is accepting queries'] });
  });

  it('accepts 1/0 and padded booleans, and children a writer left unqualified', () => {
    const doc = (v: string): string =>
      `<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0"><available>  ${v}\n</available></vosi:availability>`;
    expect(parseAvailability(doc('1')).available).toBe(true);
    expect(parseAvailability(doc('false')).available).toBe(false);
  });

  it('rejects a missing or non-boolean <available>', () => {
    const base = '<availability xmlns="http://www.ivoa.net/xml/VOSIAvailability/v1.0">';
    expect(() => parseAvailability(`${base}<note>x</note></availability>`)).toThrow(/missing <available>/);
    expect(() => parseAvailability(`${base}<available>maybe</available></availability>`)).toThrow(/not a boolean: "maybe"/);
  });

  it('rejects other roots and malformed XML with UPSTREAM_MALFORMED', () => {
    const wrong = () => parseAvailability('<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"/>');
    expect(wrong).toThrow(ConstellationError);
    expect(wrong).toThrow(/VOSI availability document: expected <availability>.*found <vosi:capabilities>/);
    try {
      parseAvailability('<availability xmlns="http://www.ivoa.net/xml/VOSIAvailability/v1.0"><available>true</availability>');
      expect.unreachable();
    } catch (err) {
      expect((err as ConstellationError).kind).toBe('UPSTREAM_MALFORMED');
      expect((err as ConstellationError).cause).toBeInstanceOf(Error);
    }
  });

  it('decodes a Buffer in the encoding the declaration names', () => {
    const xml = '<?xml version="1.0" encoding="ISO-8859-1"?><availability xmlns="http://www.ivoa.net/xml/VOSIAvailability/v1.0"><available>true</available><note>Wartung läuft</note></availability>';
    expect(parseAvailability(Buffer.from(xml, 'latin1')).notes).toEqual(['Wartung läuft']);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(xml.replace('ISO-8859-1', 'UTF-8'), 'utf8')]);
    expect(parseAvailability(bom).notes).toEqual(['Wartung läuft']);
  });

  it('forgives whitespace before the XML declaration', () => {
    const a = parseAvailability('\n\n  <?xml version="1.0"?><availability xmlns="http://www.ivoa.net/xml/VOSIAvailability/v1.0"><available>true</available></availability>');
    expect(a.available).toBe(true);
  });
});

describe('parseDateTime', () => {
  it('accepts xs:dateTime forms services send', () => {
    expect(parseDateTime('2020-04-17T08:10:22.793+0800')?.toISOString()).toBe('2020-04-17T00:10:22.793Z');
    expect(parseDateTime('2016-11-17T13:33:50.755+01:00')?.toISOString()).toBe('2016-11-17T12:33:50.755Z');
    expect(parseDateTime('2009-05-19T17:01:44Z')?.toISOString()).toBe('2009-05-19T17:01:44.000Z');
    expect(parseDateTime('2009-05-19 17:01:44')?.toISOString()).toBe('2009-05-19T17:01:44.000Z');
    expect(parseDateTime('2009-05-19')?.toISOString()).toBe('2009-05-19T00:00:00.000Z');
    expect(parseDateTime('2024-02-29T23:59:59.123456Z')?.toISOString()).toBe('2024-02-29T23:59:59.123Z');
    expect(parseDateTime('2024-02-28T24:00:00Z')?.toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(parseDateTime('0050-01-01T00:00:00Z')?.getUTCFullYear()).toBe(50);
  });

  it('rejects impossible dates and non-dates', () => {
    for (const bad of ['2000-00-00T00:00:00Z', '2666-23-23T13:37:00Z', '2023-02-29T00:00:00Z', '2023-04-31', '2020-01-01T25:00:00Z', '-1', '', 'now', '2020-01-01T00:00:00+15:00']) {
      expect(parseDateTime(bad), bad).toBeNull();
    }
    expect(parseInstant('  -1 ')).toEqual({ raw: '-1', date: null });
  });

  it('round-trips any instant written as ISO 8601 with any offset', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        fc.boolean(),
        (d, offset, colon) => {
          const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 23);
          const sign = offset < 0 ? '-' : '+';
          const abs = Math.abs(offset);
          const hh = String(Math.floor(abs / 60)).padStart(2, '0');
          const mm = String(abs % 60).padStart(2, '0');
          expect(parseDateTime(`${local}${sign}${hh}${colon ? ':' : ''}${mm}`)?.getTime()).toBe(d.getTime());
        },
      ),
      { numRuns: 300 },
    );
  });
});
