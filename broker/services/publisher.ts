/** Accepting a capability document for a site: identity checks, mapping, validation, storage. */
import type pg from 'pg';
import type { CapabilityDocument } from '../../registry/model/capability.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { applyMapping } from '../../registry/model/mapping.js';
import { validateCapabilityDocument, validateCapabilityDocumentAsync } from '../../registry/model/validate.js';
import { publishSite, storedCoverage, type DocumentOrigin, type PublishResult } from '../../registry/store/publish.js';
import type { PublishedSite } from '../../registry/store/published-site.js';
import { sitesByIds } from '../../registry/store/queries/sites.js';
import type { Config, SiteConfig } from '../config/config.js';

/** Publishes documents into the registry on behalf of operators, seeds and harvests. */
export class Publisher {
  private readonly sites: Map<string, SiteConfig>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly config: Config,
    /** Called after each commit, before the publish is answered, with what the site now is (the registry view takes it). */
    private readonly onPublished: (result: PublishResult, site: PublishedSite) => Promise<void> = async () => {},
  ) {
    this.sites = new Map(config.sites.map((s) => [s.id, s]));
  }

  /**
   * Validate `input` as the document of `siteId` and store it. Nothing is stored unless
   * every check passes; the error lists every violation found.
   */
  async publish(siteId: string, input: unknown, origin: DocumentOrigin): Promise<PublishResult> {
    checkClaimedSite(siteId, input);
    const configured = this.sites.get(siteId);
    if (!configured && !this.config.registration.open && (await sitesByIds(this.pool, [siteId])).length === 0) {
      throw new ConstellationError('UNKNOWN_SITE', `site "${siteId}" is not a member of federation "${this.config.federation.name}"`);
    }
    // The site's stored coverage was validated when it was stored: validation need not parse
    // those texts again (a harvest resends nearly all of them), and the store reuses their fractions.
    const stored = await storedCoverage(this.pool, siteId);
    // Validation parses every other MOC: it keeps their sky fractions, which the store then need not compute again.
    const fractions = new Map(stored);
    const doc = await checkDocumentAsync(configured, siteId, input, new Set(stored.keys()), fractions);
    const { result, site } = await publishSite(this.pool, doc, origin, fractions);
    await this.onPublished(result, site);
    return result;
  }
}

/**
 * The document `input` becomes for `siteId` (with `configured`, federation.yaml's site, its
 * mappings applied), or the error listing every violation. Pure: no database.
 */
export function checkDocument(configured: SiteConfig | undefined, siteId: string, input: unknown): CapabilityDocument {
  checkSite(configured, siteId, input);
  const doc = validateCapabilityDocument(input);
  const mapped = configured ? applyMapping(doc, configured.datasets) : doc;
  return mapped === doc ? doc : validateCapabilityDocument(mapped, Date.now(), { normalMocs: normalMocsOf(doc) });
}

/**
 * {@link checkDocument} in slices of the event loop, for documents that arrive over the network:
 * a large one does not hold up other requests. `stored`: MOC texts the site stores (validated
 * when stored), not parsed again; `fractions` is given the sky fraction of each MOC parsed.
 */
async function checkDocumentAsync(configured: SiteConfig | undefined, siteId: string, input: unknown, stored: ReadonlySet<string>, fractions: Map<string, number>): Promise<CapabilityDocument> {
  checkSite(configured, siteId, input);
  const doc = await validateCapabilityDocumentAsync(input, Date.now(), { normalMocs: stored, fractions });
  const mapped = configured ? applyMapping(doc, configured.datasets) : doc;
  // A mapping changes ids, titles and column names, so the mapped copy is validated again (ids
  // may now collide); its MOCs are the first pass's normal forms, except a coverage the mapping
  // filled in, which is parsed.
  return mapped === doc ? doc : validateCapabilityDocumentAsync(mapped, Date.now(), { normalMocs: normalMocsOf(doc, stored), fractions });
}

/** The coverage texts of a validated document (normal form), with `also`. */
function normalMocsOf(doc: CapabilityDocument, also: Iterable<string> = []): Set<string> {
  const texts = new Set(also);
  for (const d of doc.datasets) if (d.coverage !== undefined) texts.add(d.coverage);
  return texts;
}

/** SITE_MISMATCH when the document names another site, or another platform than federation.yaml's. */
function checkSite(configured: SiteConfig | undefined, siteId: string, input: unknown): void {
  checkClaimedSite(siteId, input);
  const { platform } = claimedSite(input);
  if (configured && platform !== undefined && platform !== configured.adapter) {
    throw new ConstellationError('SITE_MISMATCH', `site "${siteId}" is a ${configured.adapter} site, not ${platform}`, {
      violations: [{ path: '/site/platform', rule: 'site-match', message: `must equal "${configured.adapter}"` }],
    });
  }
}

/** SITE_MISMATCH when the document names another site than the one it is sent for. */
function checkClaimedSite(siteId: string, input: unknown): void {
  const claimed = claimedSite(input);
  if (claimed.id !== undefined && claimed.id !== siteId) {
    throw new ConstellationError('SITE_MISMATCH', `document is for site "${claimed.id}" but was sent for site "${siteId}"`, {
      violations: [{ path: '/site/id', rule: 'site-match', message: `must equal "${siteId}"` }],
    });
  }
}

function claimedSite(input: unknown): { id?: string; platform?: string } {
  const site = (input as { site?: { id?: unknown; platform?: unknown } } | null)?.site;
  if (typeof site !== 'object' || site === null) return {};
  return {
    id: typeof site.id === 'string' ? site.id : undefined,
    platform: typeof site.platform === 'string' ? site.platform : undefined,
  };
}
