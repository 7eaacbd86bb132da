/**
 * Issue 9, finding 4: deeply nested XML from a site cost time quadratic in the depth (10k
 * levels 0.8 s, 40k 24 s, a 200,000-level VOSI tableset 13 minutes). Every IVOA parser now
 * refuses nesting beyond XML_MAX_DEPTH at the first too-deep start tag, and the whole-tree
 * parses refuse more than a bounded number of elements and attributes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { parseCapabilities } from '../../adapters/ivoa/vosi/capabilities.js';
import { parseVosiTables } from '../../adapters/ivoa/vosi/tables.js';
import { parseAvailability } from '../../adapters/ivoa/vosi/availability.js';
import { parseUwsJob } from '../../adapters/ivoa/uws/job.js';
import { parseUwsJobList } from '../../adapters/ivoa/uws/job-list.js';
import { XML_MAX_DEPTH, XML_MAX_NODES_SMALL } from '../../adapters/ivoa/xml/limits.js';
import { AT_ONCE_MS } from '../support/wait.js';
import { NS } from '../../adapters/ivoa/xml/namespaces.js';
import { parseXml } from '../../adapters/ivoa/xml/tree.js';
import { ConstellationError } from '../../registry/model/errors.js';

const VOT_NS = 'http://www.ivoa.net/xml/VOTable/v1.3';

/** `levels` elements named `tag`, each inside the previous one. */
function nest(tag: string, levels: number, inner = ''): string {
  const close = tag.split(' ')[0];
  return `<${tag}>`.repeat(levels) + inner + `</${close}>`.repeat(levels);
}

const documents = {
  'VOSI tables document': (n: number) => `<vosi:tableset xmlns:vosi="${NS.vosiTables}"><schema><name>s</name>${nest('x', n)}</schema></vosi:tableset>`,
  'VOSI capabilities document': (n: number) => `<vosi:capabilities xmlns:vosi="${NS.vosiCapabilities}">${nest('capability', n)}</vosi:capabilities>`,
  'UWS job document': (n: number) =>
    `<uws:job xmlns:uws="${NS.uws}"><uws:jobId>1</uws:jobId><uws:phase>EXECUTING</uws:phase><uws:jobInfo>${nest('i', n)}</uws:jobInfo></uws:job>`,
  'UWS job list': (n: number) => `<uws:jobs xmlns:uws="${NS.uws}">${nest('uws:jobref', n)}</uws:jobs>`,
  VOTable: (n: number) => `<VOTABLE version="1.4" xmlns="${VOT_NS}"><RESOURCE>${nest('GROUP', n)}</RESOURCE></VOTABLE>`,
};
type Kind = keyof typeof documents;

const parsers: Record<Kind, (text: string) => unknown> = {
  'VOSI tables document': parseVosiTables,
  'VOSI capabilities document': parseCapabilities,
  'UWS job document': parseUwsJob,
  'UWS job list': parseUwsJobList,
  VOTable: (text) => readVOTableToArray(Buffer.from(text)),
};

/** Runs `parse` and returns the error it throws (a test failure when it does not). */
async function refusal(parse: () => unknown): Promise<ConstellationError> {
  try {
    await parse();
  } catch (err) {
    expect(err).toBeInstanceOf(ConstellationError);
    return err as ConstellationError;
  }
  throw new Error('expected the document to be refused');
}

