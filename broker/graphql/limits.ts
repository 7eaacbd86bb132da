/**
 * Every bound a GraphQL request is held to: paging limits of each list field, and the limits
 * of the query guard (size, aliases, directives, static cost, objects built, response bytes).
 */
import { ConstellationError } from '../../registry/model/errors.js';

/** INVALID_ARGUMENT unless `value` is an integer from 0 to `max`. */
export function checkLimit(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new ConstellationError('INVALID_ARGUMENT', `${name} must be an integer from 0 to ${max}, got ${value}`);
  }
}

/**
 * The largest `limit` each list field accepts, by `Type.field` (its default is in
 * schema.graphql; the cost analysis reads both). Defaults are set above what real sites hold
 * (Gaia DR3 has 152 columns, SDSS PhotoObjAll 509; a dataset is at a handful of sites, a bench
 * federation at a few hundred), so a default never silently cuts a real answer short; the
 * maxima let a client page through the largest registry the benches build.
 */
export const LIST_MAX: Readonly<Record<string, number>> = {
  'Query.sites': 10_000,
  'Query.datasets': 100_000,
  'Query.images': 100_000,
  'Query.jobs': 500,
  'Site.harvests': 100,
  'Site.documents': 20,
  'Site.services': 1_000,
  'Site.replicas': 100_000,
  'Site.compute': 1_000,
  'Site.images': 10_000,
  'Dataset.columns': 10_000,
  'Dataset.replicas': 10_000,
  'Replica.columns': 10_000,
  'Job.history': 10_000,
  'Query.threads': 500,
  'Thread.steps': 100_000,
  'ThreadDifferences.steps': 100_000,
};

/**
 * List fields without a limit argument, with the size the cost analysis assumes: what the
 * broker computes itself and bounds by construction (one candidate per site, a few reasons
 * and terms each).
 */
export const LIST_ASSUMED: Readonly<Record<string, number>> = {
  'Plan.candidates': LIST_MAX['Query.sites'],
  'Candidate.reasons': 20,
  'Candidate.terms': 20,
  // A job's plan: one candidate and one verdict per site at most, a verdict's reasons as a Candidate's.
  'JobPlan.candidates': LIST_MAX['Query.sites'],
  'JobPlanRecord.candidates': LIST_MAX['Query.sites'],
  'PlanVerdict.reasons': 20,
  // The caller's own variables, as many as a container job's arguments.
  'SiteContainerJob.env': 256,
  // A thread's strategies: SAME_SITE per site, UPLOAD and BROKER per pair of sites holding each side.
  'ThreadPlan.candidates': 10_000,
  'StrategyCandidate.reasons': 20,
  // One statement per step kind (at most a read, a join or two reads and the match).
  'StrategyCandidate.movement': 3,
};

/** The `limit` of a list field: checked against its maximum in LIST_MAX (INVALID_ARGUMENT otherwise). */
export function listLimit(field: string, limit: number): number {
  checkLimit('limit', limit, LIST_MAX[field]);
  return limit;
}

/**
 * Bounds of one GraphQL request. Why these numbers: real queries (the README's, GraphiQL's
 * introspection, the CLI's pages) are under 4 KB with no more than a few aliases; every attack
 * of issue 9 is far beyond each bound, so each is refused before any parsing or SQL work.
 */
export const QUERY_LIMITS = {
  /** Bytes of query text, checked before it is parsed (parsing 64 KiB takes a few ms). */
  maxBytes: 64 * 1024,
  /** Lexical tokens: the parser gives up past this, whatever the bytes. */
  maxTokens: 20_000,
  /** Aliased fields in the document: batching a few dozen lookups is fine, amplification is not. */
  maxAliases: 100,
  /** Directives (@include, @skip, …) in the document. */
  maxDirectives: 50,
  /**
   * Field selections in the document, fragments counted once: GraphQL's overlap validation
   * compares same-named fields pairwise, so thousands of them would block the event loop.
   */
  maxFields: 1_000,
  /**
   * Static cost: the most objects the answer could hold, each list counted at its limit times
   * its selection. Discovery pages of 1,000 datasets with their replicas' sites, services and
   * columns cost about 1.1×10⁸ at the default limits; the amplification attacks cost 10⁹ and
   * more. What a request really builds is then bounded by maxObjects and maxResponseBytes.
   */
  maxCost: 200_000_000,
  /** Objects the resolvers and loaders may return for one request (~100 MB of rows). */
  maxObjects: 250_000,
  /**
   * Bytes of one GraphQL request body (query and variables); a larger one is refused with 413
   * before it is parsed. A capability document larger than this is published with
   * PUT /sites/:id/capabilities (up to CONSTELLATION_BODY_LIMIT).
   */
  maxBodyBytes: 1024 * 1024,
  /** Bytes of one serialised answer; a larger one is replaced by QUERY_TOO_COSTLY. */
  maxResponseBytes: 32 * 1024 * 1024,
  /**
   * Longest one statement of a request's read may run (PostgreSQL's statement_timeout; the
   * embedded PGlite has no timer to enforce it). Every read is bounded by the limits above, so
   * only a database in trouble gets here; it also ends a statement whose client has left.
   */
  maxStatementMs: 30_000,
} as const;

/**
 * What one stored capability document counts as in the static cost: documents are up to the
 * body limit (16 MB) each, so a request asking for many of them is refused before any is read:
 * with maxCost at most 20 documents per request (one site's whole history, with the site object
 * around them: 20 × 9e6 + 21 stays under 2e8; a second alias does not), and the response cap
 * refuses an answer that still grows too large.
 */
export const DOCUMENT_COST = 9_000_000;
