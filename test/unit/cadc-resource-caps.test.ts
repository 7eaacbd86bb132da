import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseResourceCaps } from '../../adapters/canfar/resource-caps.js';
import { ConstellationError } from '../../registry/model/errors.js';

const fixture = readFileSync(new URL('../fixtures/registry/constellation-resource-caps.properties', import.meta.url));

describe('parseResourceCaps', () => {
  const map = parseResourceCaps(fixture);

  it('reads every entry past comments, blank lines, CRLF, tabs and padding', () => {
    expect([...map.keys()]).toEqual([
      'ivo://example.org/reg',
      'ivo://example.org/minoc',
      'ivo://example.org/luskan',
      'ivo://example.org/skaha',
      'ivo://example.org/youcat',
      'ivo://example.org/argus',
      'ivo://example.org/CFHT',
      'ivo://example.org/BRITE-Constellation',
      'ivo://example.org/EUCLID.Q1',
    ]);
    expect(map.get('ivo://example.org/skaha')).toBe('https://ws-uv.example.org/skaha/capabilities');
    expect(map.get('ivo://example.org/reg')).toBe('https://ws.example.org/reg/capabilities');
    expect(map.get('ivo://example.org/luskan')).toBe('https://ws.example.org/luskan/capabilities');
    expect(map.get('ivo://example.org/argus')).toBe('https://ws.example.org/argus/capabilities?x=1&y=2');
    expect(map.get('ivo://example.org/CFHT')).toBe(map.get('ivo://example.org/EUCLID.Q1'));
  });

  it('accepts a string as well as bytes, and an empty document', () => {
    expect(parseResourceCaps('ivo://cadc.nrc.ca/skaha = https://ws-uv.canfar.net/skaha/capabilities\n')).toEqual(
      new Map([['ivo://cadc.nrc.ca/skaha', 'https://ws-uv.canfar.net/skaha/capabilities']]),
    );
    expect(parseResourceCaps('# nothing yet\n\n').size).toBe(0);
  });

  it('rejects an HTML error page, naming the line', () => {
    const html = '<html>\n<head><title>503 Service Unavailable</title></head>\n</html>\n';
    let caught: unknown;
    try {
      parseResourceCaps(html);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConstellationError);
    const e = caught as ConstellationError;
    expect(e.kind).toBe('UPSTREAM_MALFORMED');
    expect(e.message).toMatch(/^CADC resource-caps document: line 1: expected "ivoid = URL"/);
    expect(e.violations.map((v) => v.path)).toEqual(['line 1', 'line 2', 'line 3']);
  });

  it('rejects values that are not http(s) URLs and keys that are not identifiers', () => {
    expect(() => parseResourceCaps('ivo://a/b = ftp://x.example.org/caps')).toThrow(/line 1: "ftp:\/\/x\.example\.org\/caps" is not an http\(s\) URL/);
    expect(() => parseResourceCaps('\nskaha = https://x.example.org/caps')).toThrow(/line 2: "skaha" is not a resource identifier/);
  });

  it('rejects one identifier mapped to two locations, as CADC does', () => {
    expect(() => parseResourceCaps('ivo://a/b = https://one.example.org/caps\nivo://a/b = https://two.example.org/caps')).toThrow(
      /line 2: ivo:\/\/a\/b is already mapped to https:\/\/one\.example\.org\/caps on line 1/,
    );
  });

  it('round-trips any map through any spacing and interleaved comments', () => {
    const seg = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-.'), minLength: 1, maxLength: 12 });
    const ws = fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 4 });
    const entry = fc.record({ path: seg, host: seg, lead: ws, mid1: ws, mid2: ws, trail: ws, comment: fc.boolean() });
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => e.path, maxLength: 20 }), fc.constantFrom('\n', '\r\n'), (entries, eol) => {
        const lines = entries.flatMap((e) => [
          ...(e.comment ? [`${e.lead}# about ${e.path}`, ''] : []),
          `${e.lead}ivo://example.org/${e.path}${e.mid1}=${e.mid2}https://${e.host}.example.org/caps${e.trail}`,
        ]);
        const parsed = parseResourceCaps(lines.join(eol));
        expect(parsed).toEqual(new Map(entries.map((e) => [`ivo://example.org/${e.path}`, `https://${e.host}.example.org/caps`])));
      }),
      { numRuns: 200 },
    );
  });
});