describe('nesting depth', () => {
  it('accepts a tree exactly XML_MAX_DEPTH levels deep and refuses one level more, naming the document and the depth', async () => {
    expect(XML_MAX_DEPTH).toBe(64);
    const atLimit = parseXml(nest('a', XML_MAX_DEPTH), 'test document');
    let depth = 1;
    for (let e = atLimit; e.children.length > 0; e = e.children[0]) depth++;
    expect(depth).toBe(XML_MAX_DEPTH);

    const err = await refusal(() => parseXml(`<?xml version="1.0"?>\n${nest('a', XML_MAX_DEPTH + 1)}`, 'test document'));
    expect(err.kind).toBe('UPSTREAM_MALFORMED');
    expect(err.code).toBe('CONSTELLATION_E_UPSTREAM_MALFORMED');
    expect(err.message).toMatch(/^test document: elements nested deeper than 64 levels at line 2, column \d+/);
    expect(err.violations).toEqual([expect.objectContaining({ rule: 'xml-depth', path: expect.stringMatching(/^line 2, column \d+$/) })]);
  });

  it('reads an honest VOTable with nested RESOURCEs and GROUPs well within the limit', async () => {
    const groups = nest('GROUP name="g"', 40, '<PARAM name="p" datatype="int" value="7"/>');
    const text = `<VOTABLE version="1.4" xmlns="${VOT_NS}"><RESOURCE><RESOURCE type="results">${groups}<TABLE><FIELD name="n" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></RESOURCE></VOTABLE>`;
    const doc = await readVOTableToArray(text);
    expect(doc.tables[0].rows).toEqual([[1]]);
  });

  it.each(Object.keys(documents) as Kind[])('refuses a %s nested 10k, 20k, 40k and 200k levels deep, each quickly', async (kind) => {
    const times: string[] = [];
    for (const levels of [10_000, 20_000, 40_000, 200_000]) {
      const text = documents[kind](levels);
      const started = performance.now();
      const err = await refusal(() => parsers[kind](text));
      const ms = performance.now() - started;
      times.push(`${levels / 1000}k: ${ms.toFixed(1)} ms`);
      expect(err.kind).toBe('UPSTREAM_MALFORMED');
      expect(err.message).toContain(`${kind}: elements nested deeper than ${XML_MAX_DEPTH} levels`);
      // Before the fix 40k levels took 24 s; the refusal now comes at level 65, so even the
      // 200k-level document (1.4 MB) is refused in milliseconds. The bound allows a loaded machine.
      expect(ms).toBeLessThan(AT_ONCE_MS);
    }
    console.log(`${kind} refused: ${times.join(', ')}`);
  });

  it('refuses a deep VOTable while streaming, without reading the rest of the document', async () => {
    let pulled = 0;
    // 100 levels of GROUP, then a source that would go on forever: the refusal must come first.
    async function* endless(): AsyncGenerator<string> {
      yield `<VOTABLE version="1.4" xmlns="${VOT_NS}"><RESOURCE>`;
      yield '<GROUP>'.repeat(100);
      for (;;) {
        pulled++;
        if (pulled > 1) throw new Error('the reader asked for more input after the too-deep element');
        yield '<GROUP>';
      }
    }
    const err = await refusal(() => readVOTableToArray(endless()));
    expect(err.kind).toBe('UPSTREAM_MALFORMED');
    expect(err.message).toMatch(/^VOTable: elements nested deeper than 64 levels at line 1, column \d+/);
    expect(pulled).toBe(0);
  });

  it('counts levels of foreign-namespace elements in a VOTable too (MIVOT, STC)', async () => {
    const text = `<VOTABLE version="1.4" xmlns="${VOT_NS}"><RESOURCE>${nest('m:X xmlns:m="urn:m"', 70)}</RESOURCE></VOTABLE>`;
    expect((await refusal(() => readVOTableToArray(text))).message).toContain('nested deeper than 64 levels');
  });

  it('refuses deep nesting after a data section, saying where', async () => {
    const text = `<VOTABLE version="1.4" xmlns="${VOT_NS}"><RESOURCE><TABLE><FIELD name="n" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>${nest('INFO name="x"', 80)}</RESOURCE></VOTABLE>`;
    const err = await refusal(() => readVOTableToArray(text));
    expect(err.message).toContain('nested deeper than 64 levels at a start tag after the data of table 1');
  });
});

