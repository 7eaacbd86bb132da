/** UWS job documents: UWS 1.0, 1.1 (same namespace, version="1.1") and legacy v1.0rc3. */
import type { SiteJobStatus } from '../../../registry/model/adapter.js';
import { NS, isUwsNs } from '../xml/namespaces.js';
import { parseInstant, type Instant } from '../xml/datetime.js';
import { locate, malformed, parseXml, wrongRoot, type XmlElement } from '../xml/tree.js';
import { XML_MAX_NODES_SMALL } from '../xml/limits.js';
import { parseXsdBoolean, parseXsdInteger, textOf } from '../xml/values.js';
import { mapUwsPhase, parseUwsPhase, type UwsPhase } from './phases.js';

/** A job parameter. */
export interface UwsParameter {
  id: string;
  /** Trimmed text; "" for an empty or nil parameter. */
  value: string;
  /** The value is a URL to fetch the parameter from. */
  byReference: boolean;
  /** UWS 1.1: the parameter was sent in a POST body. */
  isPost: boolean;
}

/** A job result. */
export interface UwsResult {
  id: string;
  /** xlink:href with entities (&amp;) decoded. */
  href?: string;
  size?: number;
  mimeType?: string;
}

/** The errorSummary of a failed job. */
export interface UwsErrorSummary {
  type: 'fatal' | 'transient';
  /** True when {jobUrl}/error holds a longer report. */
  hasDetail: boolean;
  message: string;
}

/** A parsed UWS job. */
export interface UwsJob {
  /** "1.0", "1.1" or "1.0rc3" (legacy namespace). */
  version: string;
  jobId: string;
  runId?: string;
  ownerId?: string;
  phase: UwsPhase;
  /** The phase word as the service wrote it. */
  rawPhase: string;
  quote?: Instant;
  creationTime?: Instant;
  startTime?: Instant;
  endTime?: Instant;
  /** Seconds; 0 means unlimited. */
  executionDuration?: number;
  destruction?: Instant;
  parameters: UwsParameter[];
  results: UwsResult[];
  errorSummary?: UwsErrorSummary;
  /** The jobInfo content as raw XML text, trimmed. */
  jobInfo?: string;
  /** Simple elements outside UWS (ESA TAP+ adds locationId and name), by local name. */
  extra: Record<string, string>;
}

const WHAT = 'UWS job document';

const KNOWN = new Set([
  'jobId', 'runId', 'ownerId', 'phase', 'quote', 'creationTime', 'startTime', 'endTime', 'executionDuration',
  'destruction', 'parameters', 'results', 'errorSummary', 'jobInfo',
]);

// UWS children are qualified; a writer that drops the namespace is still understood.
function uwsNsOrNone(uri: string): boolean {
  return uri === '' || isUwsNs(uri);
}

/** A UWS child element by local name. */
export function uwsChild(el: XmlElement, local: string): XmlElement | undefined {
  return el.child(local, uwsNsOrNone);
}

function instant(el: XmlElement | undefined): Instant | undefined {
  const t = textOf(el);
  return t === undefined ? undefined : parseInstant(t);
}

/** The UWS version a root element declares. */
export function uwsVersion(root: XmlElement): string {
  if (root.uri === NS.uwsRc3) return '1.0rc3';
  return root.attr('version')?.trim() || '1.0';
}

function parseParameter(el: XmlElement): UwsParameter {
  return {
    id: el.attr('id')?.trim() ?? '',
    value: el.isNil ? '' : el.trimmedText,
    byReference: parseXsdBoolean(el.attr('byReference')) ?? false,
    isPost: parseXsdBoolean(el.attr('isPost')) ?? false,
  };
}

function parseResult(el: XmlElement): UwsResult {
  const r: UwsResult = { id: el.attr('id')?.trim() ?? '' };
  const href = el.attr('href', NS.xlink)?.trim();
  const size = parseXsdInteger(el.attr('size'));
  const mime = el.attr('mime-type')?.trim();
  if (href !== undefined && href !== '') r.href = href;
  if (size !== undefined) r.size = size;
  if (mime !== undefined && mime !== '') r.mimeType = mime;
  return r;
}

