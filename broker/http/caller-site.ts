/**
 * The fast lane: which member site a request comes from, when it comes from inside one. A caller
 * says so with the X-Constellation-Site header, or its address is in a site's `networks`. It only
 * changes where work is preferred and how moved bytes are counted, never what the caller may do.
 */
import { BlockList, isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidArgument, isConstellationError } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The member site this request comes from, when it comes from inside one (the fast lane). */
    callerSite: string | undefined;
  }
}

/** Set `request.callerSite` on every request; a header naming no member is 400 INVALID_ARGUMENT. */
export function locateCallers(app: FastifyInstance, sites: CallerSites): void {
  app.decorateRequest('callerSite', undefined);
  app.addHook('onRequest', async (request, reply) => {
    try {
      request.callerSite = sites.siteOf(request);
    } catch (err) {
      if (!isConstellationError(err)) throw err;
      return reply.code(err.statusCode).send(err.toJSON());
    }
  });
}

/** The header a caller inside a member platform names that platform in. */
export const CALLER_SITE_HEADER = 'x-constellation-site';

/** Finds the member site a request comes from. */
export class CallerSites {
  readonly #ids: ReadonlySet<string>;
  readonly #networks: { site: string; addresses: BlockList }[];

  constructor(config: Config) {
    this.#ids = new Set(config.sites.map((s) => s.id));
    this.#networks = config.sites.filter((s) => s.networks?.length).map((s) => {
      const addresses = new BlockList();
      for (const cidr of s.networks ?? []) {
        const [address, bits] = cidr.split('/');
        addresses.addSubnet(address, Number(bits), isIP(address) === 6 ? 'ipv6' : 'ipv4');
      }
      return { site: s.id, addresses };
    });
  }

  /** The site named by the header (INVALID_ARGUMENT when it names no member), else the one whose networks hold the caller's address. */
  siteOf(request: Pick<FastifyRequest, 'headers' | 'ip'>): string | undefined {
    const named = request.headers[CALLER_SITE_HEADER];
    if (typeof named === 'string' && named !== '') {
      if (!this.#ids.has(named)) throw invalidArgument(CALLER_SITE_HEADER, `names "${named.slice(0, 80)}", which is not a site of this federation`, 'known-site');
      return named;
    }
    const ip = request.ip.startsWith('::ffff:') ? request.ip.slice(7) : request.ip;
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    return this.#networks.find((n) => n.addresses.check(ip, family))?.site;
  }
}
