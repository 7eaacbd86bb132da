/**
 * A broker stand-in for the kill -9 test: submits one query job to the TAP site in TAP_URL,
 * prints {"jobId": …} on stdout, then polls until it is killed.
 * Database: JOBS_DATABASE_URL, or the embedded one under JOBS_DATA_DIR (joined, not hosted).
 */
import { openDatabase } from '../../broker/db/database.js';
import { JobService } from '../../broker/jobs/service.js';
import { HttpClient } from '../../adapters/http.js';
import { createTapAdapter } from '../../adapters/tap/adapter.js';

const tapUrl = process.env.TAP_URL!;
const db = await openDatabase({ url: process.env.JOBS_DATABASE_URL || undefined, dataDir: process.env.JOBS_DATA_DIR ?? '' });
const http = new HttpClient({ retries: 1, retryBaseMs: 10 });
const adapter = createTapAdapter(http);
const jobs = new JobService(
  db.pool,
  (siteId) => ({ adapter, context: { site: { id: siteId, name: siteId, platform: 'tap', url: tapUrl }, credential: { kind: 'anonymous' } } }),
  { pollIntervalMs: 100, leaseMs: Number(process.env.JOBS_LEASE_MS ?? 1500), requestTimeoutMs: 1000, onError: (err) => process.stderr.write(`${String(err)}\n`) },
);
const job = await jobs.submit({
  kind: 'QUERY',
  idempotencyKey: process.env.JOBS_KEY,
  request: { adql: process.env.JOBS_ADQL },
  candidates: [{ siteId: 'slow', siteQuery: { adql: process.env.JOBS_ADQL!, service: 'tap', mode: 'async' } }],
});
process.stdout.write(`${JSON.stringify({ jobId: job.id, state: job.state })}\n`);
await jobs.start();
