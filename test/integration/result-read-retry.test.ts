/**
 * Reading a COMPLETED async job's result from its site: a garbled job document (or any failure
 * the site may get over) before the result's first byte is asked again, so one fault at the site
 * does not fail the read; a site that keeps failing still ends the read with its code, bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { injectFaults, type FaultInjector, type ForcedFault } from '../sites/fault-injector.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type TapService } from '../sites/tap-service.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { datasetTable, jobSpec } from '../support/fleet-sites.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

describe(`reading a finished async job's result through a faulty site (${backend})`, () => {
  let broker: TestBroker;
  let site: SimSite;
  let tap: TapService;
  let faults: FaultInjector;
  // Read by the injector at each request, so faults can be forced on requests still to come.
  const forced: ForcedFault[] = [];

  beforeAll(async () => {
    site = new SimSite();
    tap = mountTapService(site, { path: '/tap', tables: [datasetTable(0), datasetTable(1)], asyncDelayMs: 30 });
    // On from the start, with no drawn faults, so the injector counts every job and request.
    faults = injectFaults(site, { name: 'results', seed: 1, rates: {}, forced });
    await site.start();
    broker = await startBroker(configFromYaml(`
federation: { name: result-read-retry }
registration: { open: true }
jobs: { pollIntervalS: 0.2, leaseS: 6, requestTimeoutS: 4, submitTimeoutS: 15 }
sites:
  - { id: results, name: results, adapter: tap, url: "${site.url}/tap" }
`));
    expect((await broker.harvest('results')).outcome).toBe('OK');
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await tap?.close();
    await site?.close();
  });

  /** Run the async job of jobSpec n to COMPLETED; its id, site job id and expected rows. */
  async function completed(n: number, key: string): Promise<{ id: string; siteJob: string; rows: number }> {
    const spec = jobSpec('result-read', n, 2);
    expect(spec.mode).toBe('async');
    const submitted = await broker.graphql<{ submitQuery: { id: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id } }', { i: { adql: spec.adql, idempotencyKey: key } });
    expect(submitted.errors, JSON.stringify(submitted.errors)).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    const job = await waitUntil(
      async () => (await broker.graphql<{ job: { state: string; siteJobId: string | null } }>('query($id: ID!) { job(id: $id) { state siteJobId } }', { id })).data!.job,
      (j) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state),
      { describe: (j) => `job ${id} still ${j.state}` },
    );
    expect(job.state).toBe('COMPLETED');
    return { id, siteJob: job.siteJobId!.split('/').pop()!, rows: spec.expectedRows };
  }

  /** Force `fault` on the next `count` requests about the site's `nth` async job (counted from what it has seen of it). */
  function failNext(nth: number, siteJob: string, count: number, fault: ForcedFault['fault']): void {
    const seen = faults.jobRequests.filter((r) => r.siteJobId === siteJob).length;
    for (let k = 1; k <= count; k++) forced.push({ kind: 'job-request', nth, request: seen + k, fault });
  }

  it('reads the result whole when the job document comes back garbled twice first', async () => {
    const job = await completed(2, 'twice-garbled');
    failNext(1, job.siteJob, 2, 'malformed');
    const res = await fetch(`${broker.url}/results/${job.id}`);
    expect(res.status).toBe(200);
    const doc = await readVOTableToArray(Buffer.from(await res.arrayBuffer()));
    expect(doc.tables[0].rows.length).toBe(job.rows);
    expect(faults.injected.job.malformed).toBe(2);
  }, WAITING_TEST_MS);

  it('ends the read with UPSTREAM_MALFORMED, after three asks, when the site keeps garbling it', async () => {
    const job = await completed(3, 'always-garbled');
    const before = faults.injected.job.malformed;
    failNext(2, job.siteJob, 5, 'malformed');
    const res = await fetch(`${broker.url}/results/${job.id}`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { code: string }).code).toBe('CONSTELLATION_E_UPSTREAM_MALFORMED');
    expect(faults.injected.job.malformed - before).toBe(3);
  }, WAITING_TEST_MS);
});
