import { describe, expect, it } from 'vitest';
import { quantityToGb, skahaJobState } from '../../adapters/canfar/adapter.js';

describe('skaha session status', () => {
  it('maps the OpenAPI and the Session.java spellings onto JobStates', () => {
    expect(['Pending', 'Running', 'Terminating', 'Succeeded', 'Completed', 'Error', 'Failed'].map(skahaJobState)).toEqual([
      'QUEUED', 'EXECUTING', 'EXECUTING', 'COMPLETED', 'COMPLETED', 'ERROR', 'ERROR',
    ]);
  });

  it('ignores case and keeps polling on a phase it does not know', () => {
    expect(skahaJobState(' running ')).toBe('EXECUTING');
    expect(skahaJobState('Unknown')).toBe('QUEUED');
  });
});

describe('Kubernetes quantities', () => {
  it('reads decimal and binary suffixes as gigabytes', () => {
    expect(quantityToGb('4096G')).toBe(4096);
    expect(quantityToGb('2T')).toBe(2000);
    expect(quantityToGb('1Gi')).toBeCloseTo(1.073741824);
    expect(quantityToGb('512Mi')).toBeCloseTo(0.536870912);
    expect(quantityToGb('1.5Ti')).toBeCloseTo(1649.267);
    expect(quantityToGb(16)).toBe(16);
  });

  it('gives undefined for what is not a quantity', () => {
    expect(quantityToGb(undefined)).toBeUndefined();
    expect(quantityToGb('lots')).toBeUndefined();
    expect(quantityToGb('<none>')).toBeUndefined();
  });
});
