/**
 * Validation told which MOC texts are already in normal form (the site's stored coverage, or a
 * first pass's output) keeps those as they are without parsing them, and still checks
 * everything else: other texts are parsed under the caps, and the caps and schema still apply
 * to the known ones.
 */
import { describe, expect, it } from 'vitest';
import { MOC_MAX_CELLS, MOC_MAX_CHARS } from '../../registry/coverage/limits.js';
import { parseMocAscii } from '../../registry/coverage/moc.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { validateCapabilityDocument, validateCapabilityDocumentAsync } from '../../registry/model/validate.js';
import { documentFor } from '../support/documents.js';

/** A valid MOC that is not in normal form (normal: "0/0-3"). */
const SPELLED_OUT = '0/0 0/1 0/2 0/3';

async function refusal(input: unknown, normalMocs: ReadonlySet<string>): Promise<ConstellationError> {
  const err = await validateCapabilityDocumentAsync(input, Date.now(), { normalMocs }).then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ConstellationError)) throw new Error(`expected a ConstellationError, got ${String(err)}`);
  return err;
}

describe('validation with MOC texts known to be normal', () => {
  it('keeps a known text as it is and normalises the others', async () => {
    const doc = documentFor('s', [{ coverage: SPELLED_OUT }, { coverage: '1/6 1/7' }]);
    // Without the hint both are parsed and normalised.
    expect(validateCapabilityDocument(doc).datasets.map((d) => d.coverage)).toEqual(['0/0-3', '1/6-7']);
    // With it, the known one is not parsed (it stays as given: the caller vouches for it).
    const hinted = await validateCapabilityDocumentAsync(doc, Date.now(), { normalMocs: new Set([SPELLED_OUT]) });
    expect(hinted.datasets.map((d) => d.coverage)).toEqual([SPELLED_OUT, '1/6-7']);
    expect(validateCapabilityDocument(doc, Date.now(), { normalMocs: new Set([SPELLED_OUT]) }).datasets[0].coverage).toBe(SPELLED_OUT);
  });

  it('still refuses a hostile MOC beside known ones, naming its path', async () => {
    const known = new Set(['0/0-3']);
    for (const [bad, rule] of [['0/abc', 'moc'], ['30/1', 'moc'], [`12/${Array.from({ length: MOC_MAX_CELLS + 1 }, (_, i) => 2 * i).join(' ')}`, 'moc-limit']] as const) {
      const doc = documentFor('s', [{ coverage: '0/0-3' }, { coverage: bad }]);
      const err = await refusal(doc, known);
      expect(err.code).toBe('CONSTELLATION_E_INVALID_DOCUMENT');
      expect(err.violations).toEqual([expect.objectContaining({ path: '/datasets/1/coverage', rule })]);
    }
  });

  it('does not let a known text past the caps or the schema', async () => {
    const huge = `0/0-11 ${' '.repeat(MOC_MAX_CHARS)}`;
    const err = await refusal(documentFor('s', [{ coverage: huge }]), new Set([huge]));
    expect(err.violations).toEqual([expect.objectContaining({ path: '/datasets/0/coverage', rule: 'maxLength' })]);
    const nul = '0/0-3\u0000';
    const stored = await refusal(documentFor('s', [{ coverage: nul }]), new Set([nul]));
    expect(stored.violations[0]?.path).toBe('/datasets/0/coverage');
  });

  it('gives the sky fraction of each MOC it parsed, by its normal form, and none for a known text', async () => {
    const doc = documentFor('s', [{ coverage: SPELLED_OUT }, { coverage: '1/6 1/7' }, { coverage: '2/5' }, { coverage: '1/6 1/7' }]);
    const fractions = new Map<string, number>();
    await validateCapabilityDocumentAsync(doc, Date.now(), { normalMocs: new Set(['2/5']), fractions });
    expect([...fractions.keys()].sort()).toEqual(['0/0-3', '1/6-7']);
    expect(fractions.get('0/0-3')).toBe(parseMocAscii('0/0-3').skyFraction());
    expect(fractions.get('1/6-7')).toBe(parseMocAscii('1/6-7').skyFraction());
    const sync = new Map<string, number>();
    validateCapabilityDocument(doc, Date.now(), { fractions: sync });
    expect(sync).toEqual(new Map([...fractions, ['2/5', parseMocAscii('2/5').skyFraction()]]));
  });
});
