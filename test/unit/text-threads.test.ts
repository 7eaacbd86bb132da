/**
 * CSV/JSON conversion on worker threads (broker/jobs/text-threads.ts): more conversions at once
 * than there are workers, a client that stops reading, a site that stalls or breaks off, and a
 * client that reads slowly (the site's body is not read ahead of it without bound). The text
 * itself is compared with the same-thread converter in votable-text-table.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeVOTableToBuffer, type Row, type WritableTable } from '../../adapters/ivoa/votable/index.js';
import { startTextThreads, textOnThread } from '../../broker/jobs/text-threads.js';
import { toText } from '../../broker/jobs/to-text.js';
import { ConstellationError } from '../../registry/model/errors.js';

const TABLE: WritableTable = { fields: [{ name: 'id', datatype: 'long' }, { name: 'ra', datatype: 'double' }, { name: 'mag', datatype: 'float' }, { name: 'name', datatype: 'char', arraysize: '*' }] };
const ROWS: Row[] = Array.from({ length: 3000 }, (_, i) => [BigInt(i) * 7_919n, (i * 0.137) % 360, Math.fround(10 + (i % 70) / 7), `star ${i}`]);

async function text(body: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const p of body) parts.push(p);
  return Buffer.concat(parts).toString('utf8');
}

async function* chunked(bytes: Uint8Array, size = 16_384): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/**
 * A BINARY2 document that never ends: its header, then the same block of rows for ever, as
 * base64 (padded blocks may follow one another). `pulled` counts the bytes handed out; `closed`
 * settles when the reader gives the body up.
 */
async function endless(): Promise<{ body: AsyncGenerator<Uint8Array>; pulled: () => number; closed: Promise<void> }> {
  const doc = (await writeVOTableToBuffer(TABLE, ROWS, { serialization: 'BINARY2' })).toString('latin1');
  const open = doc.indexOf('>', doc.indexOf('<STREAM')) + 1;
  const head = Buffer.from(doc.slice(0, open), 'latin1');
  const block = Buffer.from(doc.slice(open, doc.indexOf('</STREAM>')).replace(/\s+/g, ''), 'latin1');
  let pulled = 0;
  let onClose!: () => void;
  const closed = new Promise<void>((resolve) => (onClose = resolve));
  async function* body(): AsyncGenerator<Uint8Array> {
    try {
      pulled += head.length;
      yield head;
      for (;;) {
        pulled += block.length;
        yield block;
      }
    } finally {
      onClose();
    }
  }
  return { body: body(), pulled: () => pulled, closed };
}

describe('text conversion on worker threads', () => {
  beforeAll(() => startTextThreads(), 120_000);

  it('converts more results at once than there are workers, each whole (the rest on this thread)', async () => {
    const bytes = await writeVOTableToBuffer(TABLE, ROWS, { serialization: 'BINARY2' });
    const want = await text(toText(bytes, 'csv'));
    const got = await Promise.all(Array.from({ length: 7 }, () => text(textOnThread(chunked(bytes), 'csv'))));
    for (const g of got) expect(g).toBe(want);
    // And the workers are free again afterwards.
    expect(await text(textOnThread(chunked(bytes), 'json'))).toBe(await text(toText(bytes, 'json')));
  });

  it('a client that stops reading stops the conversion and gives the site’s body up; the worker serves the next', async () => {
    const site = await endless();
    for await (const piece of textOnThread(site.body, 'csv')) {
      expect(Buffer.from(piece).toString('utf8')).toMatch(/^id,ra,mag,name\r\n/);
      break;
    }
    await site.closed;
    const bytes = await writeVOTableToBuffer(TABLE, ROWS.slice(0, 10), { serialization: 'BINARY2' });
    expect(await text(textOnThread(chunked(bytes), 'csv'))).toBe(await text(toText(bytes, 'csv')));
  });

  it('a slow client: the site’s body is read only a bounded way ahead of it', async () => {
    const site = await endless();
    const it = textOnThread(site.body, 'json')[Symbol.asyncIterator]();
    await it.next();
    // Whatever this machine's speed, the reading stops a few MB ahead (text queued up to 4 MB,
    // a few chunks in flight): the body is endless, so without flow control it would not stop.
    await sleep(1500);
    const ahead = site.pulled();
    expect(ahead).toBeLessThan(32 << 20);
    await it.return?.();
    await site.closed;
  });

  it('a site that stalls: a client that gives up is not held by the pending read', async () => {
    const bytes = await writeVOTableToBuffer(TABLE, ROWS, { serialization: 'BINARY2' });
    let release!: () => void;
    const never = new Promise<void>((resolve) => (release = resolve));
    let given = false;
    async function* stalling(): AsyncGenerator<Uint8Array> {
      try {
        yield bytes.subarray(0, 20_000);
        await never;
      } finally {
        given = true;
      }
    }
    const it = textOnThread(stalling(), 'csv')[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    await it.return?.();
    // The generator's own finally runs once its pending `await never` is released; the
    // conversion did not wait for it.
    expect(given).toBe(false);
    release();
    await expect.poll(() => given, { timeout: 30_000 }).toBe(true);
  });

  it('a body that breaks off fails with the body’s own error, and a malformed one with the converter’s coded error', async () => {
    const bytes = await writeVOTableToBuffer(TABLE, ROWS, { serialization: 'BINARY2' });
    const cut = new ConstellationError('UPSTREAM', 'the site closed the connection mid-body');
    async function* breaking(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 30_000);
      throw cut;
    }
    await expect(text(textOnThread(breaking(), 'csv'))).rejects.toBe(cut);
    await expect(text(textOnThread(chunked(Buffer.from('<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="nonsense"/></TABLE></RESOURCE></VOTABLE>')), 'csv'))).rejects.toMatchObject({
      code: 'CONSTELLATION_E_UPSTREAM_MALFORMED',
    });
  });
});
