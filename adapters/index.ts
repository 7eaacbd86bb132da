/** The adapter list: one line per platform kind. */
import type { Adapter, AdapterContext } from '../registry/model/adapter.js';
import type { Platform } from '../registry/model/capability.js';
import { createCanfarAdapter } from './canfar/adapter.js';
import { createDatalabAdapter } from './datalab/adapter.js';
import { createEsaAdapter } from './esa/adapter.js';
import type { HttpClient, SiteHttp } from './http.js';
import { createMastAdapter } from './mast/adapter.js';
import { OutboundPolicy, type SitePolicySpec } from './outbound-policy.js';
import { createRspAdapter } from './rsp/adapter.js';
import { createSciserverAdapter } from './sciserver/adapter.js';
import { createTapAdapter } from './tap/adapter.js';

const factories: Record<Platform, (http: SiteHttp) => Adapter> = {
  rsp: createRspAdapter,
  sciserver: createSciserverAdapter,
  esa: createEsaAdapter,
  datalab: createDatalabAdapter,
  canfar: createCanfarAdapter,
  mast: createMastAdapter,
  tap: createTapAdapter,
};

export interface AdapterOptions {
  /** The `allowHosts` federation.yaml gives a site (none when unset). */
  allowHosts?: (siteId: string) => readonly string[] | undefined;
}

/**
 * One adapter per platform kind; returns the lookup by kind. Each call is served by an
 * instance bound to the calling site (`ctx.site`) over `http.forSite(…)`, so every request an
 * adapter makes passes that site's outbound policy, byte limits and circuit breaker.
 */
export function createAdapters(http: HttpClient, options: AdapterOptions = {}): (kind: Platform) => Adapter {
  const adapters = new Map((Object.keys(factories) as Platform[]).map((k) => [k, siteBound(k, http, options)]));
  return (kind) => adapters.get(kind)!;
}

const HOOKS = ['submitQuery', 'submitContainerJob', 'jobStatus', 'cancelJob', 'jobResult', 'findQueryJob'] as const;

/** The adapter of `kind` that forwards each call to the instance for the call's site (made on first use, one per site policy). */
function siteBound(kind: Platform, http: HttpClient, options: AdapterOptions): Adapter {
  const make = factories[kind];
  const perSite = new Map<string, Adapter>();
  const forCtx = (ctx: AdapterContext): Adapter => {
    const spec: SitePolicySpec = { siteId: ctx.site.id, url: ctx.site.url, allowHosts: options.allowHosts?.(ctx.site.id) };
    const key = OutboundPolicy.key(spec);
    let adapter = perSite.get(key);
    if (!adapter) perSite.set(key, (adapter = make(http.forSite(spec))));
    return adapter;
  };
  // Which optional hooks this kind has: a never-used instance answers that.
  const shape = make(http);
  const bound: Adapter = {
    kind,
    harvest: (ctx, previous) => forCtx(ctx).harvest(ctx, previous),
    health: (ctx) => forCtx(ctx).health(ctx),
  };
  const hooks = bound as unknown as Record<string, unknown>;
  for (const hook of HOOKS) {
    if (shape[hook]) hooks[hook] = (ctx: AdapterContext, ...args: unknown[]) => (forCtx(ctx)[hook] as (...a: unknown[]) => unknown)(ctx, ...args);
  }
  return bound;
}
