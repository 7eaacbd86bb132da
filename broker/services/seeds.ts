/** Loading the shipped seed documents of configured sites that have advertised nothing yet. */
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { ConstellationError } from '../../registry/model/errors.js';
import { sitesWithDocuments, upsertConfiguredSite } from '../../registry/store/queries/sites.js';
import type { Config } from '../config/config.js';
import type { Publisher } from './publisher.js';

/** Register every configured site and publish its seed where the site has no document yet. */
export async function registerConfiguredSites(pool: pg.Pool, config: Config, publisher: Publisher): Promise<{ seeded: string[] }> {
  for (const site of config.sites) {
    await upsertConfiguredSite(pool, { id: site.id, name: site.name, platform: site.adapter, url: site.url, location: site.location });
  }
  const advertised = await sitesWithDocuments(pool);
  const seeded: string[] = [];
  for (const site of config.sites) {
    if (!site.seed || advertised.has(site.id)) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(site.seed, 'utf8'));
    } catch (err) {
      throw new ConstellationError('INVALID_CONFIG', `seed of site "${site.id}" (${site.seed}) is not readable JSON: ${(err as Error).message}`, { cause: err });
    }
    try {
      await publisher.publish(site.id, doc, 'seed');
    } catch (err) {
      const e = err as ConstellationError;
      throw new ConstellationError('INVALID_CONFIG', `seed of site "${site.id}" (${site.seed}) is invalid: ${e.message}`, { cause: err, violations: e.violations });
    }
    seeded.push(site.id);
  }
  return { seeded };
}
