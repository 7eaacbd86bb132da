/** The adapter list: one line per platform kind. */
import type { Adapter } from '../registry/model/adapter.js';
import type { Platform } from '../registry/model/capability.js';
import { createCanfarAdapter } from './canfar/adapter.js';
import { createDatalabAdapter } from './datalab/adapter.js';
import { createEsaAdapter } from './esa/adapter.js';
import type { HttpClient } from './http.js';
import { createMastAdapter } from './mast/adapter.js';
import { createRspAdapter } from './rsp/adapter.js';
import { createSciserverAdapter } from './sciserver/adapter.js';
import { createTapAdapter } from './tap/adapter.js';

const factories: Record<Platform, (http: HttpClient) => Adapter> = {
  rsp: createRspAdapter,
  sciserver: createSciserverAdapter,
  esa: createEsaAdapter,
  datalab: createDatalabAdapter,
  canfar: createCanfarAdapter,
  mast: createMastAdapter,
  tap: createTapAdapter,
};

/** One adapter per platform kind, all sharing `http`; returns the lookup by kind. */
export function createAdapters(http: HttpClient): (kind: Platform) => Adapter {
  const adapters = new Map((Object.keys(factories) as Platform[]).map((k) => [k, factories[k](http)]));
  return (kind) => adapters.get(kind)!;
}
