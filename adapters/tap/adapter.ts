/** The generic adapter for a standards-compliant TAP site, known only by its TAP base URL. */
import type { Adapter, AdapterContext, HarvestOutcome, HarvestValidators, HealthOutcome } from '../../registry/model/adapter.js';
import type { CapabilityDocument, DatasetDoc, ServiceDoc } from '../../registry/model/capability.js';
import type { SiteHttp } from '../http.js';
import { harvestState, tapHealth, TapHarvester, type HarvestState } from './harvest.js';
import { createTapJobHooks } from './jobs.js';

/** A document from a harvest's services, datasets, compute pools and images, with the site as configured. */
export function harvestedDocument(
  ctx: AdapterContext,
  services: ServiceDoc[],
  datasets: DatasetDoc[],
  extra: Pick<Partial<CapabilityDocument>, 'compute' | 'images'> = {},
): CapabilityDocument {
  // A canonical id may name one replica per site: the first service listing a table wins.
  const seen = new Set<string>();
  const unique = datasets.filter((d) => (seen.has(d.id) ? false : (seen.add(d.id), true)));
  return {
    schemaVersion: 1,
    site: { id: ctx.site.id, name: ctx.site.name, platform: ctx.site.platform, url: ctx.site.url },
    services,
    datasets: unique,
    compute: extra.compute ?? [],
    images: extra.images ?? [],
    asOf: new Date().toISOString(),
  };
}

/** The outcome of a harvest from its state: notModified when every document answered 304. */
export function harvestOutcome(document: CapabilityDocument, state: HarvestState): HarvestOutcome {
  const out: HarvestOutcome = { document, bytes: state.meter.bytes, validators: state.validators };
  if (!state.modified) out.notModified = true;
  return out;
}

function trimBase(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The generic TAP adapter: `ctx.site.url` is the TAP base; one service "tap". */
export function createTapAdapter(http: SiteHttp): Adapter {
  const harvester = new TapHarvester(http);
  const hooks = createTapJobHooks(http, { baseFor: (ctx) => trimBase(ctx.site.url) });
  return {
    kind: 'tap',
    async harvest(ctx: AdapterContext, previous?: HarvestValidators): Promise<HarvestOutcome> {
      const state = harvestState(ctx, previous);
      const part = await harvester.harvestService({ serviceId: 'tap', base: trimBase(ctx.site.url) }, ctx, state);
      return harvestOutcome(harvestedDocument(ctx, [part.service], part.datasets), state);
    },
    async health(ctx: AdapterContext): Promise<HealthOutcome> {
      return tapHealth(http, trimBase(ctx.site.url), ctx);
    },
    ...hooks,
  };
}
