import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseUwsDocument, parseUwsJobList } from '../../adapters/ivoa/uws/job-list.js';
import { mapUwsPhase } from '../../adapters/ivoa/uws/phases.js';
import { ConstellationError } from '../../registry/model/errors.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/uws/${name}`, import.meta.url));

describe('parseUwsJobList', () => {
  it('reads the Gaia archive list of jobrefs', () => {
    const list = parseUwsJobList(fixture('gaia-archive-joblist-jobrefs.xml'));
    expect(list.version).toBe('1.0');
    expect(list.jobs).toEqual([
      { id: '1479386030738O', href: 'http://gea.esac.esa.int/tap-server/tap/async/1479386030738O', phase: 'COMPLETED', rawPhase: 'COMPLETED' },
      { id: '14793860307381', href: 'http://gea.esac.esa.int/tap-server/tap/async/14793860307381', phase: 'ERROR', rawPhase: 'ERROR' },
    ]);
  });

  it('reads ESA TAP+ lists that embed whole jobs, keeping their extra elements', () => {
    const list = parseUwsJobList(fixture('gaia-archive-joblist-fulljobs.xml'));
    expect(list.jobs.map((j) => [j.id, j.phase, j.ownerId])).toEqual([
      ['1479386030738O', 'COMPLETED', 'anonymous'],
      ['14793860307381', 'ERROR', 'anonymous'],
    ]);
    const first = list.jobs[0];
    expect(first.href).toBeUndefined();
    expect(first.creationTime?.date?.toISOString()).toBe('2016-11-17T12:33:50.738Z');
    expect(first.job?.quote).toEqual({ raw: '-1', date: null });
    expect(first.job?.executionDuration).toBe(1800);
    expect(first.job?.extra).toEqual({ locationId: 'anonymous/2016/11/17/1479386030738O', name: '' });
  });

  it('reads the legacy v1.0rc3 namespace list behind a long comment', () => {
    const list = parseUwsJobList(fixture('constellation-joblist-legacy-rc3.xml'));
    expect(list.version).toBe('1.0rc3');
    expect(list.jobs.map((j) => [j.id, j.phase])).toEqual([
      ['17', 'EXECUTING'],
      ['170', 'QUEUED'],
      ['1700', 'COMPLETED'],
    ]);
    expect(list.jobs.map((j) => mapUwsPhase(j.phase))).toEqual(['EXECUTING', 'QUEUED', 'COMPLETED']);
    expect(list.jobs[2].href).toBe('http://uws.example.org/async/1700');
  });

  it('reads UWS 1.1 jobref children (runId, ownerId, creationTime)', () => {
    const list = parseUwsJobList(`<uws:jobs xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1">
      <uws:jobref id="a1" xlink:href="https://tap.example.org/async/a1">
        <uws:phase>HELD</uws:phase><uws:runId>nightly</uws:runId><uws:ownerId>bob</uws:ownerId>
        <uws:creationTime>2026-03-01T10:00:00.5Z</uws:creationTime>
      </uws:jobref>
    </uws:jobs>`);
    expect(list.version).toBe('1.1');
    expect(list.jobs[0]).toMatchObject({ id: 'a1', phase: 'HELD', runId: 'nightly', ownerId: 'bob' });
    expect(list.jobs[0].creationTime?.date?.toISOString()).toBe('2026-03-01T10:00:00.500Z');
  });

  it('reads an empty list', () => {
    expect(parseUwsJobList('<uws:jobs xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"/>')).toEqual({ version: '1.0', jobs: [] });
  });

  it('rejects a single job and unknown roots, naming what it found', () => {
    expect(() => parseUwsJobList(fixture('dachs-tap-job-error.xml'))).toThrow(/UWS job list: expected <uws:jobs>.*found <uws:job> \(namespace http:\/\/www\.ivoa\.net\/xml\/UWS\/v1\.0\)/);
    expect(() => parseUwsJobList('<VOTABLE/>')).toThrow(ConstellationError);
  });
});

describe('parseUwsDocument', () => {
  it('tells a job from a list', () => {
    const job = parseUwsDocument(fixture('dachs-tap-job-completed.xml'));
    expect(job.kind).toBe('job');
    if (job.kind === 'job') expect(job.job.jobId).toBe('1337');
    const list = parseUwsDocument(fixture('gaia-archive-joblist-jobrefs.xml'));
    expect(list.kind).toBe('jobs');
    if (list.kind === 'jobs') expect(list.list.jobs).toHaveLength(2);
  });

  it('rejects anything else with a clear error', () => {
    try {
      parseUwsDocument('<?xml version="1.0"?><error>Not found</error>');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConstellationError);
      expect((err as ConstellationError).kind).toBe('UPSTREAM_MALFORMED');
      expect((err as ConstellationError).message).toBe(
        'UWS document: expected <uws:job> or <uws:jobs> in namespace http://www.ivoa.net/xml/UWS/v1.0 or http://www.ivoa.net/xml/UWS/v1.0rc3, found <error> (no namespace)',
      );
      expect((err as ConstellationError).violations[0]).toMatchObject({ rule: 'root-element' });
    }
  });
});
