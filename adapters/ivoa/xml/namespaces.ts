/** Namespace URIs of the IVOA documents we read, and tests that match them by URI (never by prefix). */

/** Fixed namespace URIs. */
export const NS = {
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
  xlink: 'http://www.w3.org/1999/xlink',
  vosiCapabilities: 'http://www.ivoa.net/xml/VOSICapabilities/v1.0',
  vosiTables: 'http://www.ivoa.net/xml/VOSITables/v1.0',
  vosiAvailability: 'http://www.ivoa.net/xml/VOSIAvailability/v1.0',
  tapRegExt: 'http://www.ivoa.net/xml/TAPRegExt/v1.0',
  /** Pre-REC TAPRegExt namespace still served by ~2011 GAVO/DaCHS installations. */
  tapRegExtLegacy: 'http://www.ivoa.net/xml/TAP/v0.1',
  uws: 'http://www.ivoa.net/xml/UWS/v1.0',
  /** Pre-REC UWS namespace that OpenCADC-based services still emit. */
  uwsRc3: 'http://www.ivoa.net/xml/UWS/v1.0rc3',
  esaTapPlus: 'http://esa.int/xml/EsaTapPlus',
} as const;

/** A namespace test: one URI, a list of URIs, or a predicate. */
export type NsMatch = string | readonly string[] | ((uri: string) => boolean);

/** True when `uri` satisfies `match`. */
export function nsMatches(match: NsMatch, uri: string): boolean {
  if (typeof match === 'string') return match === uri;
  if (typeof match === 'function') return match(uri);
  return match.includes(uri);
}

// Minor versions of VODataService each got their own URI up to 1.1; 1.2 reuses v1.1.
const VODATASERVICE = /^http:\/\/www\.ivoa\.net\/xml\/VODataService\/v1\.\d+$/;
const VORESOURCE = /^http:\/\/www\.ivoa\.net\/xml\/VOResource\/v1\.\d+$/;

/** Any VODataService namespace (v1.0, v1.1; 1.2 keeps the v1.1 URI). */
export function isVoDataServiceNs(uri: string): boolean {
  return VODATASERVICE.test(uri);
}

/** Any VOResource namespace (1.1 keeps the v1.0 URI). */
export function isVoResourceNs(uri: string): boolean {
  return VORESOURCE.test(uri);
}

/** TAPRegExt 1.0/1.1 or its pre-REC namespace. */
export function isTapRegExtNs(uri: string): boolean {
  return uri === NS.tapRegExt || uri === NS.tapRegExtLegacy;
}

/** UWS 1.0/1.1 or the legacy v1.0rc3 namespace. */
export function isUwsNs(uri: string): boolean {
  return uri === NS.uws || uri === NS.uwsRc3;
}

/**
 * VOResource-family schemas declare their content elements unqualified, but some writers put
 * them in the root's (default) namespace anyway; any IVOA namespace or none is accepted.
 */
export function isIvoaOrNone(uri: string): boolean {
  return uri === '' || uri.startsWith('http://www.ivoa.net/xml/');
}
