/**
 * Where the broker may send a request on a site's behalf. A site's answers are untrusted: a
 * 303 Location, a UWS result href, a redirect or a VOSI accessURL may name any host, so every
 * URL is checked here before anything is sent. The site's own host (its configured `url`) and
 * the hosts listed in its `allowHosts` are allowed; loopback, link-local and private addresses
 * only when the site's configured url itself resolves to one (a site run on the same machine).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ConstellationError } from '../registry/model/errors.js';

/** What the policy needs to know of one site (from federation.yaml). */
export interface SitePolicySpec {
  siteId: string;
  /** The site's configured base URL: its host is the site's own. */
  url: string;
  /** Further hosts the site may send the broker to: `host` (any port) or `host:port`. */
  allowHosts?: readonly string[];
}

/** Addresses a public site may never send the broker to (RFC 1918, loopback, link-local, ULA, unspecified, CGNAT). */
const PRIVATE = new BlockList();
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) PRIVATE.addSubnet(net, prefix, 'ipv6');

/** True for a loopback, link-local, private or unspecified IPv4/IPv6 address (IPv4-mapped IPv6 included). */
export function isPrivateAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return PRIVATE.check(mapped[1]!, 'ipv4');
  const family = isIP(ip);
  if (family === 4) return PRIVATE.check(ip, 'ipv4');
  if (family === 6) {
    // Other IPv4-mapped spellings (::ffff:7f00:1) are normalised by the URL parser to hex.
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
    if (hex) {
      const n = (parseInt(hex[1]!, 16) << 16) | parseInt(hex[2]!, 16);
      return PRIVATE.check([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), 'ipv4');
    }
    return PRIVATE.check(ip, 'ipv6');
  }
  return false;
}

/** The error code a guarded DNS lookup fails with; http.ts turns it into UPSTREAM_POLICY. */
export const PRIVATE_ADDRESS_CODE = 'CONSTELLATION_PRIVATE_ADDRESS';

/**
 * A `lookup` for net.connect that refuses private addresses: checked on the address actually
 * connected to, so a public name that resolves (or re-resolves) to 127.0.0.1 cannot get through.
 */
export function guardedLookup(
  hostname: string,
  options: LookupOneOptions | LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses as LookupAddress[];
    if (list.length === 0 || list.some((a) => isPrivateAddress(a.address))) {
      const refused = Object.assign(new Error(`${hostname} resolves to a private address`), { code: PRIVATE_ADDRESS_CODE });
      return callback(refused, '', 0);
    }
    if ((options as LookupAllOptions).all) return callback(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
}

interface HostRule {
  hostname: string;
  port?: string;
}

function hostRule(entry: string): HostRule {
  const u = new URL(`http://${entry}`);
  return { hostname: u.hostname.toLowerCase(), port: /:\d+$/.test(entry) ? u.port || '80' : undefined };
}

/** The port a URL connects to, spelled out (default ports included). */
function portOf(u: URL): string {
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

/** How long a site's own address is trusted before it is resolved again. */
const RESOLVE_TTL_MS = 5 * 60_000;

/** One site's outbound policy. */
export class OutboundPolicy {
  readonly siteId: string;
  private readonly own: URL;
  private readonly allowed: HostRule[];
  private privateCheck?: { at: number; value: Promise<boolean> };

  constructor(spec: SitePolicySpec) {
    this.siteId = spec.siteId;
    this.own = new URL(spec.url);
    this.allowed = (spec.allowHosts ?? []).map(hostRule);
  }

  /** A stable key: two specs with the same key behave the same. */
  static key(spec: SitePolicySpec): string {
    return JSON.stringify([spec.siteId, spec.url, spec.allowHosts ?? []]);
  }

  /**
   * The parsed URL when the site may send the broker there; UPSTREAM_POLICY naming the site
   * and the host (never the path or query) otherwise. The site's own host is its configured
   * url's host and port; an `allowHosts` entry without a port allows every port of that host.
   */
  check(url: string): URL {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new ConstellationError('UPSTREAM_POLICY', `site "${this.siteId}" named a URL that is not valid; nothing was sent`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ConstellationError('UPSTREAM_POLICY', `site "${this.siteId}" named a ${u.protocol.replace(/:$/, '')}: URL; only http and https are requested`);
    }
    if (!this.isOwnHost(u) && !this.allowed.some((r) => r.hostname === u.hostname.toLowerCase() && (r.port === undefined || r.port === portOf(u)))) {
      throw this.refusal(u.host);
    }
    return u;
  }

  /** True when `u` is on the site's configured host and port. */
  isOwnHost(u: URL): boolean {
    return u.hostname.toLowerCase() === this.own.hostname.toLowerCase() && portOf(u) === portOf(this.own);
  }

  /** UPSTREAM_POLICY for `host` (a host, never a whole URL). */
  refusal(host: string, why = 'is not the site\'s host nor in its allowHosts'): ConstellationError {
    return new ConstellationError('UPSTREAM_POLICY', `site "${this.siteId}" may not send the broker to host ${host}: it ${why}; nothing was sent`);
  }

  /** Whether private addresses may be reached for this site: only when its configured url resolves to one (memoised for a few minutes). */
  privateAllowed(now = Date.now()): Promise<boolean> {
    if (!this.privateCheck || now - this.privateCheck.at > RESOLVE_TTL_MS) {
      const host = this.own.hostname.replace(/^\[|\]$/g, '');
      const value = isIP(host)
        ? Promise.resolve(isPrivateAddress(host))
        : dnsLookupAsync(host, { all: true }).then((list) => list.some((a) => isPrivateAddress(a.address)), () => false);
      this.privateCheck = { at: now, value };
    }
    return this.privateCheck.value;
  }
}
