import { describe, expect, it } from 'vitest';
import { errorMessageOf } from '../../adapters/ivoa/tap/client.js';
import { buildMultipart } from '../../adapters/ivoa/tap/multipart.js';
import { estimateRowBytes, positionOf } from '../../adapters/tap/harvest.js';
import { harvestedDocument } from '../../adapters/tap/adapter.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';

async function collect(body: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString('utf8');
}

describe('multipart bodies', () => {
  it('writes fields and a streamed file part between boundaries', async () => {
    async function* file() {
      yield new TextEncoder().encode('<VOTABLE');
      yield new TextEncoder().encode('/>');
    }
    const mp = buildMultipart([
      { name: 'QUERY', value: 'SELECT 1' },
      { name: 't1', filename: 't1.xml', contentType: 'application/x-votable+xml', value: file() },
    ]);
    const boundary = /boundary=(.+)$/.exec(mp.contentType)![1];
    const text = await collect(mp.body);
    expect(text).toBe(
      `--${boundary}\r\nContent-Disposition: form-data; name="QUERY"\r\n\r\nSELECT 1\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="t1"; filename="t1.xml"\r\nContent-Type: application/x-votable+xml\r\n\r\n<VOTABLE/>\r\n` +
        `--${boundary}--\r\n`,
    );
  });
});

describe('error documents', () => {
  it('reads the QUERY_STATUS text of an error VOTable, else the plain text', async () => {
    const vot = '<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" version="1.4"><RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">column foo does not exist</INFO></RESOURCE></VOTABLE>';
    expect(await errorMessageOf(vot)).toBe('column foo does not exist');
    expect(await errorMessageOf('  <html><body>Bad   request</body></html> ')).toBe('Bad request');
  });
});

describe('dataset details', () => {
  it('finds the main position columns from UCDs', () => {
    expect(positionOf([{ name: 'raMean', ucd: 'POS.EQ.RA;meta.main' }, { name: 'decMean', ucd: 'pos.eq.dec;meta.main' }, { name: 'ra2', ucd: 'pos.eq.ra' }])).toEqual({ ra: 'raMean', dec: 'decMean' });
    expect(positionOf([{ name: 's_ra', ucd: 'pos.eq.ra' }, { name: 's_dec', ucd: 'pos.eq.dec' }])).toEqual({ ra: 's_ra', dec: 's_dec' });
    expect(positionOf([{ name: 'a', ucd: 'pos.eq.ra' }, { name: 'b', ucd: 'pos.eq.ra' }, { name: 'c', ucd: 'pos.eq.dec' }])).toBeUndefined();
  });

  it('estimates row widths from datatypes', () => {
    expect(estimateRowBytes([{ name: 'a', datatype: 'double' }, { name: 'b', datatype: 'long' }, { name: 'c', datatype: 'char', arraysize: '*' }, { name: 'd', datatype: 'char', arraysize: '19' }])).toBe(8 + 8 + 16 + 19);
    expect(estimateRowBytes([])).toBeUndefined();
  });

  it('keeps the first replica when two services list the same canonical id', () => {
    const ctx = { site: { id: 'mast', name: 'MAST', platform: 'mast' as const, url: 'https://mast.example.org/tap' }, credential: { kind: 'anonymous' as const } };
    const doc = harvestedDocument(
      ctx,
      [{ id: 'a', type: 'tap', url: 'https://x.example.org/a' }, { id: 'b', type: 'tap', url: 'https://x.example.org/b' }],
      [
        { id: 'dbo.t', service: 'a', table: 'dbo.t', access: { public: true } },
        { id: 'dbo.t', service: 'b', table: 'dbo.T', access: { public: true } },
      ],
    );
    expect(validateCapabilityDocument(doc).datasets).toEqual([{ id: 'dbo.t', service: 'a', table: 'dbo.t', access: { public: true } }]);
  });
});
