/**
 * NOIRLab Astro Data Lab (datalab.noirlab.edu): tables come from the standard `/tap` over
 * VOSI (the federation queries through it); the custom query manager at `/query` is recorded
 * as a `dlquery` service from its `/services` and `/profiles` listings. Every request carries
 * the `X-DL-AuthToken` header, with Data Lab's anonymous token when the broker has none.
 */
import type { HttpClient } from '../http.js';
import type { Adapter, AdapterContext, HarvestOutcome, HealthOutcome, SiteCredential } from '../../registry/model/adapter.js';
import type { CapabilityDocument, ColumnDoc, DatasetDoc, ServiceDoc } from '../../registry/model/capability.js';
import { defaultDatasetId } from '../../registry/model/mapping.js';
import { isConstellationError } from '../../registry/model/errors.js';
import {
  STANDARD_IDS,
  findTapCapability,
  maxRec,
  parseCapabilities,
  supportsUpload,
  tapEndpoints,
  uploadLimitBytes,
  type Capability,
} from '../ivoa/vosi/capabilities.js';
import { allTables, columnDoc, parseVosiTable, parseVosiTables, tablesNeedingDetail, type VosiTable } from '../ivoa/vosi/tables.js';
import { parseAvailability } from '../ivoa/vosi/availability.js';

/** The token Data Lab's AuthManager hands out for public access. */
export const DATALAB_ANONYMOUS_TOKEN = 'anonymous.0.0.anon_access';

