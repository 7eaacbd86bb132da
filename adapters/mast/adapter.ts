/**
 * STScI MAST VO-TAP: each collection (options.collections) is a TAP service at
 * {url}/{collection}, harvested as its own service; the legacy Pan-STARRS DR2 TAP service
 * (options.legacyTap.ps1dr2) is one more when configured. Queries are capped at 100,000 rows.
 */
import type { Adapter, AdapterContext, HarvestOutcome, HarvestValidators, HealthOutcome } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { SiteHttp } from '../http.js';
import { harvestOutcome, harvestedDocument } from '../tap/adapter.js';
import { harvestState, tapHealth, TapHarvester, type TapTarget } from '../tap/harvest.js';
import { createTapJobHooks } from '../tap/jobs.js';

/** MAST's documented limit on rows per query. */
export const MAST_MAX_REC = 100_000;

const COLLECTION = /^[A-Za-z0-9_-]{1,64}$/;

/** The TAP services of a MAST site from its options: one per collection, plus the legacy PS1 DR2 service. */
export function mastTargets(ctx: AdapterContext): TapTarget[] {
  const o = ctx.site.options ?? {};
  const url = ctx.site.url.replace(/\/+$/, '');
  const raw = o.collections ?? ['gaiadr3', 'mast_catalogs'];
  if (!Array.isArray(raw) || raw.some((c) => typeof c !== 'string' || !COLLECTION.test(c))) {
    throw new ConstellationError('INVALID_CONFIG', `site ${ctx.site.id}: options.collections must be a list of collection names`);
  }
  const cap = typeof o.maxRec === 'number' && o.maxRec > 0 ? Math.min(o.maxRec, MAST_MAX_REC) : MAST_MAX_REC;
  const targets: TapTarget[] = (raw as string[]).map((c) => ({ serviceId: c, base: `${url}/${c}`, title: `MAST VO-TAP collection ${c}`, maxRecCap: cap }));
  const legacy = (o.legacyTap as { ps1dr2?: unknown } | undefined)?.ps1dr2;
  if (typeof legacy === 'string' && /^https?:\/\//.test(legacy) && !targets.some((t) => t.serviceId === 'ps1dr2')) {
    targets.push({ serviceId: 'ps1dr2', base: legacy.replace(/\/+$/, ''), title: 'Pan-STARRS1 DR2 TAP (legacy service)' });
  }
  return targets;
}

/** The MAST adapter (kind "mast"). */
export function createMastAdapter(http: SiteHttp): Adapter {
  const harvester = new TapHarvester(http);
  const hooks = createTapJobHooks(http, {
    baseFor(ctx, service) {
      const t = mastTargets(ctx).find((x) => x.serviceId === service);
      if (t === undefined) throw new ConstellationError('INVALID_ARGUMENT', `MAST site ${ctx.site.id} has no TAP service "${service}"`);
      return t.base;
    },
  });
  return {
    kind: 'mast',
    async harvest(ctx: AdapterContext, previous?: HarvestValidators): Promise<HarvestOutcome> {
      const state = harvestState(ctx, previous);
      // Every collection must answer: a partial document would make the registry drop the
      // datasets of the one that failed, while the last good document keeps them.
      const parts = await Promise.all(mastTargets(ctx).map((t) => harvester.harvestService(t, ctx, state)));
      return harvestOutcome(harvestedDocument(ctx, parts.map((p) => p.service), parts.flatMap((p) => p.datasets)), state);
    },
    async health(ctx: AdapterContext): Promise<HealthOutcome> {
      const targets = mastTargets(ctx);
      const results = await Promise.all(targets.map((t) => tapHealth(http, t.base, ctx)));
      const down = targets.filter((_, i) => results[i].status === 'DOWN').map((t) => t.serviceId);
      if (down.length === 0) return { status: 'UP' };
      if (down.length === targets.length) return { status: 'DOWN', message: results[0].message };
      return { status: 'DEGRADED', message: `down: ${down.join(', ')}` };
    },
    ...hooks,
  };
}
