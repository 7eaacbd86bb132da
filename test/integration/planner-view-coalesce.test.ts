/**
 * PlannerView.refresh under concurrent callers: a caller is answered by a load that started
 * after its call (read-your-writes), callers arriving while a load runs share the next one, and
 * a failed load neither stalls nor poisons the ones after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../../broker/factory.js';
import type { PlannerSnapshot, SnapshotFollower } from '../../broker/planner/index.js';
import { PlannerView } from '../../broker/planner/view.js';
import { Publisher } from '../../broker/services/publisher.js';
import type { Queryable } from '../../registry/store/db.js';
import { migrate } from '../../registry/store/migrate.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { documentFor } from '../support/documents.js';

const doc = (site: string, rows: number) => documentFor(site, [{ id: `${site}.t0`, table: `${site}.t0`, rows, coverage: '0/0-3' }]);

/** A follower that counts loads and can hold one inside its read until released, or fail it. */
class Gate implements SnapshotFollower {
  loads = 0;
  private hold: { entered: () => void; release: Promise<void>; fail: boolean } | undefined;

  /** The next read waits for `release` (failing after it when `fail`); resolves once that read has begun. */
  holdNext(release: Promise<void>, fail = false): Promise<void> {
    return new Promise((entered) => {
      this.hold = { entered, release, fail };
    });
  }

  async read(_tx: Queryable, _changed: readonly string[] | undefined): Promise<void> {
    const hold = this.hold;
    this.hold = undefined;
    if (hold === undefined) return;
    hold.entered();
    await hold.release;
    if (hold.fail) throw new Error('read failed on purpose');
  }

  follow(_snapshot: PlannerSnapshot, _changed: ReadonlySet<string> | undefined): void {
    this.loads++;
  }
}

/** A promise and the function that resolves it. */
function latch(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe(`PlannerView refreshes coalesce and keep read-your-writes (${backend})`, () => {
  let db: TestDatabase;
  let publisher: Publisher;

  beforeAll(async () => {
    db = await freshDatabase();
    await migrate(db.pool);
    publisher = new Publisher(db.pool, configFromYaml(OPEN_FEDERATION));
  });
  afterAll(() => db?.close());

  it('callers arriving while a load runs share one next load', async () => {
    const gate = new Gate();
    const view = new PlannerView(undefined, gate);
    await view.refresh(db.pool);
    expect(gate.loads).toBe(1);

    const first = await publisher.publish('alpha', doc('alpha', 1), 'publish');
    const release = latch();
    const entered = gate.holdNext(release.promise);
    const running = view.refresh(db.pool, first.registryVersion);
    await entered;
    // The load under way read before these callers came: they must not be answered by it, and
    // the five of them need one load, not five.
    const statements = db.statements.length;
    const waiting = Array.from({ length: 5 }, () => view.refresh(db.pool));
    release.open();
    const held = await running;
    expect(held.site('alpha')?.count).toBe(1);
    const shared = await Promise.all(waiting);
    const after = db.statements.slice(statements);
    // One load after the held one: it asked for the version once, found it unchanged, kept the
    // snapshot. (The test database records a pool query's text twice: once as given to the
    // pool, once as the pool runs it on a client; five loads would have recorded ten.)
    expect(after.filter((q) => /registry_state/.test(q))).toHaveLength(2);
    expect(after.filter((q) => /REPEATABLE READ/.test(q))).toHaveLength(0);
    expect(gate.loads).toBe(2);
    for (const s of shared) expect(s).toBe(held);
  });

  it('a failed load fails only its callers; the next caller gets a good load', async () => {
    const gate = new Gate();
    const view = new PlannerView(undefined, gate);
    await view.refresh(db.pool);
    const published = await publisher.publish('beta', doc('beta', 2), 'publish');
    const release = latch();
    const entered = gate.holdNext(release.promise, true);
    const failing = view.refresh(db.pool, published.registryVersion);
    await entered;
    const after = view.refresh(db.pool);
    release.open();
    await expect(failing).rejects.toThrow('read failed on purpose');
    const snapshot = await after;
    expect(snapshot.version).toBeGreaterThanOrEqual(published.registryVersion);
    expect(snapshot.site('beta')).toBeDefined();
  });

  it('concurrent publishes through the wired publisher each answer after the view shows them', async () => {
    const services = createServices(configFromYaml(OPEN_FEDERATION), db.pool, db.kind);
    await services.planner.refresh(db.pool);
    const sites = Array.from({ length: 8 }, (_, i) => `concurrent${i}`);
    const builds = new Set<unknown>();
    await Promise.all(sites.map(async (site, i) => {
      const result = await services.publisher.publish(site, doc(site, 100 + i), 'publish');
      // Read-your-writes: when the publish answers, the view is at its version or later and holds its rows.
      expect(services.planner.version).toBeGreaterThanOrEqual(result.registryVersion);
      expect(services.planner.snapshot.site(site)?.count).toBe(1);
      builds.add(services.planner.lastBuild);
    }));
    expect(builds.size).toBeLessThanOrEqual(sites.length);
    // A stale hint (a version already reflected) costs a load at most, never a wrong answer.
    const at = services.planner.version;
    expect((await services.planner.refresh(db.pool, at - 1)).version).toBe(at);
  });
});
