/**
 * `stageTo: {site, name}` on a query or container job: checked when the job is submitted (a
 * known site whose platform has a user space the broker can write, and a safe name for it),
 * and read back from the job's stored request when the job completes.
 */
import { canfarStageWriter } from '../../adapters/canfar/stage.js';
import { datalabStageWriter } from '../../adapters/datalab/stage.js';
import { sciserverStageWriter } from '../../adapters/sciserver/stage.js';
import { checkStageName, type StageWriter } from '../../adapters/staging.js';
import type { Platform } from '../../registry/model/capability.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';

/** Where a job's result is to go: a site and a table or file name in the user's space there. */
export interface StageTarget {
  site: string;
  name: string;
}

/** The platforms with a user space the broker writes to, and how. */
export const STAGE_WRITERS: Readonly<Partial<Record<Platform, StageWriter>>> = {
  sciserver: sciserverStageWriter,
  canfar: canfarStageWriter,
  datalab: datalabStageWriter,
};

/** What target checks need to know of a site. */
export interface StageSiteInfo {
  id: string;
  adapter: Platform;
}

/** The writer for a platform; INVALID_ARGUMENT naming `path` when it has none. */
export function stageWriterFor(site: StageSiteInfo, path = 'stageTo.site'): StageWriter {
  const writer = STAGE_WRITERS[site.adapter];
  if (!writer) {
    const which = Object.keys(STAGE_WRITERS).join(', ');
    throw invalidArgument(path, `names site "${site.id}" (${site.adapter}), which has no user space the broker can write to; staging goes to ${which} sites`, 'stage-site');
  }
  return writer;
}

/**
 * The checked target of a submit's `stageTo` (`path` names the input field), or undefined when
 * none was asked for. The site must be one of `sites`; the name must suit its target kind.
 */
export function checkStageTarget(input: unknown, sites: readonly StageSiteInfo[], path = 'stageTo'): StageTarget | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) throw invalidArgument(path, 'must be an object {site, name}', 'stage-target');
  const site = 'site' in input ? input.site : undefined;
  const name = 'name' in input ? input.name : undefined;
  if (typeof site !== 'string' || site === '') throw invalidArgument(`${path}.site`, 'must be a site id', 'stage-site');
  const known = sites.find((s) => s.id === site);
  if (!known) throw new ConstellationError('UNKNOWN_SITE', `${path}.site names site "${site.slice(0, 80).replace(/[^\w.-]/g, '?')}", which is not in the federation`, { violations: [{ path: `${path}.site`, rule: 'known-site', message: 'no such site' }] });
  const writer = stageWriterFor(known, `${path}.site`);
  return { site, name: checkStageName(name, writer.nameKind, `${path}.name`) };
}

/** The target stored in a job's request (`request.stageTo`), parsed once here; undefined when there is none. */
export function stageTargetOf(request: unknown): StageTarget | undefined {
  if (request === null || typeof request !== 'object' || !('stageTo' in request)) return undefined;
  const t = request.stageTo;
  if (t === null || typeof t !== 'object' || !('site' in t) || !('name' in t)) return undefined;
  return typeof t.site === 'string' && typeof t.name === 'string' ? { site: t.site, name: t.name } : undefined;
}
