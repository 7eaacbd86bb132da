/**
 * Staging a result into a user's own space at a site (issue 10, point 5): what every platform's
 * stage writer takes and returns, the rules a target name must follow, and how a refusal is
 * reported. The writers themselves are per platform (sciserver/, canfar/, datalab/ stage.ts).
 */
import type { AdapterContext } from '../registry/model/adapter.js';
import { ConstellationError, invalidArgument, isConstellationError } from '../registry/model/errors.js';
import type { SiteHttp } from './http.js';

/** The serialisation a writer wants the result in. */
export type StageFormat = 'csv' | 'votable';

/** One result to write: already bounded and read whole, so a refused write leaves nothing half-sent. */
export interface StageInput {
  /** The table or file name in the user's space (checked with checkStageName first). */
  name: string;
  format: StageFormat;
  data: Uint8Array;
}

/** Where a result was written, as the job's record keeps it. */
export interface StagedAt {
  site: string;
  /** The platform's own name for the place (MyDB.t, mydb://t, vos://cadc.nrc.ca~vault/user/f.vot). */
  location: string;
  bytes: number;
}

/** A platform's stage writer: one call, the user's credential in `ctx`, over the site's scoped client. */
export interface StageWriter {
  /** The format this platform's target takes for `name` (a table: CSV; a file: by its extension). */
  formatFor(name: string): StageFormat;
  /** The name rule this target applies ('table' or 'file'). */
  readonly nameKind: StageNameKind;
  write(http: SiteHttp, ctx: AdapterContext, input: StageInput): Promise<StagedAt>;
}

/** Targets are tables (CasJobs MyDB, Data Lab mydb) or files (VOSpace). */
export type StageNameKind = 'table' | 'file';

// A plain SQL identifier: nothing to quote, so nothing to inject; 63 is PostgreSQL's limit
// (Data Lab's mydb), well inside SQL Server's 128 (CasJobs).
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
// One path segment of a VOSpace node: no slash (so no traversal and no other user's space),
// no leading dot, no characters URIs or shells treat specially.
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

/**
 * The name when it is safe for a target of this kind; INVALID_ARGUMENT naming `path` (the input
 * field, e.g. "stageTo.name") and the rule otherwise.
 */
export function checkStageName(name: unknown, kind: StageNameKind, path: string): string {
  if (typeof name !== 'string' || name.length === 0) throw invalidArgument(path, 'must be a non-empty name', 'stage-name');
  if (kind === 'table') {
    if (!TABLE_NAME.test(name)) {
      throw invalidArgument(path, `must be a table name of letters, digits and _ starting with a letter (at most 63 characters); "${shown(name)}" is not`, 'stage-table-name');
    }
    return name;
  }
  if (!FILE_NAME.test(name) || name.includes('..')) {
    throw invalidArgument(path, `must be one file name of letters, digits and . _ + - (no "/", no "..", at most 128 characters); "${shown(name)}" is not`, 'stage-file-name');
  }
  return name;
}

/** The file format a file name asks for: .csv is CSV, anything else a VOTable. */
export function fileFormat(name: string): StageFormat {
  return /\.csv$/i.test(name) ? 'csv' : 'votable';
}

/**
 * A failed write as the job's record shows it: a refused credential becomes UPSTREAM_AUTH naming
 * the site and what to do (the user's own credential was sent; never another's); every other
 * coded error keeps its code with the site and target named.
 */
export function stageFailure(ctx: AdapterContext, target: string, err: unknown): ConstellationError {
  if (!isConstellationError(err)) return new ConstellationError('UPSTREAM', `site "${ctx.site.id}" failed while staging to ${target}`, { cause: err });
  if (err.kind === 'UPSTREAM_AUTH') {
    return new ConstellationError(
      'UPSTREAM_AUTH',
      `site "${ctx.site.id}" refused your credential when staging to ${target}: link your ${ctx.site.name} credential again (linkSiteCredential) or log in again, then retry (${err.message})`,
      { cause: err },
    );
  }
  if (err.message.includes(`"${ctx.site.id}"`)) return err;
  return new ConstellationError(err.kind, `site "${ctx.site.id}", staging to ${target}: ${err.message}`, { cause: err, violations: err.violations });
}

/** A name as it may appear in a message: bounded, control characters and quotes replaced. */
function shown(name: string): string {
  return name.slice(0, 80).replace(/[\u0000-\u001f\u007f"\\]/g, '?');
}
