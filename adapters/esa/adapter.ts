/**
 * The ESA Gaia archive (TAP+ at {url}/tap): standard TAP harvest with the TAP+ habits (tables
 * listed with ?only_tables=true, one table described with ?tables=name, esatapplus:size as
 * row counts) and the archive's form login, which trades a username and password for a
 * JSESSIONID session cookie.
 */
import type { Adapter, AdapterContext, HarvestOutcome, HarvestValidators, HealthOutcome, SiteCredential } from '../../registry/model/adapter.js';
import type { AuthMethod, ServiceDoc } from '../../registry/model/capability.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { SiteHttp } from '../http.js';
import { harvestOutcome, harvestedDocument } from '../tap/adapter.js';
import { harvestState, tapHealth, TapHarvester } from '../tap/harvest.js';
import { createTapJobHooks } from '../tap/jobs.js';

const SESSION_COOKIE = 'JSESSIONID';

function opt(ctx: AdapterContext, key: string, fallback: string): string {
  const v = ctx.site.options?.[key];
  return typeof v === 'string' && v !== '' ? v : fallback;
}

function base(ctx: AdapterContext): string {
  return ctx.site.url.replace(/\/+$/, '');
}

/** The TAP+ base URL: {url}{options.tapPath ?? '/tap'}. */
export function esaTapBase(ctx: AdapterContext): string {
  return `${base(ctx)}${opt(ctx, 'tapPath', '/tap')}`;
}

/** The JSESSIONID value in Set-Cookie header text (undici joins several with ", "). */
export function sessionCookieOf(setCookie: string | undefined): string | undefined {
  return setCookie === undefined ? undefined : new RegExp(`(?:^|[,;\\s])${SESSION_COOKIE}=([^;,\\s]+)`).exec(setCookie)?.[1];
}

/** The ESA Gaia archive adapter (kind "esa"). */
export function createEsaAdapter(http: SiteHttp): Adapter {
  const harvester = new TapHarvester(http);
  // Sessions by site and user, so a harvest and the jobs after it share one login.
  const sessions = new Map<string, Promise<string>>();

  async function login(ctx: AdapterContext, user: string, password: string): Promise<string> {
    const res = await http.request(`${base(ctx)}${opt(ctx, 'loginPath', '/login')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: user, password }).toString(),
      signal: ctx.signal,
      meter: ctx.meter,
      accept: [302, 303],
    });
    await res.dump();
    const cookie = sessionCookieOf(res.headers['set-cookie']);
    if (cookie === undefined) throw new ConstellationError('UPSTREAM_AUTH', `the ESA archive login at ${ctx.site.id} set no ${SESSION_COOKIE} cookie`);
    return cookie;
  }

  /** Basic credentials become a session cookie; anything else is used as given. */
  async function credentialFor(ctx: AdapterContext): Promise<SiteCredential> {
    const c = ctx.credential;
    if (c.kind !== 'basic') return c;
    const key = `${ctx.site.id}\u0000${c.username}`;
    let session = sessions.get(key);
    if (session === undefined) {
      session = login(ctx, c.username, c.password);
      sessions.set(key, session);
      session.catch(() => sessions.delete(key));
    }
    return { kind: 'cookie', name: SESSION_COOKIE, value: await session };
  }

  const hooks = createTapJobHooks(http, { baseFor: esaTapBase, credentialFor });

  return {
    kind: 'esa',
    async harvest(ctx: AdapterContext, previous?: HarvestValidators): Promise<HarvestOutcome> {
      const state = harvestState(ctx, previous);
      const credential = await credentialFor(ctx);
      const part = await harvester.harvestService(
        { serviceId: 'tap', base: esaTapBase(ctx), title: 'Gaia archive TAP+', tablesQuery: 'only_tables=true', tableDetail: 'esa', credential },
        ctx,
        state,
      );
      // TAP+ takes the session cookie on its anonymous interface, without declaring it.
      const auth = new Set<AuthMethod>(part.service.auth ?? ['anonymous']);
      auth.add('cookie');
      const services: ServiceDoc[] = [{ ...part.service, auth: [...auth] }];
      const dataServer = ctx.site.options?.dataServer;
      if (typeof dataServer === 'string' && /^https?:\/\//.test(dataServer)) {
        services.push({
          id: 'datalink',
          type: 'datalink',
          url: `${dataServer.replace(/\/+$/, '')}/datalink`,
          standardId: 'ivo://ivoa.net/std/DataLink#links-1.0',
          title: 'Epoch photometry, spectra and other per-source products',
          auth: [...auth],
        });
      }
      return harvestOutcome(harvestedDocument(ctx, services, part.datasets), state);
    },
    async health(ctx: AdapterContext): Promise<HealthOutcome> {
      return tapHealth(http, esaTapBase(ctx), ctx);
    },
    ...hooks,
  };
}
