import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readVOTable } from '../../adapters/ivoa/votable/index.js';
import type { VOTableEvent } from '../../adapters/ivoa/votable/index.js';

const DIR = fileURLToPath(new URL('../fixtures/votable/', import.meta.url));
const FILES = readdirSync(DIR).filter((f) => /\.(xml|vot)$/.test(f));

/**
 * Everything a reader reports, independent of how rows were batched: consecutive `rows`
 * events of one table are merged (batches end at input chunk boundaries by design).
 * An error becomes its message.
 */
async function outcome(source: AsyncIterable<Uint8Array | string> | Uint8Array, batchSize?: number): Promise<string> {
  const events: VOTableEvent[] = [];
  try {
    for await (const ev of readVOTable(source, { batchSize })) {
      const last = events[events.length - 1];
      if (ev.type === 'rows' && last?.type === 'rows' && last.table === ev.table) last.rows.push(...ev.rows);
      else events.push(ev.type === 'rows' ? { ...ev, rows: [...ev.rows] } : ev);
    }
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
  return JSON.stringify(events, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : Number.isNaN(v) ? 'NaN' : v));
}

async function* split(buf: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let start = 0;
  for (const c of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (c <= start || c >= buf.length) continue;
    yield buf.subarray(start, c);
    start = c;
  }
  yield buf.subarray(start);
}

async function* bytewise(buf: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i++) yield buf.subarray(i, i + 1);
}

const reference = new Map<string, string>();
async function whole(name: string): Promise<string> {
  let r = reference.get(name);
  if (r === undefined) {
    r = await outcome(readFileSync(DIR + name));
    reference.set(name, r);
  }
  return r;
}

describe('chunk-boundary robustness', () => {
  it('has fixtures of every serialisation to work on', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(25);
  });

  it.each(FILES)('%s: one byte at a time gives the same result', async (name) => {
    const buf = readFileSync(DIR + name);
    const ref = await whole(name);
    expect(await outcome(bytewise(buf))).toBe(ref);
  });

  it.each(FILES)('%s: random chunk sizes give the same result', async (name) => {
    const buf = readFileSync(DIR + name);
    const ref = await whole(name);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: Math.max(1, buf.length - 1) }), { maxLength: 40 }), async (cuts) => {
        expect(await outcome(split(buf, cuts))).toBe(ref);
      }),
      { numRuns: 25 },
    );
  });

  it.each(FILES)('%s: batch size 1 and text chunks give the same rows', async (name) => {
    const text = readFileSync(DIR + name, 'utf8');
    const ref = await whole(name);
    async function* texts(): AsyncGenerator<string> {
      for (let i = 0; i < text.length; i += 97) yield text.slice(i, i + 97);
    }
    expect(await outcome(texts(), 1)).toBe(ref);
  });

  it('a CR LF document reads like its LF twin, whatever the split', async () => {
    const lf = readFileSync(DIR + 'alltypes-tabledata.xml');
    const crlf = Buffer.from(lf.toString('utf8').replace(/\n/g, '\r\n'));
    const ref = await outcome(lf);
    expect(await outcome(crlf)).toBe(ref);
    expect(await outcome(bytewise(crlf))).toBe(ref);
  });
});
