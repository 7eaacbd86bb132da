/** UWS job lists: standard `uws:jobs` of `uws:jobref`, and ESA TAP+'s list of full `uws:job`s. */
import { NS, isUwsNs } from '../xml/namespaces.js';
import { parseInstant, type Instant } from '../xml/datetime.js';
import { parseXml, parseXmlAsync, wrongRoot, type XmlElement } from '../xml/tree.js';
import { textOf } from '../xml/values.js';
import { readUwsJob, uwsChild, uwsVersion, type UwsJob } from './job.js';
import { parseUwsPhase, type UwsPhase } from './phases.js';

/** One entry of a job list. */
export interface UwsJobRef {
  id: string;
  /** xlink:href of the job; absent for ESA's embedded jobs. */
  href?: string;
  phase: UwsPhase;
  rawPhase: string;
  runId?: string;
  ownerId?: string;
  creationTime?: Instant;
  /** The whole job, when the list embeds full jobs (ESA TAP+). */
  job?: UwsJob;
}

/** A parsed job list. */
export interface UwsJobList {
  version: string;
  jobs: UwsJobRef[];
}

/** A UWS document of either kind. */
export type UwsDocument = { kind: 'job'; job: UwsJob } | { kind: 'jobs'; list: UwsJobList };

const WHAT = 'UWS job list';

function readJobRef(el: XmlElement): UwsJobRef {
  const rawPhase = textOf(uwsChild(el, 'phase')) ?? 'UNKNOWN';
  const ref: UwsJobRef = { id: el.attr('id')?.trim() ?? '', phase: parseUwsPhase(rawPhase), rawPhase };
  const href = el.attr('href', NS.xlink)?.trim();
  if (href !== undefined && href !== '') ref.href = href;
  const runId = textOf(uwsChild(el, 'runId'));
  const ownerId = textOf(uwsChild(el, 'ownerId'));
  const creation = textOf(uwsChild(el, 'creationTime'));
  if (runId !== undefined) ref.runId = runId;
  if (ownerId !== undefined) ref.ownerId = ownerId;
  if (creation !== undefined) ref.creationTime = parseInstant(creation);
  return ref;
}

function refFromJob(job: UwsJob): UwsJobRef {
  const ref: UwsJobRef = { id: job.jobId, phase: job.phase, rawPhase: job.rawPhase, job };
  if (job.runId !== undefined) ref.runId = job.runId;
  if (job.ownerId !== undefined) ref.ownerId = job.ownerId;
  if (job.creationTime !== undefined) ref.creationTime = job.creationTime;
  return ref;
}

function readJobList(root: XmlElement): UwsJobList {
  const version = uwsVersion(root);
  const jobs: UwsJobRef[] = [];
  for (const c of root.children) {
    if (!(c.uri === '' || isUwsNs(c.uri))) continue;
    if (c.local === 'jobref') jobs.push(readJobRef(c));
    else if (c.local === 'job') jobs.push(refFromJob(readUwsJob(c, version, WHAT)));
  }
  return { version, jobs };
}

/** Parses a UWS job list (root `uws:jobs`), standard or ESA-style. */
export function parseUwsJobList(input: string | Uint8Array): UwsJobList {
  return readJobList(jobListRoot(parseXml(input, WHAT)));
}

/** {@link parseUwsJobList} with the XML parsed in slices: a site's job list may be large (it is read when a broker resumes a submit). */
export async function parseUwsJobListAsync(input: string | Uint8Array): Promise<UwsJobList> {
  return readJobList(jobListRoot(await parseXmlAsync(input, WHAT)));
}

function jobListRoot(root: XmlElement): XmlElement {
  if (root.local !== 'jobs' || !isUwsNs(root.uri)) {
    throw wrongRoot(WHAT, `<uws:jobs> in namespace ${NS.uws} or ${NS.uwsRc3}`, root);
  }
  return root;
}

/** Parses either UWS document kind, telling which it was. */
export function parseUwsDocument(input: string | Uint8Array): UwsDocument {
  const what = 'UWS document';
  const root = parseXml(input, what);
  if (isUwsNs(root.uri) && root.local === 'job') return { kind: 'job', job: readUwsJob(root, uwsVersion(root)) };
  if (isUwsNs(root.uri) && root.local === 'jobs') return { kind: 'jobs', list: readJobList(root) };
  throw wrongRoot(what, `<uws:job> or <uws:jobs> in namespace ${NS.uws} or ${NS.uwsRc3}`, root);
}
