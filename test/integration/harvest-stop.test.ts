/**
 * A broker stopping while a harvest is in flight: the harvest is cut short and recorded FAILED
 * with CONSTELLATION_E_STOPPING (not left RUNNING, as a fleet run found after a SIGTERM), the
 * site's health is left as it was, close() does not wait out the harvest's own timeout, and a
 * harvest asked for afterwards is refused with the same code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { buildApp } from '../../broker/app.js';
import { configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService } from '../sites/tap-service.js';
import { PATIENCE_MS, WAITING_TEST_MS, waitUntil, within } from '../support/wait.js';

const federation = (url: string) => `
federation: { name: harvest-stop }
harvest: { concurrency: 2, jitterS: 0, timeoutS: 600 }
sites:
  - id: simtap
    name: Simulated TAP site
    adapter: tap
    url: "${url}/tap"
`;

describe(`a broker stopping during a harvest (${backend})`, () => {
  let sim: SimSite;
  let db: TestDatabase;
  // Timeouts far beyond the test's patience: only the broker stopping can end the hanging harvest.
  const http = new HttpClient({ connectTimeoutMs: 600_000, headersTimeoutMs: 600_000, bodyTimeoutMs: 600_000, retries: 0 });

  beforeAll(async () => {
    sim = new SimSite();
    mountTapService(sim, { path: '/tap', tables: [{ name: 'gaiadr3.gaia_source', rows: 10, columns: [{ name: 'source_id', datatype: 'long' }] }] });
    await sim.start();
    db = await freshDatabase();
  });
  afterAll(async () => {
    await http.close();
    await sim?.close();
    await db?.close();
  });

  it('records the harvest in flight as stopped, keeps the site healthy, and refuses new harvests', { timeout: WAITING_TEST_MS }, async () => {
    const app = await buildApp(configFromYaml(federation(sim.url)), { database: db, http, logger: false });
    const first = await app.services.harvester.harvest('simtap');
    expect(first.outcome).toBe('OK');
    const before = (await db.pool.query<{ status: string; failures: number }>('SELECT status, consecutive_failures AS failures FROM sites WHERE id = $1', ['simtap'])).rows[0];
    expect(before).toEqual({ status: 'UP', failures: 0 });

    await sim.setFault({ kind: 'hang' });
    const seen = sim.seen.length;
    const hanging = app.services.harvester.harvest('simtap');
    // The harvest is in flight once the site has its request (and its run is recorded RUNNING).
    await waitUntil(async () => sim.seen.length > seen
      && (await db.pool.query('SELECT 1 FROM harvest_runs WHERE site_id = $1 AND outcome = $2', ['simtap', 'RUNNING'])).rowCount === 1, Boolean);

    await within(app.close(), 'app.close() with a harvest in flight', PATIENCE_MS);
    const run = await within(hanging, 'the stopped harvest', PATIENCE_MS);
    expect(run).toMatchObject({ outcome: 'FAILED', errorCode: 'CONSTELLATION_E_STOPPING' });
    const runs = (await db.pool.query<{ outcome: string; code: string | null }>(
      'SELECT outcome, error_code AS code FROM harvest_runs WHERE site_id = $1 ORDER BY id', ['simtap'])).rows;
    expect(runs).toEqual([{ outcome: 'OK', code: null }, { outcome: 'FAILED', code: 'CONSTELLATION_E_STOPPING' }]);
    const after = (await db.pool.query<{ status: string; failures: number }>('SELECT status, consecutive_failures AS failures FROM sites WHERE id = $1', ['simtap'])).rows[0];
    expect(after).toEqual(before);

    await expect(app.services.harvester.harvest('simtap')).rejects.toMatchObject({ code: 'CONSTELLATION_E_STOPPING' });
    await sim.setFault({ kind: 'none' });
  });
});
