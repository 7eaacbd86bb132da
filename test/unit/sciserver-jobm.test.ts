import { describe, expect, it } from 'vitest';
import { jobmIsTerminal, jobmJobState, shellQuote, slugPoolId } from '../../adapters/sciserver/adapter.js';
import { casjobsJobState, casjobsServiceId, isCasJobsJobId } from '../../adapters/sciserver/casjobs-jobs.js';

describe('JOBM status flags', () => {
  it('maps every flag onto a JobState', () => {
    expect([1, 2, 4, 8, 16, 32, 64, 128].map((s) => [s, jobmJobState(s)])).toEqual([
      [1, { state: 'PENDING', sitePhase: 'PENDING' }],
      [2, { state: 'QUEUED', sitePhase: 'QUEUED' }],
      [4, { state: 'QUEUED', sitePhase: 'ACCEPTED' }],
      [8, { state: 'EXECUTING', sitePhase: 'STARTED' }],
      [16, { state: 'EXECUTING', sitePhase: 'FINISHED' }],
      [32, { state: 'COMPLETED', sitePhase: 'SUCCESS' }],
      [64, { state: 'ERROR', sitePhase: 'ERROR' }],
      [128, { state: 'ABORTED', sitePhase: 'CANCELED' }],
    ]);
  });

  it('takes the highest flag of a combined value and rejects nonsense', () => {
    expect(jobmJobState(16 | 32)?.state).toBe('COMPLETED');
    expect(jobmJobState(8 | 128)?.state).toBe('ABORTED');
    expect(jobmJobState(0)).toBeUndefined();
    expect(jobmJobState(-1)).toBeUndefined();
    expect(jobmJobState(1.5)).toBeUndefined();
  });

  it('calls a status terminal from 32 up', () => {
    expect([1, 2, 4, 8, 16].some(jobmIsTerminal)).toBe(false);
    expect([32, 64, 128].every(jobmIsTerminal)).toBe(true);
  });
});

describe('SciServer naming helpers', () => {
  it('slugs compute-domain names into pool ids', () => {
    expect(slugPoolId('Small Jobs Domain')).toBe('small-jobs-domain');
    expect(slugPoolId('  GPU (A100) / Large ')).toBe('gpu-a100-large');
  });

  it('quotes shell words only when needed', () => {
    expect(shellQuote('python')).toBe('python');
    expect(shellQuote('/data/x.fits')).toBe('/data/x.fits');
    expect(shellQuote('a b')).toBe(`'a b'`);
    expect(shellQuote(`it's`)).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe(`''`);
  });
});

describe('CasJobs job Status', () => {
  it('maps 0..5 onto a JobState, keeping the CasJobs word, and rejects anything else', () => {
    expect([0, 1, 2, 3, 4, 5].map(casjobsJobState)).toEqual([
      { state: 'QUEUED', sitePhase: 'Ready' },
      { state: 'EXECUTING', sitePhase: 'Started' },
      // Canceling is not final: the job may still finish.
      { state: 'EXECUTING', sitePhase: 'Canceling' },
      { state: 'ABORTED', sitePhase: 'Canceled' },
      { state: 'ERROR', sitePhase: 'Failed' },
      { state: 'COMPLETED', sitePhase: 'Finished' },
    ]);
    expect([-1, 6, 1.5, NaN].map(casjobsJobState)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('tells CasJobs ids from JOBM ids, and names services after their context', () => {
    expect(['casjobs:70001:constellation_a', 'casjobs-sync:lq3-1'].every(isCasJobsJobId)).toBe(true);
    expect(['4001', 'sync:x'].some(isCasJobsJobId)).toBe(false);
    expect(['DR17', 'My Context'].map(casjobsServiceId)).toEqual(['casjobs-dr17', 'casjobs-my_context']);
  });
});
