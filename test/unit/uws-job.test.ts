import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseUwsJob, uwsJobStatus } from '../../adapters/ivoa/uws/job.js';
import { UWS_PHASES, isTerminalUwsPhase, mapUwsPhase, parseUwsPhase } from '../../adapters/ivoa/uws/phases.js';
import { ConstellationError } from '../../registry/model/errors.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/uws/${name}`, import.meta.url));

const UWS = 'http://www.ivoa.net/xml/UWS/v1.0';

function jobDoc(inner: string, rootAttrs = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<uws:job xmlns:uws="${UWS}" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ${rootAttrs}>${inner}</uws:job>`;
}

describe('parseUwsJob: CASDA (UWS 1.0)', () => {
  it('reads a COMPLETED job: CDATA jobId, +0800 times, nil fields, result hrefs with &amp; decoded', () => {
    const job = parseUwsJob(fixture('casda-soda-job-completed.xml'));
    expect(job.version).toBe('1.0');
    expect(job.jobId).toBe('a7b53da7-1201-46ee-8718-0bf5b64dd5b8');
    expect(job.phase).toBe('COMPLETED');
    expect(job.runId).toBeUndefined();
    expect(job.ownerId).toBeUndefined();
    expect(job.quote).toBeUndefined();
    expect(job.endTime).toBeUndefined();
    expect(job.destruction).toBeUndefined();
    expect(job.errorSummary).toBeUndefined();
    expect(job.startTime).toEqual({ raw: '2020-04-17T08:10:22.793+0800', date: new Date('2020-04-17T00:10:22.793Z') });
    expect(job.executionDuration).toBe(0);
    expect(job.parameters).toEqual([{ id: 'id', value: 'ABCDEF', byReference: false, isPost: false }]);
    expect(job.results.map((r) => r.id)).toEqual(['cube-244.checksum', 'cube-244', 'cube-245']);
    expect(job.results[1].href).toBe('http://casda.csiro.au/download/web/111-000-111-000/askap_img.fits');
    const signed = job.results[2].href!;
    expect(signed).not.toContain('&amp;');
    expect(signed).toContain('selavy.components.xml%22&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=');
    expect(new URL(signed).searchParams.get('X-Amz-Signature')).toBe('deadbeef1234567890');
  });

  it('reads EXECUTING and SUSPENDED jobs with empty results', () => {
    const running = parseUwsJob(fixture('casda-soda-job-executing.xml'));
    expect(running.phase).toBe('EXECUTING');
    expect(running.results).toEqual([]);
    const suspended = parseUwsJob(fixture('casda-soda-job-suspended.xml'));
    expect(suspended.phase).toBe('SUSPENDED');
    expect(suspended.startTime?.date?.toISOString()).toBe('2024-04-17T00:10:22.793Z');
    expect(uwsJobStatus(suspended)).toEqual({ state: 'EXECUTING', sitePhase: 'SUSPENDED' });
  });

  it('gives the broker status of a completed job with its result URL', () => {
    const status = uwsJobStatus(parseUwsJob(fixture('casda-soda-job-completed.xml')));
    expect(status).toEqual({
      state: 'COMPLETED',
      sitePhase: 'COMPLETED',
      resultUrl: 'http://casda.csiro.au/download/web/111-000-111-000/askap_img.fits.checksum',
    });
  });
});

describe('parseUwsJob: DaCHS (UWS 1.1)', () => {
  it('reads a COMPLETED TAP job with version 1.1, quote, times and TAP parameters', () => {
    const job = parseUwsJob(fixture('dachs-tap-job-completed.xml'));
    expect(job.version).toBe('1.1');
    expect(job.jobId).toBe('1337');
    expect(job.quote?.date?.toISOString()).toBe('2018-01-01T02:00:00.000Z');
    expect(job.creationTime?.date?.toISOString()).toBe('2018-01-01T00:00:00.000Z');
    expect(job.destruction?.raw).toBe('2018-02-01T00:00:00Z');
    expect(job.executionDuration).toBe(7200);
    expect(Object.fromEntries(job.parameters.map((p) => [p.id, p.value]))).toEqual({
      lang: 'ADQL',
      maxrec: '',
      query: "SELECT 'test'",
      request: 'doQuery',
      responseformat: '',
      upload: '',
    });
    expect(uwsJobStatus(job)).toEqual({
      state: 'COMPLETED',
      sitePhase: 'COMPLETED',
      resultUrl: 'http://example.com/tap/async/1337/results/result',
    });
  });

  it('reads an ERROR job with an empty results element and a fatal errorSummary', () => {
    const job = parseUwsJob(fixture('dachs-tap-job-error.xml'));
    expect(job.phase).toBe('ERROR');
    expect(job.results).toEqual([]);
    expect(job.errorSummary).toEqual({ type: 'fatal', hasDetail: false, message: 'We have problem' });
    expect(uwsJobStatus(job)).toEqual({ state: 'ERROR', sitePhase: 'ERROR', error: 'We have problem' });
  });
});

describe('parseUwsJob: UWS 1.1 spec instance', () => {
  const job = parseUwsJob(fixture('ivoa-uws-1.1-spec-job-instance.xml'));

  it('reads runId, a byReference parameter and a result with size and mime-type', () => {
    expect(job.runId).toBe('myjobref');
    expect(job.parameters).toEqual([
      { id: 'scaleFactor', value: '1.8', byReference: false, isPost: false },
      { id: 'image', value: 'http://myserver.org/uws/jobs/jobid123/param/image', byReference: true, isPost: false },
    ]);
    expect(job.results).toEqual([
      { id: 'correctedImage', href: 'http://myserver.org/uws/jobs/jobid123/result/image', size: 3000960, mimeType: 'image/fits' },
    ]);
  });

  it('reads a transient errorSummary with detail and keeps jobInfo as raw XML', () => {
    expect(job.errorSummary).toEqual({ type: 'transient', hasDetail: true, message: 'we have problem' });
    expect(job.jobInfo).toBe('<any xmlns="urn:mynamespace"><xml><thatyouwant/></xml></any>');
  });
});

describe('parseUwsJob: edge cases', () => {
  it('reads a PENDING job with an owner, isPost parameter and a job in the legacy rc3 namespace', () => {
    const pending = parseUwsJob(
      jobDoc(`<uws:jobId>p1</uws:jobId><uws:ownerId>alice</uws:ownerId><uws:phase>PENDING</uws:phase>
        <uws:creationTime>2026-01-02T03:04:05Z</uws:creationTime>
        <uws:parameters><uws:parameter id="QUERY" isPost="true">SELECT * FROM t WHERE a &lt; 3</uws:parameter></uws:parameters>`),
    );
    expect(pending).toMatchObject({ jobId: 'p1', ownerId: 'alice', phase: 'PENDING' });
    expect(pending.parameters[0]).toEqual({ id: 'QUERY', value: 'SELECT * FROM t WHERE a < 3', byReference: false, isPost: true });
    expect(uwsJobStatus(pending)).toEqual({ state: 'PENDING', sitePhase: 'PENDING' });

    const rc3 = parseUwsJob(
      '<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0rc3"><uws:jobId> 9 </uws:jobId><uws:phase>queued</uws:phase></uws:job>',
    );
    expect(rc3).toMatchObject({ version: '1.0rc3', jobId: '9', phase: 'QUEUED', rawPhase: 'queued' });
  });

  it('maps a phase word outside UWS to UNKNOWN and keeps the word', () => {
    const job = parseUwsJob(jobDoc('<uws:jobId>x</uws:jobId><uws:phase>RUNNING</uws:phase>'));
    expect(job.phase).toBe('UNKNOWN');
    expect(uwsJobStatus(job)).toEqual({ state: 'QUEUED', sitePhase: 'RUNNING' });
  });

  it('reports ARCHIVED jobs as errors whose results are gone', () => {
    const job = parseUwsJob(jobDoc('<uws:jobId>a</uws:jobId><uws:phase>ARCHIVED</uws:phase>'));
    const status = uwsJobStatus(job);
    expect(status.state).toBe('ERROR');
    expect(status.error).toMatch(/deleted the results/);
    expect(status.resultUrl).toBeUndefined();
  });

  it('rejects a job without jobId or phase, a job list, another root, and malformed XML', () => {
    expect(() => parseUwsJob(jobDoc('<uws:phase>QUEUED</uws:phase>'))).toThrow(/UWS job document: job without <jobId>/);
    expect(() => parseUwsJob(jobDoc('<uws:jobId>j</uws:jobId>'))).toThrow(/job j has no <phase>/);
    expect(() => parseUwsJob(fixture('gaia-archive-joblist-jobrefs.xml'))).toThrow(/found <uws:jobs> \(namespace http:\/\/www\.ivoa\.net\/xml\/UWS\/v1\.0\); this is a job list, read it with parseUwsJobList$/);
    expect(() => parseUwsJob('<job><jobId>1</jobId><phase>QUEUED</phase></job>')).toThrow(/expected <uws:job>.*found <job> \(no namespace\)/);
    expect(() => parseUwsJob('<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v2.0"/>')).toThrow(/namespace http:\/\/www\.ivoa\.net\/xml\/UWS\/v2\.0/);
    let caught: unknown;
    try {
      parseUwsJob(jobDoc('<uws:jobId>1</uws:jobId><uws:phase>QUEUED</uws:phasee>'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConstellationError);
    expect((caught as ConstellationError).kind).toBe('UPSTREAM_MALFORMED');
    expect((caught as ConstellationError).message).toMatch(/not well-formed XML/);
  });

  it('reads jobId, phase and parameter values whatever whitespace and CDATA wrap them', () => {
    const ws = fc.string({ unit: fc.constantFrom(' ', '\n', '\t', '\r\n'), maxLength: 6 });
    const id = fc.string({ unit: fc.constantFrom(...'abcdef0123456789-_.O'), minLength: 1, maxLength: 24 });
    const value = fc.string({ unit: fc.constantFrom(...'SELECT *FROMtwhere<>&\'"=1 '), minLength: 1, maxLength: 30 });
    const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
    fc.assert(
      fc.property(id, value, fc.constantFrom(...UWS_PHASES), ws, ws, fc.boolean(), (jobId, v, phase, a, b, cdata) => {
        const wrap = (s: string): string => (cdata ? `${a}<![CDATA[${s}]]>${b}` : `${a}${esc(s)}${b}`);
        const job = parseUwsJob(
          jobDoc(`<uws:jobId>${wrap(jobId)}</uws:jobId><uws:phase>${a}${phase}${b}</uws:phase>
            <uws:parameters><uws:parameter id="q">${wrap(v)}</uws:parameter></uws:parameters>`),
        );
        expect(job.jobId).toBe(jobId);
        expect(job.phase).toBe(phase);
        expect(job.parameters[0].value).toBe(v.trim());
      }),
      { numRuns: 200 },
    );
  });
});

describe('UWS phases', () => {
  it('maps every UWS phase onto a broker job state', () => {
    expect(Object.fromEntries(UWS_PHASES.map((p) => [p, mapUwsPhase(p)]))).toEqual({
      PENDING: 'PENDING',
      QUEUED: 'QUEUED',
      EXECUTING: 'EXECUTING',
      COMPLETED: 'COMPLETED',
      ERROR: 'ERROR',
      ABORTED: 'ABORTED',
      UNKNOWN: 'QUEUED',
      HELD: 'QUEUED',
      SUSPENDED: 'EXECUTING',
      ARCHIVED: 'ERROR',
    });
  });

  it('reads raw phase words leniently', () => {
    expect(parseUwsPhase(' executing\n')).toBe('EXECUTING');
    expect(parseUwsPhase('Held')).toBe('HELD');
    expect(parseUwsPhase('')).toBe('UNKNOWN');
    expect(mapUwsPhase('completed')).toBe('COMPLETED');
    expect(mapUwsPhase('whatever')).toBe('QUEUED');
  });

  it('knows which phases are final', () => {
    expect(UWS_PHASES.filter(isTerminalUwsPhase)).toEqual(['COMPLETED', 'ERROR', 'ABORTED', 'ARCHIVED']);
  });
});