function parseErrorSummary(el: XmlElement | undefined): UwsErrorSummary | undefined {
  if (el === undefined || el.isNil) return undefined;
  const type = el.attr('type')?.trim().toLowerCase() === 'transient' ? 'transient' : 'fatal';
  return {
    type,
    hasDetail: parseXsdBoolean(el.attr('hasDetail')) ?? false,
    message: textOf(uwsChild(el, 'message')) ?? '',
  };
}

/** Reads a `uws:job` element (a job document's root, or one embedded in an ESA job list). */
export function readUwsJob(el: XmlElement, version: string, what = WHAT): UwsJob {
  const jobIdEl = uwsChild(el, 'jobId');
  const jobId = textOf(jobIdEl);
  if (jobId === undefined) throw malformed(what, `job without <jobId> at ${locate(el)}`, { path: locate(el), rule: 'jobId' });
  const phaseEl = uwsChild(el, 'phase');
  const rawPhase = textOf(phaseEl);
  if (rawPhase === undefined) throw malformed(what, `job ${jobId} has no <phase>`, { path: locate(el), rule: 'phase' });

  const extra: Record<string, string> = {};
  for (const c of el.children) {
    if (uwsNsOrNone(c.uri) && KNOWN.has(c.local)) continue;
    if (c.children.length === 0 && !c.isNil) extra[c.local] = c.trimmedText;
  }
  const job: UwsJob = {
    version,
    jobId,
    phase: parseUwsPhase(rawPhase),
    rawPhase,
    parameters: (uwsChild(el, 'parameters')?.childrenNamed('parameter', uwsNsOrNone) ?? []).map(parseParameter),
    results: (uwsChild(el, 'results')?.childrenNamed('result', uwsNsOrNone) ?? []).map(parseResult),
    extra,
  };
  const runId = textOf(uwsChild(el, 'runId'));
  const ownerId = textOf(uwsChild(el, 'ownerId'));
  if (runId !== undefined) job.runId = runId;
  if (ownerId !== undefined) job.ownerId = ownerId;
  for (const key of ['quote', 'creationTime', 'startTime', 'endTime', 'destruction'] as const) {
    const v = instant(uwsChild(el, key));
    if (v !== undefined) job[key] = v;
  }
  const duration = parseXsdInteger(textOf(uwsChild(el, 'executionDuration')));
  if (duration !== undefined) job.executionDuration = duration;
  const errorSummary = parseErrorSummary(uwsChild(el, 'errorSummary'));
  if (errorSummary !== undefined) job.errorSummary = errorSummary;
  const info = uwsChild(el, 'jobInfo');
  if (info !== undefined && !info.isNil) {
    const raw = info.innerXml().trim();
    if (raw !== '') job.jobInfo = raw;
  }
  return job;
}

/** Parses a UWS job document (root `uws:job`). */
export function parseUwsJob(input: string | Uint8Array): UwsJob {
  const root = parseXml(input, WHAT, { maxNodes: XML_MAX_NODES_SMALL });
  if (root.local !== 'job' || !isUwsNs(root.uri)) {
    const hint = root.local === 'jobs' && isUwsNs(root.uri) ? 'this is a job list, read it with parseUwsJobList' : undefined;
    throw wrongRoot(WHAT, `<uws:job> in namespace ${NS.uws} or ${NS.uwsRc3}`, root, hint);
  }
  return readUwsJob(root, uwsVersion(root));
}

/**
 * The broker's view of a job: state, the site's phase word, the error message and the URL of
 * the result to fetch (the one with id "result", as TAP names it, else the first).
 */
export function uwsJobStatus(job: UwsJob): SiteJobStatus {
  const status: SiteJobStatus = { state: mapUwsPhase(job.phase), sitePhase: job.rawPhase };
  if (job.errorSummary !== undefined && job.errorSummary.message !== '') status.error = job.errorSummary.message;
  else if (job.phase === 'ARCHIVED') status.error = 'the site has deleted the results of this job (UWS phase ARCHIVED)';
  else if (status.state === 'ERROR') status.error = `job ${job.jobId} failed (UWS phase ${job.rawPhase})`;
  const result = job.results.find((r) => r.id === 'result' && r.href !== undefined) ?? job.results.find((r) => r.href !== undefined);
  if (result?.href !== undefined && job.phase === 'COMPLETED') status.resultUrl = result.href;
  return status;
}
