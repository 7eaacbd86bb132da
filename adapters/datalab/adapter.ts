/**
 * NOIRLab Astro Data Lab (datalab.noirlab.edu): tables come from the standard `/tap` over
 * VOSI (the federation queries through it); the custom query manager at `/query` is recorded
 * as a `dlquery` service from its `/services` and `/profiles` listings. Queries run on `/tap`
 * (sync or UWS async). Every request carries the `X-DL-AuthToken` header, with Data Lab's
 * anonymous token when the broker has none.
 */
import type { SiteHttp } from '../http.js';
import type { Adapter, AdapterContext, HarvestOutcome, HarvestValidators, HealthOutcome, SiteCredential } from '../../registry/model/adapter.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { parseAvailability } from '../ivoa/vosi/availability.js';
import { harvestOutcome, harvestedDocument } from '../tap/adapter.js';
import { harvestState, TapHarvester } from '../tap/harvest.js';
import { createTapJobHooks } from '../tap/jobs.js';
import { joinUrl, stripSlash } from '../url.js';

/** The token Data Lab's AuthManager hands out for public access. */
export const DATALAB_ANONYMOUS_TOKEN = 'anonymous.0.0.anon_access';

/** The header Data Lab reads its token from. */
export const DATALAB_TOKEN_HEADER = 'X-DL-AuthToken';

// The id of the one TAP service in the capability document.
const TAP_SERVICE = 'tap';

/** A harvest outcome with the query manager's own listings, when it answered. */
export interface DatalabHarvestOutcome extends HarvestOutcome {
  queryProfiles?: string[];
  queryServices?: string[];
}

interface DatalabOptions {
  tapPath: string;
  queryPath: string;
}

/** The NOIRLab Astro Data Lab adapter (kind 'datalab'). */
export function createDatalabAdapter(http: SiteHttp): Adapter {
  const harvester = new TapHarvester(http);
  const hooks = createTapJobHooks(http, {
    baseFor(ctx, service) {
      // The query manager ("query") speaks its own API, not TAP, so only /tap takes jobs here.
      if (service !== TAP_SERVICE) throw new ConstellationError('INVALID_ARGUMENT', `Data Lab site ${ctx.site.id} has no TAP service "${service}" (its TAP service is "${TAP_SERVICE}")`);
      return datalabTapBase(ctx);
    },
    credentialFor: async (ctx) => datalabCredential(ctx.credential),
  });
  return {
    kind: 'datalab',
    harvest: (ctx, previous) => harvest(harvester, ctx, previous),
    health: (ctx) => health(http, ctx),
    ...hooks,
  };
}

/** The standard TAP base URL: {url}{options.tapPath ?? '/tap'}. */
export function datalabTapBase(ctx: AdapterContext): string {
  return joinUrl(stripSlash(ctx.site.url), readOptions(ctx.site.options).tapPath);
}

/** The credential as Data Lab wants it: a token in X-DL-AuthToken, the anonymous one if none. */
export function datalabCredential(credential: SiteCredential): SiteCredential {
  switch (credential.kind) {
    case 'anonymous':
      return { kind: 'header', name: DATALAB_TOKEN_HEADER, value: DATALAB_ANONYMOUS_TOKEN };
    case 'bearer':
      return { kind: 'header', name: DATALAB_TOKEN_HEADER, value: credential.token };
    default:
      return credential;
  }
}

async function harvest(harvester: TapHarvester, ctx: AdapterContext, previous?: HarvestValidators): Promise<DatalabHarvestOutcome> {
  const options = readOptions(ctx.site.options);
  const base = stripSlash(ctx.site.url);
  const credential = datalabCredential(ctx.credential);
  const state = harvestState(ctx, previous);

  const tap = await harvester.harvestService(
    {
      serviceId: TAP_SERVICE,
      base: datalabTapBase(ctx),
      title: 'Data Lab standard TAP (sync and async)',
      credential,
      // /tap/sync is keyless; a user's token only adds their own MyDB tables.
      auth: ['anonymous', 'token-header'],
      access: { public: true, groups: [] },
      positionNames: { ra: ['ra', 'ra_icrs', 'ramean'], dec: ['dec', 'decl', 'de_icrs', 'decmean'] },
    },
    ctx,
    state,
  );
  const services = [tap.service];

  // The query manager is optional for the federation (TAP carries its queries), so a listing
  // that fails only drops the dlquery service; when neither answers, the service is left out.
  const queryUrl = joinUrl(base, options.queryPath);
  const listing = (path: string) => harvester.fetchDocument(`${queryUrl}${path}`, ctx, state, credential, 'application/json, text/plain, */*').then(parseNameList, () => undefined);
  const [servicesList, profiles] = await Promise.all([listing('/services?mode=list'), listing('/profiles')]);
  if (servicesList !== undefined || profiles !== undefined) {
    services.push({
      id: 'query',
      type: 'dlquery',
      url: queryUrl,
      title: `Data Lab query manager (ADQL or SQL; MyDB and VOSpace output)${profiles?.length ? `; profiles: ${profiles.slice(0, 20).join(', ')}` : ''}`.slice(0, 4000),
      async: true,
      languages: ['ADQL', 'SQL'],
      // /query/query refuses the anonymous token: a user's own token is required.
      auth: ['token-header'],
    });
  }

  const outcome: DatalabHarvestOutcome = harvestOutcome(harvestedDocument(ctx, services, tap.datasets), state);
  if (profiles !== undefined) outcome.queryProfiles = profiles;
  if (servicesList !== undefined) outcome.queryServices = servicesList;
  return outcome;
}

async function health(http: SiteHttp, ctx: AdapterContext): Promise<HealthOutcome> {
  const url = `${datalabTapBase(ctx)}/availability`;
  try {
    const availability = parseAvailability(await http.text(url, { credential: datalabCredential(ctx.credential), signal: ctx.signal, retry: false }));
    if (availability.available) return { status: 'UP' };
    return { status: 'DOWN', message: `TAP unavailable${availability.notes.length ? `: ${availability.notes.join('; ')}` : ''}` };
  } catch (err) {
    return { status: 'DOWN', message: isConstellationError(err) ? `${err.kind}: ${err.message}` : String(err) };
  }
}

/**
 * Names from a query-manager listing, which may be JSON (an array of names or of objects with
 * a name, or an object keyed by name) or plain text (one name per line, maybe with more columns).
 */
export function parseNameList(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    const json: unknown = JSON.parse(trimmed);
    if (Array.isArray(json)) {
      return json
        .map((item) => (typeof item === 'string' ? item : typeof item === 'object' && item !== null ? (item as Record<string, unknown>).name : undefined))
        .filter((n): n is string => typeof n === 'string' && n !== '');
    }
    if (typeof json === 'object' && json !== null) return Object.keys(json);
    if (typeof json === 'string') return parseNameList(json);
  } catch {
    // Not JSON: the query manager's text format.
  }
  return trimmed
    .split(/\r?\n|,/)
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '' && !/^[-=#]+$/.test(n));
}

function readOptions(raw: Record<string, unknown> | undefined): DatalabOptions {
  const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  return { tapPath: str(raw?.tapPath) ?? '/tap', queryPath: str(raw?.queryPath) ?? '/query' };
}

