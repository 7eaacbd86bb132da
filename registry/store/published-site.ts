/**
 * What one publish left of its site, in the form the in-memory registry view holds it: a view
 * exactly one registry version behind takes the publish from this instead of reading it back.
 */
import type { DatasetRow, SiteRow } from './queries/rows.js';
import type { SiteState } from './site-state.js';

/** A site as one publish left it, with the registry version that publish made (the one before is registryVersion - 1). */
export interface PublishedSite {
  registryVersion: number;
  /** The site's row as readers now read it (sitesByIds). */
  row: SiteRow;
  /** The site before it in the database's order of site ids (ORDER BY id), null when it is first. */
  before: string | null;
  /** False when none of the site's services, replicas, columns, coverage, compute or images was written (its rows_version did not move). */
  rowsChanged: boolean;
  /** The rows the document stands for: exactly the site's rows now. */
  state: SiteState;
  /** The id of each of the site's replicas, by dataset id. */
  replicaIds: ReadonlyMap<string, number>;
  /** Canonical datasets this publish created or filled in (as they now are), and those it deleted (it let go of their last replica). */
  datasets: { written: readonly DatasetRow[]; deleted: readonly string[] };
}