/** The header Data Lab reads its token from. */
export const DATALAB_TOKEN_HEADER = 'X-DL-AuthToken';

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
export function createDatalabAdapter(http: HttpClient): Adapter {
  return {
    kind: 'datalab',
    harvest: (ctx) => harvest(http, ctx),
    health: (ctx) => health(http, ctx),
  };
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

async function harvest(http: HttpClient, ctx: AdapterContext): Promise<DatalabHarvestOutcome> {
  const meter = ctx.meter ?? { bytes: 0 };
  const start = meter.bytes;
  const options = readOptions(ctx.site.options);
  const base = stripSlash(ctx.site.url);
  const credential = datalabCredential(ctx.credential);
  const get = (url: string, accept = 'application/xml, text/xml, */*') =>
    http.text(url, { credential, meter, signal: ctx.signal, headers: { accept } });

  const tapUrl = join(base, options.tapPath);
  const caps = parseCapabilities(await get(`${tapUrl}/capabilities`));
  const tablesUrl = tapEndpoints(caps, credential.kind)?.tables ?? `${tapUrl}/tables`;
  const tableset = parseVosiTables(await get(tablesUrl));
  const detailed = new Map<string, VosiTable>();
  await eachLimited(tablesNeedingDetail(tableset), 4, async (name) => {
    detailed.set(name, parseVosiTable(await get(`${tablesUrl}/${encodeURIComponent(name)}`)));
  });

  const services: ServiceDoc[] = [tapService(tapUrl, caps)];
  const datasets: DatasetDoc[] = [];
  const ids = new Set<string>();
  for (const summary of allTables(tableset)) {
    const d = detailed.get(summary.name);
    // The per-table document may omit what the summary gave (row counts, descriptions).
    const table = d === undefined ? summary : { ...summary, ...d, nrows: d.nrows ?? summary.nrows, description: d.description ?? summary.description };
    const doc = datasetDoc(table, 'tap');
    if (doc === undefined || ids.has(doc.id)) continue;
    ids.add(doc.id);
    datasets.push(doc);
  }

  // The query manager is optional for the federation (TAP carries its queries), so a listing
  // that fails only drops the dlquery service; when neither answers, the service is left out.
  const queryUrl = join(base, options.queryPath);
  const [servicesList, profiles] = await Promise.all([
    get(`${queryUrl}/services?mode=list`, 'application/json, text/plain, */*').then(parseNameList, () => undefined),
    get(`${queryUrl}/profiles`, 'application/json, text/plain, */*').then(parseNameList, () => undefined),
  ]);
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

  const document: CapabilityDocument = {
    schemaVersion: 1,
    site: { id: ctx.site.id, name: ctx.site.name, platform: 'datalab', url: ctx.site.url },
    services,
    datasets,
    compute: [],
    images: [],
    asOf: new Date().toISOString(),
  };
  const outcome: DatalabHarvestOutcome = { document, bytes: meter.bytes - start };
  if (profiles !== undefined) outcome.queryProfiles = profiles;
  if (servicesList !== undefined) outcome.queryServices = servicesList;
  return outcome;
}

async function health(http: HttpClient, ctx: AdapterContext): Promise<HealthOutcome> {
  const options = readOptions(ctx.site.options);
  const url = `${join(stripSlash(ctx.site.url), options.tapPath)}/availability`;
  try {
    const availability = parseAvailability(await http.text(url, { credential: datalabCredential(ctx.credential), signal: ctx.signal, retry: false }));
    if (availability.available) return { status: 'UP' };
    return { status: 'DOWN', message: `TAP unavailable${availability.notes.length ? `: ${availability.notes.join('; ')}` : ''}` };
  } catch (err) {
    return { status: 'DOWN', message: isConstellationError(err) ? `${err.kind}: ${err.message}` : String(err) };
  }
}

function tapService(url: string, caps: Capability[]): ServiceDoc {
  const service: ServiceDoc = {
    id: 'tap',
    type: 'tap',
    url,
    standardId: STANDARD_IDS.tap,
    title: 'Data Lab standard TAP (sync and async)',
    upload: supportsUpload(caps),
    async: true,
    // /tap/sync is keyless; a user's token only adds their own MyDB tables.
    auth: ['anonymous', 'token-header'],
  };
  const rows = maxRec(caps);
  const upload = uploadLimitBytes(caps);
  if (rows !== undefined) service.maxRec = rows;
  if (upload !== undefined) service.uploadLimitBytes = upload;
  const access = findTapCapability(caps)?.tableAccess;
  if (access) {
    const languages = access.languages.flatMap((l) => (l.versions.length ? l.versions.map((v) => `${l.name}-${v.version}`) : [l.name]));
    const formats = [...new Set(access.outputFormats.map((f) => f.mime))];
    if (languages.length) service.languages = languages.slice(0, 50);
    if (formats.length) service.formats = formats.slice(0, 50);
  }
  return service;
}

function datasetDoc(table: VosiTable, service: string): DatasetDoc | undefined {
  if (table.name.toLowerCase().replace(/"/g, '').startsWith('tap_schema.')) return undefined;
  const id = defaultDatasetId(table.name);
  if (id === undefined) return undefined;
  const doc: DatasetDoc = { id, service, table: table.name, access: { public: true, groups: [] } };
  if (table.title) doc.title = table.title.slice(0, 500);
  if (table.description) doc.description = table.description.slice(0, 4000);
  if (table.nrows !== undefined) doc.rows = table.nrows;
  const columns = table.columns.map(columnDoc);
  if (columns.length) {
    doc.columns = columns;
    const position = positionOf(columns);
    if (position) doc.position = position;
    const width = rowBytes(columns);
    if (width > 0) doc.rowBytes = width;
  }
  return doc;
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

function positionOf(columns: ColumnDoc[]): { ra: string; dec: string } | undefined {
  const words = (c: ColumnDoc) => (c.ucd ?? '').toLowerCase().split(';').map((w) => w.trim());
  const pick = (axis: 'ra' | 'dec', names: string[]) =>
    (
      columns.find((c) => words(c).includes(`pos.eq.${axis}`) && words(c).includes('meta.main')) ??
      columns.find((c) => words(c).includes(`pos.eq.${axis}`)) ??
      columns.find((c) => names.includes(c.name.toLowerCase()))
    )?.name;
  const ra = pick('ra', ['ra', 'ra_icrs', 'ramean']);
  const dec = pick('dec', ['dec', 'decl', 'de_icrs', 'decmean']);
  return ra && dec ? { ra, dec } : undefined;
}

const WIDTH: Record<string, number> = { boolean: 1, bit: 1, unsignedByte: 1, short: 2, int: 4, long: 8, char: 1, unicodeChar: 2, float: 4, double: 8, floatComplex: 8, doubleComplex: 16 };

// A rough row width for the planner's bytes-moved estimate; variable-length strings count 16.
function rowBytes(columns: ColumnDoc[]): number {
  let total = 0;
  for (const c of columns) {
    const width = WIDTH[c.datatype ?? ''] ?? 8;
    const size = c.arraysize === undefined ? 1 : c.arraysize.split('x').reduce((n, part) => n * (Number.parseInt(part, 10) || 16), 1);
    total += width * size;
  }
  return total;
}

function readOptions(raw: Record<string, unknown> | undefined): DatalabOptions {
  const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  return { tapPath: str(raw?.tapPath) ?? '/tap', queryPath: str(raw?.queryPath) ?? '/query' };
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function join(base: string, path: string): string {
  return /^https?:\/\//.test(path) ? stripSlash(path) : `${stripSlash(base)}${path.startsWith('/') ? '' : '/'}${stripSlash(path)}`;
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
