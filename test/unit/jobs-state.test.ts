import { describe, expect, it } from 'vitest';
import { writeVOTableToBuffer } from '../../adapters/ivoa/votable/index.js';
import { cellJson, cellText, convertResult, csvField, resultFormatOf } from '../../broker/jobs/results.js';
import { isLegalTransition, isTerminal, JOB_STATES, legalFrom, stateFromSite } from '../../broker/jobs/state.js';

describe('job state machine', () => {
  it('never leaves a terminal state and never stays put as a transition', () => {
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        if (isTerminal(from) || from === to) expect(isLegalTransition(from, to), `${from} → ${to}`).toBe(false);
      }
    }
    expect(isLegalTransition('PENDING', 'QUEUED')).toBe(true);
    expect(isLegalTransition('EXECUTING', 'PENDING')).toBe(false);
    expect(legalFrom('ABORTED')).toEqual(['PENDING', 'QUEUED', 'EXECUTING']);
    expect(legalFrom('PENDING')).toEqual([]);
  });

  it('maps a site that has accepted a job but not started it to QUEUED', () => {
    expect(stateFromSite({ state: 'PENDING', sitePhase: 'PENDING' })).toBe('QUEUED');
    expect(stateFromSite({ state: 'EXECUTING', sitePhase: 'Running' })).toBe('EXECUTING');
  });
});

describe('result conversion', () => {
  it('quotes CSV fields by RFC 4180 and leaves nulls empty', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(cellText(null)).toBe('');
    expect(cellText([1, null, 3])).toBe('1  3');
    expect(cellText(12345678901234567890n)).toBe('12345678901234567890');
  });

  it('writes JSON cells exactly, with null for NaN', () => {
    expect(cellJson(12345678901234567890n)).toBe('12345678901234567890');
    expect(cellJson(Number.NaN)).toBe('null');
    expect(cellJson('a"b')).toBe('"a\\"b"');
    expect(cellJson([1.5, null])).toBe('[1.5,null]');
    expect(cellJson(true)).toBe('true');
  });

  it('picks the format from ?format or Accept', () => {
    expect(resultFormatOf('csv', undefined)).toBe('csv');
    expect(resultFormatOf(undefined, 'application/json')).toBe('json');
    expect(resultFormatOf(undefined, undefined)).toBe('votable');
    expect(resultFormatOf('parquet', undefined)).toBeUndefined();
  });

  it('converts a VOTable stream to CSV and JSON', async () => {
    const vot = await writeVOTableToBuffer(
      { fields: [{ name: 'id', datatype: 'long' }, { name: 'name', datatype: 'char', arraysize: '*' }, { name: 'mag', datatype: 'double' }] },
      [[9007199254740993n, 'x, "y"', 1.5], [2n, null, null]],
    );
    async function* chunks(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < vot.length; i += 7) yield vot.subarray(i, i + 7);
    }
    const read = async (body: AsyncIterable<Uint8Array>) => {
      const parts: Buffer[] = [];
      for await (const c of body) parts.push(Buffer.from(c));
      return Buffer.concat(parts).toString('utf8');
    };
    const csv = await read(convertResult({ contentType: 'application/x-votable+xml', body: chunks() }, 'csv').body);
    expect(csv).toBe('id,name,mag\r\n9007199254740993,"x, ""y""",1.5\r\n2,,\r\n');
    const json = await read(convertResult({ contentType: 'application/x-votable+xml', body: chunks() }, 'json').body);
    expect(json).toContain('[9007199254740993,"x, \\"y\\"",1.5]');
    expect(JSON.parse(json)).toEqual({
      metadata: [{ name: 'id', datatype: 'long' }, { name: 'name', datatype: 'char', arraysize: '*' }, { name: 'mag', datatype: 'double' }],
      data: [[9007199254740992, 'x, "y"', 1.5], [2, null, null]],
    });
  });
});
