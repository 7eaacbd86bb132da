/** Queries over services, compute pools and images. */
import type { Queryable } from '../db.js';
import type { ComputeRow, ImageRow, ServiceRow } from './rows.js';

/** Services of these sites. */
export async function servicesBySites(db: Queryable, siteIds: readonly string[]): Promise<ServiceRow[]> {
  return (await db.query<ServiceRow>(
    `SELECT site_id AS "siteId", id, type, url, standard_id AS "standardId", title, upload, async, max_rec AS "maxRec",
       upload_limit_bytes AS "uploadLimitBytes", languages, formats, auth
     FROM services WHERE site_id = ANY($1) ORDER BY site_id, id`, [siteIds])).rows;
}

/** Compute pools of these sites. */
export async function computeBySites(db: Queryable, siteIds: readonly string[]): Promise<ComputeRow[]> {
  return (await db.query<ComputeRow>(
    `SELECT site_id AS "siteId", id, kind, service_id AS "serviceId", cores, memory_gb AS "memoryGb", gpus, free_cores AS "freeCores",
       free_memory_gb AS "freeMemoryGb", queue_wait_s AS "queueWaitS", max_walltime_s AS "maxWalltimeS",
       max_cores_per_job AS "maxCoresPerJob", max_memory_gb_per_job AS "maxMemoryGbPerJob"
     FROM compute_pools WHERE site_id = ANY($1) ORDER BY site_id, id`, [siteIds])).rows;
}

const IMAGE_COLUMNS = `site_id AS "siteId", ref, digest, arch, types, software, compute`;

/** Images of these sites. */
export async function imagesBySites(db: Queryable, siteIds: readonly string[]): Promise<ImageRow[]> {
  return (await db.query<ImageRow>(`SELECT ${IMAGE_COLUMNS} FROM images WHERE site_id = ANY($1) ORDER BY site_id, ref`, [siteIds])).rows;
}

/** What an image search may constrain; every given field must hold. */
export interface ImageSearch {
  /** Case-insensitive substring of the image reference. */
  name?: string;
  /** Case-insensitive substring of one of the image's software entries ("astropy" matches "astropy=6.1"). */
  software?: string;
  /** A session type the image supports (headless, notebook, ...). */
  type?: string;
  arch?: string;
  digest?: string;
  site?: string;
  limit: number;
}

/** Images matching `search`, ordered by reference then site. */
export async function searchImages(db: Queryable, search: ImageSearch): Promise<ImageRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const like = (s: string) => `%${s.replace(/[\\%_]/g, (m) => '\\' + m)}%`;
  if (search.name) where.push(`ref ILIKE ${param(like(search.name))}`);
  if (search.software) where.push(`EXISTS (SELECT 1 FROM unnest(software) s WHERE s ILIKE ${param(like(search.software))})`);
  if (search.type) where.push(`${param(search.type)} = ANY(types)`);
  if (search.arch) where.push(`arch = ${param(search.arch)}`);
  if (search.digest) where.push(`digest = ${param(search.digest)}`);
  if (search.site) where.push(`site_id = ${param(search.site)}`);
  const sql = `SELECT ${IMAGE_COLUMNS} FROM images ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
    ORDER BY ref, site_id LIMIT ${param(search.limit)}`;
  return (await db.query<ImageRow>(sql, params)).rows;
}
