/**
 * The follower of the registry version: changes published by other broker processes reach the
 * in-memory view of the registry (PlannerView, which feeds the sky-coverage index from the same
 * read) within one interval, at one cheap read per interval and one load per change.
 */
import type pg from 'pg';
import { registryVersion } from '../../registry/store/queries/sites.js';

/** The in-memory view brought up to the database's registry version by refresh(). */
export interface RegistryView {
  readonly version: number;
  refresh(pool: pg.Pool): Promise<unknown>;
}

/**
 * Every `ms`, read the registry version once and refresh the view when it is behind. A failure
 * is reported once when it starts (and once when following works again), not at every interval.
 * Returns a stop function.
 */
export function followRegistry(pool: pg.Pool, view: RegistryView, ms: number, report: { onError(err: unknown): void; onRecovered(): void }): () => void {
  let running = false;
  let failing = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const version = await registryVersion(pool);
      if (view.version !== version) await view.refresh(pool);
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
