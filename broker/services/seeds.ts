/** The shipped seed documents of configured sites: checked on every start, published where a site has advertised nothing yet. */
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { sitesWithDocuments, upsertConfiguredSite } from '../../registry/store/queries/sites.js';
import type { Config } from '../config/config.js';
import { checkDocument, type Publisher } from './publisher.js';

/** Each configured site's seed, read and validated (federation.yaml's mappings applied). */
export type Seeds = ReadonlyMap<string, unknown>;

/**
 * Read and check every configured seed, without a database. A missing, unreadable or invalid
 * seed is INVALID_CONFIG naming the site, the file and what to do, on every start: a seed that
 * broke after the first start would otherwise go unnoticed until a new database needs it.
 */
export async function loadSeeds(config: Config): Promise<Seeds> {
  const seeds = new Map<string, unknown>();
  for (const site of config.sites) {
    if (!site.seed) continue;
    const where = `seed of site "${site.id}" (${site.seed}, from sites[].seed in ${config.configPath ?? 'federation.yaml'}; relative paths start at that file's folder)`;
    let text: string;
    try {
      text = await readFile(site.seed, 'utf8');
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(err as Error).message}`;
      throw new ConstellationError('INVALID_CONFIG', `${where} ${reason}; fix the path or remove the seed key`, { cause: err });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new ConstellationError('INVALID_CONFIG', `${where} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    try {
      checkDocument(site, site.id, doc);
    } catch (err) {
      if (!isConstellationError(err)) throw err;
      throw new ConstellationError('INVALID_CONFIG', `${where} is not a valid capability document: ${err.message}`, { cause: err, violations: err.violations });
    }
    seeds.set(site.id, doc);
  }
  return seeds;
}

/** Register every configured site and publish its seed where the site has no document yet. */
export async function registerConfiguredSites(pool: pg.Pool, config: Config, publisher: Publisher, seeds?: Seeds): Promise<{ seeded: string[] }> {
  const checked = seeds ?? (await loadSeeds(config));
  for (const site of config.sites) {
    await upsertConfiguredSite(pool, { id: site.id, name: site.name, platform: site.adapter, url: site.url, location: site.location });
  }
  const advertised = await sitesWithDocuments(pool);
  const seeded: string[] = [];
  for (const [siteId, doc] of checked) {
    if (advertised.has(siteId)) continue;
    await publisher.publish(siteId, doc, 'seed');
    seeded.push(siteId);
  }
  return { seeded };
}
