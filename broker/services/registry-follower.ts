/**
 * One follower of the registry version for every in-memory view of the registry (the sky
 * coverage index, the planner snapshot): changes published by other broker processes reach
 * them within one interval, at one cheap read per interval whatever the number of views.
 */
import type pg from 'pg';
import { registryVersion } from '../../registry/store/queries/sites.js';

/** An in-memory view brought up to the database's registry version by refresh(). */
export interface RegistryView {
  readonly version: number;
  refresh(pool: pg.Pool): Promise<unknown>;
}

/**
 * Every `ms`, read the registry version once and refresh the views behind it. A failure is
 * reported once when it starts (and once when following works again), not at every interval.
 * Returns a stop function.
 */
export function followRegistry(pool: pg.Pool, views: readonly RegistryView[], ms: number, report: { onError(err: unknown): void; onRecovered(): void }): () => void {
  let running = false;
  let failing = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const version = await registryVersion(pool);
      for (const view of views) if (view.version !== version) await view.refresh(pool);
      if (failing) report.onRecovered();
      failing = false;
    } catch (err) {
      if (!failing) report.onError(err);
      failing = true;
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), ms);
  timer.unref();
  return () => clearInterval(timer);
}