describe('nesting depth, as a property', () => {
  const name = fc.constantFrom('a', 'x:b', 'GROUP', 'uws:jobInfo', 'm:Z');
  const element = fc.record({ name, attrs: fc.nat({ max: 2 }), selfClose: fc.boolean() });

  it('a tree is refused exactly when it nests deeper than XML_MAX_DEPTH, whatever its names and namespaces', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 140 }), fc.array(element, { minLength: 1, maxLength: 10 }), (depth, kinds) => {
        // `depth` elements, each holding the next, drawn from `kinds` in turn; the innermost
        // one may be self-closing.
        const used = Array.from({ length: depth }, (_, i) => ({ ...kinds[i % kinds.length], selfClose: i === depth - 1 && kinds[i % kinds.length].selfClose }));
        let open = '';
        let close = '';
        used.forEach((e, i) => {
          const attrs = Array.from({ length: e.attrs }, (_, k) => ` p${k}="${k}"`).join('');
          const ns = ' xmlns:x="urn:x" xmlns:uws="urn:uws" xmlns:m="urn:m"';
          const tag = `${e.name}${i === 0 ? ns : ''}${attrs}`;
          if (i === used.length - 1 && e.selfClose) open += `<${tag}/>`;
          else {
            open += `<${tag}>`;
            close = `</${e.name}>` + close;
          }
        });
        const text = open + close;
        if (used.length <= XML_MAX_DEPTH) {
          expect(parseXml(text, 'generated').local).toBe(used[0].name.split(':').pop());
        } else {
          expect(() => parseXml(text, 'generated')).toThrow(/generated: elements nested deeper than 64 levels/);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the VOTable reader agrees, whatever chunks the document arrives in', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 120 }), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 }), async (groups, sizes) => {
        // VOTABLE and RESOURCE are two levels; the GROUPs and a PARAM inside the last one add the rest.
        const text = `<VOTABLE version="1.4" xmlns="${VOT_NS}"><RESOURCE>${nest('GROUP', groups, '<PARAM name="p" datatype="int" value="1"/>')}</RESOURCE></VOTABLE>`;
        const chunks: string[] = [];
        let at = 0;
        for (let i = 0; at < text.length; i++) {
          const n = sizes.length === 0 ? text.length : sizes[i % sizes.length] * 7;
          chunks.push(text.slice(at, at + n));
          at += n;
        }
        const depth = groups + 3;
        if (depth <= XML_MAX_DEPTH) {
          expect((await readVOTableToArray(chunks)).resources).toHaveLength(1);
        } else {
          const err = await refusal(() => readVOTableToArray(chunks));
          expect(err.message).toContain('VOTable: elements nested deeper than 64 levels');
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('tree size', () => {
  it('refuses a tree with more elements and attributes than its budget, as soon as the budget is crossed', async () => {
    const wide = `<r>${'<e a="1" b="2"/>'.repeat(1000)}</r>`;
    expect(parseXml(wide, 'small', { maxNodes: 3001 }).children).toHaveLength(1000);
    const err = await refusal(() => parseXml(wide, 'small', { maxNodes: 3000 }));
    expect(err.kind).toBe('UPSTREAM_MALFORMED');
    expect(err.message).toMatch(/^small: more than 3000 elements and attributes \(reached at line 1, column \d+\); refused$/);
    expect(err.violations[0].rule).toBe('xml-size');
  });

  it('gives capabilities, availability and UWS job documents the small budget', async () => {
    expect(XML_MAX_NODES_SMALL).toBe(100_000);
    const many = '<x/>'.repeat(XML_MAX_NODES_SMALL);
    const caps = `<vosi:capabilities xmlns:vosi="${NS.vosiCapabilities}">${many}</vosi:capabilities>`;
    const avail = `<vosi:availability xmlns:vosi="${NS.vosiAvailability}"><vosi:available>true</vosi:available>${many}</vosi:availability>`;
    const job = `<uws:job xmlns:uws="${NS.uws}"><uws:jobId>1</uws:jobId><uws:phase>EXECUTING</uws:phase><uws:jobInfo>${many}</uws:jobInfo></uws:job>`;
    for (const [what, parse] of [
      ['VOSI capabilities document', () => parseCapabilities(caps)],
      ['VOSI availability document', () => parseAvailability(avail)],
      ['UWS job document', () => parseUwsJob(job)],
    ] as const) {
      const err = await refusal(parse);
      expect(err.kind).toBe('UPSTREAM_MALFORMED');
      expect(err.message).toContain(`${what}: more than ${XML_MAX_NODES_SMALL} elements and attributes`);
    }
  });

  it('still reads a document at the small budget (the root\'s namespace declaration counts too)', () => {
    const caps = `<vosi:capabilities xmlns:vosi="${NS.vosiCapabilities}">${'<x/>'.repeat(XML_MAX_NODES_SMALL - 2)}</vosi:capabilities>`;
    expect(parseCapabilities(caps)).toEqual([]);
  });
});
