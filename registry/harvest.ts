/** Harvest one site through its Adapter: fetch → guard → validate and store → record the run and the site's health. */
import type pg from 'pg';
import { heldReason } from './harvest-guard.js';
import type { Adapter, AdapterContext } from './model/adapter.js';
import type { CapabilityDocument } from './model/capability.js';
import { ErrorCodes, isConstellationError } from './model/errors.js';
import {
  finishHarvestRun, harvestedState, harvestValidators, recordSiteHealth, recordSiteHeld, saveHarvestedState, saveHarvestValidators, startHarvestRun,
} from './store/queries/harvest.js';
import type { HarvestLease } from './store/queries/harvest.js';
import type { HarvestRunRow } from './store/queries/rows.js';

/** Consecutive failed harvests after which a site is DOWN (fewer make it DEGRADED). */
export const DOWN_AFTER_FAILURES = 3;

export interface HarvestDeps {
  pool: pg.Pool;
  adapter: Adapter;
  context: Omit<AdapterContext, 'meter' | 'credential'>;
  /** The credential to harvest with, got inside the recorded run (getting it may fail, as a token endpoint may). */
  credential(): Promise<AdapterContext['credential']>;
  /** Validate (with the federation's mappings) and store the document; throws when invalid. */
  publish(doc: CapabilityDocument): Promise<{ documentId: number }>;
  /** Largest share of the site's datasets a harvest may remove without being held (federation.yaml `harvest.maxRemovedShare`). */
  maxRemovedShare: number;
  /** Apply the harvest even when it would be held (an operator's confirmation). */
  confirm?: boolean;
  /** Aborted when the broker stops: a harvest it cuts short is recorded as the broker's doing, not the site's failure. */
  stopping?: AbortSignal;
  /** The lease the run is held under (renewed by the caller while the harvest runs). */
  lease: HarvestLease;
}

/**
 * Run one harvest of `deps.context.site`. The run is always recorded. A failure keeps the
 * last good document in place and degrades the site's status; success sets it UP. A harvest
 * that would remove too much is HELD (nothing stored, the site DEGRADED) unless confirmed.
 * The harvest is the truth for a harvested site: when the site answers 304 but a document
 * was published since its last harvest, the harvested state is stored again (RESTORED).
 */
export async function harvestSite(deps: HarvestDeps, trigger: string): Promise<HarvestRunRow> {
  const siteId = deps.context.site.id;
  const run = await startHarvestRun(deps.pool, siteId, trigger, deps.lease);
  const meter = { bytes: 0 };
  try {
    const outcome = await deps.adapter.harvest({ ...deps.context, credential: await deps.credential(), meter }, await harvestValidators(deps.pool, siteId));
    const state = await harvestedState(deps.pool, siteId);
    // On 304 the adapter rebuilds the document from the site's unchanged answers, so it is the
    // harvested state itself: stored again only when something else replaced it.
    const restoring = outcome.notModified === true && !state.current;
    const bytes = outcome.bytes || meter.bytes;
    if (!outcome.notModified || restoring) {
      const tables = outcome.document.datasets.map((d) => d.table);
      const held = deps.confirm ? undefined : heldReason(siteId, state.tables, tables, deps.maxRemovedShare);
      if (held !== undefined) {
        // Validators are not saved, so the next harvest asks in full and is judged again.
        await recordSiteHeld(deps.pool, siteId);
        return await finishHarvestRun(deps.pool, run.id, { outcome: 'HELD', bytes, errorCode: ErrorCodes.HARVEST_HELD.code, errorMessage: held });
      }
      const stored = await deps.publish(outcome.document);
      await saveHarvestedState(deps.pool, siteId, stored.documentId, tables);
    }
    if (outcome.validators) await saveHarvestValidators(deps.pool, siteId, outcome.validators);
    await recordSiteHealth(deps.pool, siteId, true, DOWN_AFTER_FAILURES);
    if (!restoring) return await finishHarvestRun(deps.pool, run.id, { outcome: outcome.notModified ? 'NOT_MODIFIED' : 'OK', bytes });
    const replaced = state.storedOrigin ? `the stored document (origin ${state.storedOrigin}) was not the last harvested one` : 'no document was stored';
    return await finishHarvestRun(deps.pool, run.id, {
      outcome: 'RESTORED',
      bytes,
      errorMessage: `the site answered 304 (not modified) but ${replaced}; the harvested state was stored again`,
    });
  } catch (err) {
    if (deps.stopping?.aborted) {
      // The broker stopped mid-harvest: nothing says the site failed, so its health stands.
      return finishHarvestRun(deps.pool, run.id, {
        outcome: 'FAILED', bytes: meter.bytes, errorCode: ErrorCodes.STOPPING.code, errorMessage: 'the broker stopped during this harvest; the next one runs as scheduled',
      });
    }
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
