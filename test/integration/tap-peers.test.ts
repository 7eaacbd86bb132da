/**
 * The TAP facade against independent clients, with the GAVO DaCHS peer as the federation's
 * member: STILTS taplint reports no error, and pyvo's checks (../shared/peers/verify_pyvo.py)
 * that pass against DaCHS directly pass through the broker with the same answers. Skips, saying
 * why, when DaCHS, STILTS or pyvo is absent.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { CHILD_PATIENCE_MS } from '../support/wait.js';

const DACHS = process.env.CONSTELLATION_DACHS_URL ?? 'http://127.0.0.1:8080/tap';
const PEERS = '/work/shared/peers';
const DATA = '/var/tmp/peers/data';
const PYTHON = '/usr/bin/python3';

async function dachsUp(): Promise<boolean> {
  try {
    return (await fetch(`${DACHS}/availability`, { signal: AbortSignal.timeout(30_000) })).ok;
  } catch {
    return false;
  }
}

/** Run a command to its end (a nonzero exit is an answer, not a failure). */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const up = await dachsUp();
const hasPyvo = up && existsSync(PYTHON) && existsSync(join(DATA, 'gaia_source.fits')) && (await run(PYTHON, ['-c', 'import pyvo'], 60_000)).code === 0;
const hasStilts = up && (await run('sh', ['-c', 'command -v stilts && command -v java'], 10_000)).code === 0;
if (!up) console.warn(`TAP facade peer tier skipped: no DaCHS TAP service answers at ${DACHS} (run test/peers/up.sh)`);
else if (!hasPyvo) console.warn(`pyvo check skipped: ${PYTHON} with pyvo, or the peer data in ${DATA}, is absent`);
if (up && !hasStilts) console.warn('taplint check skipped: STILTS (stilts) or Java is absent');

describe.skipIf(!up)(`the TAP facade with DaCHS as its member, checked by taplint and pyvo (${backend})`, () => {
  let broker: TestBroker;
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'tap-peers-'));
    // No mapping: DaCHS's tables keep their own names (gaia.gaia_source, ps1.mean_object), as pyvo's script asks for them.
    broker = await startBroker(configFromYaml(`
federation: { name: tap-peers }
sites:
  - { id: dachs, name: GAVO DaCHS peer, adapter: tap, url: "${DACHS}" }
`), undefined, { jobs: { pollIntervalMs: 200 } });
    const harvest = await broker.harvest('dachs');
    expect(harvest.outcome, harvest.errorMessage ?? '').toBe('OK');
  }, CHILD_PATIENCE_MS);
  afterAll(async () => {
    await broker?.close();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it.skipIf(!hasStilts)('passes STILTS taplint with no error', async () => {
    const res = await run(`${PEERS}/run_taplint.sh`, [`${broker.url}/tap`, out], CHILD_PATIENCE_MS * 3);
    const totals = /^Totals: .*$/m.exec(res.stdout)?.[0] ?? res.stdout.slice(-2000);
    expect(totals, res.stdout.slice(-4000)).toMatch(/^Totals: Errors: 0;/);
    expect(res.code, res.stdout.slice(-4000)).toBe(0);
  }, CHILD_PATIENCE_MS * 3 + 10_000);

  it.skipIf(!hasPyvo)('passes every pyvo check that DaCHS passes, with the same answers', async () => {
    const direct = await run(PYTHON, [`${PEERS}/verify_pyvo.py`, DACHS, DATA, join(out, 'direct.json')], CHILD_PATIENCE_MS * 3);
    const routed = await run(PYTHON, [`${PEERS}/verify_pyvo.py`, `${broker.url}/tap`, DATA, join(out, 'broker.json')], CHILD_PATIENCE_MS * 3);
    type Report = { checks: { name: string; ok: boolean; got?: unknown; expected?: unknown; rows?: unknown; query_status?: unknown; pairs_within_1arcsec?: unknown }[] };
    const read = async (f: string) => JSON.parse(await readFile(join(out, f), 'utf8')) as Report;
    const [d, b] = [await read('direct.json'), await read('broker.json')];
    const passedDirect = d.checks.filter((c) => c.ok);
    expect(passedDirect.length, direct.stdout).toBeGreaterThanOrEqual(15);
    for (const c of passedDirect) {
      const through = b.checks.find((x) => x.name === c.name);
      expect(through?.ok, `${c.name}\n${routed.stdout}`).toBe(true);
      // The same answers: counts, rows, overflow status and pair counts as DaCHS gave them.
      expect({ got: through?.got, expected: through?.expected, rows: through?.rows, status: through?.query_status, pairs: through?.pairs_within_1arcsec }, c.name)
        .toEqual({ got: c.got, expected: c.expected, rows: c.rows, status: c.query_status, pairs: c.pairs_within_1arcsec });
    }
    expect(routed.code, routed.stdout).toBe(0);
  }, CHILD_PATIENCE_MS * 6 + 10_000);
});
