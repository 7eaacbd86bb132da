/** Harvest one site through its Adapter: fetch → validate and store → record the run and the site's health. */
import type pg from 'pg';
import type { Adapter, AdapterContext } from './model/adapter.js';
import type { CapabilityDocument } from './model/capability.js';
import { isConstellationError } from './model/errors.js';
import { finishHarvestRun, harvestValidators, recordSiteHealth, saveHarvestValidators, startHarvestRun } from './store/queries/harvest.js';
import type { HarvestRunRow } from './store/queries/rows.js';

/** Consecutive failed harvests after which a site is DOWN (fewer make it DEGRADED). */
export const DOWN_AFTER_FAILURES = 3;

export interface HarvestDeps {
  pool: pg.Pool;
  adapter: Adapter;
  context: Omit<AdapterContext, 'meter'>;
  /** Validate (with the federation's mappings) and store the document; throws when invalid. */
  publish(doc: CapabilityDocument): Promise<unknown>;
}

/**
 * Run one harvest of `deps.context.site`. The run is always recorded. A failure keeps the
 * last good document in place and degrades the site's status; success sets it UP.
 */
export async function harvestSite(deps: HarvestDeps, trigger: string): Promise<HarvestRunRow> {
  const siteId = deps.context.site.id;
  const run = await startHarvestRun(deps.pool, siteId, trigger);
  const meter = { bytes: 0 };
  try {
    const outcome = await deps.adapter.harvest({ ...deps.context, meter }, await harvestValidators(deps.pool, siteId));
    if (!outcome.notModified) await deps.publish(outcome.document);
    if (outcome.validators) await saveHarvestValidators(deps.pool, siteId, outcome.validators);
    await recordSiteHealth(deps.pool, siteId, true, DOWN_AFTER_FAILURES);
    return await finishHarvestRun(deps.pool, run.id, { outcome: outcome.notModified ? 'NOT_MODIFIED' : 'OK', bytes: outcome.bytes || meter.bytes });
  } catch (err) {
    const e = isConstellationError(err) ? err : undefined;
    // A document the site serves but we cannot accept is the site's fault, not the network's.
    const outcome = e?.kind === 'INVALID_DOCUMENT' ? 'INVALID' : 'FAILED';
    const detail = e?.violations.length ? ` (${e.violations.slice(0, 3).map((v) => `${v.path}: ${v.message}`).join('; ')})` : '';
    await recordSiteHealth(deps.pool, siteId, false, DOWN_AFTER_FAILURES);
    return finishHarvestRun(deps.pool, run.id, {
      outcome,
      bytes: meter.bytes,
      errorCode: e?.code ?? 'CONSTELLATION_E_INTERNAL',
      errorMessage: ((e?.message ?? (err as Error)?.message ?? String(err)) + detail).slice(0, 2000),
    });
  }
}
