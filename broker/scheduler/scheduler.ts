/** Harvest schedules from federation.yaml, each tick claimed by exactly one broker replica. */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { ConstellationError } from '../../registry/model/errors.js';
import { claimHarvestTick, releaseHarvestTick } from '../../registry/store/queries/harvest.js';
import type { Config } from '../config/config.js';
import type { Harvester } from '../services/harvester.js';
import { onSchedule } from './cron.js';

export interface Scheduler {
  /** This replica's claimant id (recorded with each claimed tick). */
  readonly claimant: string;
  stop(): void;
}

/**
 * Start one cron task per site with a schedule. When a tick fires on every replica, the
 * first to insert the (site, tick) claim runs it, after a random jitter of up to
 * `harvest.jitterS` so sites on one schedule do not all hit the network at once.
 */
export function startScheduler(config: Config, harvester: Harvester, pool: pg.Pool, onError: (err: unknown) => void = () => {}): Scheduler {
  const claimant = randomUUID();
  const tasks = config.sites
    .filter((s) => s.harvest?.schedule && s.harvest.enabled !== false)
    .map((site) =>
      onSchedule(site.harvest!.schedule!, `harvest-${site.id}-${claimant}`, async (tick) => {
        try {
          if (!(await claimHarvestTick(pool, site.id, tick, claimant))) return;
          if (config.harvest.jitterS > 0) await sleep(Math.random() * config.harvest.jitterS * 1000);
          await harvester.harvest(site.id, 'schedule').catch(async (err: unknown) => {
            if (!(err instanceof ConstellationError && err.kind === 'STOPPING')) throw err;
            // The broker stopped between the claim and the harvest: the tick is given back, not
            // left claimed without a run (the next tick runs as scheduled). Not a failure.
            await releaseHarvestTick(pool, site.id, tick, claimant);
          });
        } catch (err) {
          onError(err);
        }
      }),
    );
  return {
    claimant,
    stop: () => {
      for (const t of tasks) t.stop();
    },
  };
}
