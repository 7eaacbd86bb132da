/**
 * Issue 9 property: a VOTable cut short anywhere is a coded error, never a hang, a wrong
 * result or another kind of error. Every recorded fixture is truncated at byte offsets and
 * read: before the end of its root element the read must fail with UPSTREAM_MALFORMED (or the
 * document's own QUERY_STATUS error, once that is read); at or after it, the result must be
 * exactly the whole document's.
 *
 * Which offsets: every one for the small fixtures (up to SMALL bytes: TABLEDATA, BINARY,
 * BINARY2, error and overflow documents); for the larger ones, every offset within NEAR bytes
 * of each structure boundary that changes the reader's state (the data section's start and
 * end tags, </TABLE>, </RESOURCE>, the root's end tag, the first bytes), an even spread of the
 * markup edges ('<' and '>') across the document, and offsets drawn by fast-check with the
 * input split into random chunks. A case slower than CASE_MS fails (a reader that hangs on one
 * runs into the test's timeout instead).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readVOTableToArray, type VOTableDocument } from '../../adapters/ivoa/votable/index.js';
import { isConstellationError, type ErrorKind } from '../../registry/model/errors.js';

const DIR = fileURLToPath(new URL('../fixtures/votable/', import.meta.url));
const FIXTURES = readdirSync(DIR).filter((f) => /\.(xml|vot)$/.test(f)).sort();
/** Fixtures up to this size are cut at every byte offset. */
const SMALL = 2800;
/** Offsets this close to a key boundary are all tried. */
const NEAR = 6;
/** How many markup edges of a large fixture are tried, spread evenly. */
const EDGES = 40;
/**
 * A read slower than this is a hang. A quiet machine reads one truncated fixture in ~2 ms; a
 * machine loaded by a CPU hog and a parallel suite took 2.3 s once (descheduled), so the bound
 * only tells a hang (the bug this guards against ran for minutes) from a slow machine.
 */
const CASE_MS = 20_000;

type Outcome = { ok: true; doc: VOTableDocument } | { ok: false; kind: ErrorKind | 'not coded'; message: string };

async function read(chunks: Uint8Array[]): Promise<Outcome & { ms: number }> {
  const started = performance.now();
  try {
    const doc = await readVOTableToArray(chunks);
    return { ok: true, doc, ms: performance.now() - started };
  } catch (err) {
    const kind = isConstellationError(err) ? err.kind : 'not coded';
    return { ok: false, kind, message: String((err as Error)?.message ?? err), ms: performance.now() - started };
  }
}

interface Fixture {
  name: string;
  bytes: Buffer;
  /** Offset just after the root element's end tag. */
  end: number;
  whole: Outcome;
}

async function load(name: string): Promise<Fixture> {
  const bytes = readFileSync(DIR + name);
  // latin1 keeps one character per byte, so string offsets are byte offsets.
  const text = bytes.toString('latin1');
  const ends = [...text.matchAll(/<\/(?:[A-Za-z_][\w.-]*:)?VOTABLE\s*>/g)];
  const last = ends.at(-1)!;
  return { name, bytes, end: last.index + last[0].length, whole: await read([bytes]) };
}

/** Checks the outcome of reading `f` cut at `cut`; returns the read's duration. */
function check(f: Fixture, cut: number, got: Outcome & { ms: number }): void {
  const where = `${f.name} cut at byte ${cut} of ${f.bytes.length}`;
  expect(got.ms, `${where}: read took ${got.ms.toFixed(0)} ms`).toBeLessThan(CASE_MS);
  const complete = cut >= f.end && /^\s*$/.test(f.bytes.subarray(f.end, cut).toString('latin1'));
  if (complete) {
    expect(got.ok, `${where}: the whole document was there`).toBe(f.whole.ok);
    if (got.ok && f.whole.ok) expect(got.doc, where).toEqual(f.whole.doc);
    if (!got.ok && !f.whole.ok) expect(got.kind, where).toBe(f.whole.kind);
    return;
  }
  if (got.ok) throw new Error(`${where}: a truncated document was read as complete`);
  const allowed: string[] = ['UPSTREAM_MALFORMED'];
  if (!f.whole.ok) allowed.push(f.whole.kind);
  expect(allowed, `${where}: ${got.kind}: ${got.message}`).toContain(got.kind);
  if (got.kind === 'UPSTREAM_MALFORMED') expect(got.message, where).toMatch(/^VOTable: /);
}

/** Offsets near every boundary where the reader changes state, and an even spread of markup edges. */
function boundaryOffsets(f: Fixture): number[] {
  const text = f.bytes.toString('latin1');
  const keys = [0, f.end, f.bytes.length];
  for (const m of text.matchAll(/<(?:[\w.-]+:)?(?:TABLEDATA|STREAM|BINARY2?)[\s>]|<\/(?:[\w.-]+:)?(?:TABLEDATA|STREAM|BINARY2?|DATA|TABLE|RESOURCE|VOTABLE)\s*>/g)) {
    keys.push(m.index, m.index + m[0].length);
  }
  const out = new Set<number>();
  for (const k of keys) for (let d = -NEAR; d <= NEAR; d++) out.add(k + d);
  const edges: number[] = [];
  for (let i = 0; i < text.length; i++) if (text[i] === '<' || text[i] === '>') edges.push(i);
  const step = Math.max(1, edges.length / EDGES);
  for (let j = 0; j < edges.length; j += step) {
    const e = edges[Math.floor(j)];
    out.add(e);
    out.add(e + 1);
  }
  return [...out].filter((k) => k >= 0 && k <= f.bytes.length).sort((a, b) => a - b);
}

/** `bytes` split at the given cut points (as chunks of a network body would be). */
function chunked(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) out.push(bytes.subarray(from, p));
    from = Math.max(from, p);
  }
  if (from < bytes.length) out.push(bytes.subarray(from));
  return out;
}

describe('a truncated VOTable is a coded error, never a hang or a wrong result', () => {
  it('has fixtures to cut, among them small ones cut everywhere', () => {
    expect(FIXTURES.length).toBeGreaterThan(20);
    expect(FIXTURES.filter((n) => readFileSync(DIR + n).length <= SMALL).length).toBeGreaterThanOrEqual(5);
  });

  it.each(FIXTURES)('%s', async (name) => {
    const f = await load(name);
    expect(f.whole.ok || f.whole.kind === 'UPSTREAM', `${name} reads whole: ${f.whole.ok ? '' : f.whole.message}`).toBe(true);
    const offsets = f.bytes.length <= SMALL ? Array.from({ length: f.bytes.length + 1 }, (_, i) => i) : boundaryOffsets(f);
    let slowest = 0;
    for (const cut of offsets) {
      const got = await read([f.bytes.subarray(0, cut)]);
      slowest = Math.max(slowest, got.ms);
      check(f, cut, got);
    }
    // Random cuts, each read from randomly sized chunks (the reader keeps state across chunks).
    const runs = f.bytes.length <= SMALL ? 20 : 30;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: f.bytes.length }), fc.array(fc.nat(), { maxLength: 12 }), async (cut, splits) => {
        const prefix = f.bytes.subarray(0, cut);
        const got = await read(chunked(prefix, splits));
        slowest = Math.max(slowest, got.ms);
        check(f, cut, got);
      }),
      { numRuns: runs },
    );
    console.log(`${name}: ${f.bytes.length} bytes, ${offsets.length} cuts${f.bytes.length <= SMALL ? ' (every offset)' : ''} + ${runs} random, slowest read ${slowest.toFixed(1)} ms`);
  }, 60_000);
});
