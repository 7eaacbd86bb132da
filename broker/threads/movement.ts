/**
 * Where a cross-match's data travels, said plainly (the fast lane, issue 11 point 7): per step
 * kind of a strategy candidate, and per step of a running thread, whether the data is read at
 * the caller's own site (0 bytes moved) or travels from elsewhere, and how much. Without a
 * caller site, data read at a site travels to the broker.
 */
import type { StrategyCandidateRecord, ThreadStepKind } from '../../registry/model/thread.js';

/** One statement about the data of one step kind of a candidate. */
export interface DataMovement {
  step: ThreadStepKind;
  /** The site it runs at (null: the broker's own match). */
  site: string | null;
  side: 'left' | 'right' | null;
  /** Whether it runs at the caller's site; null when the caller named no site. */
  local: boolean | null;
  /** Estimated bytes that cross the WAN for it (0 when local). */
  bytes: number;
  message: string;
}

/** The data movement of every step kind of a candidate, from its estimated bytes. */
export function candidateMovement(c: StrategyCandidateRecord, callerSite: string | null): DataMovement[] {
  const out: DataMovement[] = [];
  const say = (step: ThreadStepKind, site: string | null, side: 'left' | 'right' | null, bytes: number, what: string) => {
    out.push({ step, site, side, local: localTo(site, callerSite), bytes, message: sentence(what, site, bytes, callerSite, step === 'upload-join') });
  };
  const { left, right } = c.sites;
  if (c.strategy === 'SAME_SITE') {
    if (left !== null) say('site-join', left, null, c.bytes.pairs, 'the join and its pairs');
  } else if (c.strategy === 'UPLOAD' && c.upload !== null) {
    const side = c.upload.side;
    say('site-read', c.upload.from, side, side === 'left' ? c.bytes.fetchedLeft : c.bytes.fetchedRight, `the ${side} rows read for the upload`);
    say('upload-join', c.upload.to, null, c.bytes.uploaded + c.bytes.pairs, 'the uploaded rows and the pairs of the upload join');
  } else if (c.strategy === 'BROKER') {
    if (left !== null) say('site-read', left, 'left', c.bytes.fetchedLeft, 'the left rows');
    if (right !== null) say('site-read', right, 'right', c.bytes.fetchedRight, 'the right rows (widened by the radius)');
    out.push({ step: 'match', site: null, side: null, local: callerSite === null ? null : true, bytes: 0, message: 'matched in the broker: nothing more is read from a site' });
  }
  return out;
}

/**
 * What one step of a thread moves: local or not, and a sentence with its bytes (the broker's
 * `bytesIn` from the site plus `bytesOut` uploaded to it, once known).
 */
export function stepMovement(kind: ThreadStepKind, site: string | null, bytesIn: number | null, bytesOut: number | null, callerSite: string | null): { local: boolean | null; movement: string } {
  if (kind === 'match' || site === null) return { local: callerSite === null ? null : true, movement: 'matched in the broker: nothing is read from a site' };
  const local = localTo(site, callerSite);
  if (local === true) return { local, movement: `runs at your site ${site}: its data stays there (0 bytes moved)` };
  const to = kind === 'upload-join' ? 'between it and' : 'to';
  const amount = bytesIn === null && bytesOut === null ? 'its data (not yet read)' : `${Math.round((bytesIn ?? 0) + (bytesOut ?? 0)).toLocaleString('en-US')} bytes`;
  return { local, movement: callerSite === null ? `runs at ${site}: ${amount} travel ${to} the broker` : `runs at ${site}: ${amount} travel ${kind === 'upload-join' ? `between ${site} and` : `from ${site} to`} your site ${callerSite}` };
}

function localTo(site: string | null, callerSite: string | null): boolean | null {
  return callerSite === null ? null : site === callerSite;
}

/** `both`: data goes both ways (rows uploaded to the site, pairs back). */
function sentence(what: string, site: string | null, bytes: number, callerSite: string | null, both: boolean): string {
  const amount = `about ${Math.round(bytes).toLocaleString('en-US')} bytes`;
  if (callerSite === null) return `${what} at ${site}: ${amount} travel ${both ? 'between it and' : 'to'} the broker`;
  if (site === callerSite) return `${what} at your site ${site}: read locally, 0 bytes moved`;
  return `${what} at ${site}: ${amount} travel ${both ? `between ${site} and` : `from ${site} to`} your site ${callerSite}`;
}
