/**
 * Running a recognised cross-site positional join (crossmatch-join.ts) for a /tap/sync caller (or an async job, async-thread.ts):
 * a cross-match thread started as the caller, followed to its end, and its result file read
 * back as the query's rows (its columns renamed and ordered as selected, further cones and a
 * strict `<` applied, the separation in degrees, TOP and MAXREC cut) in the format asked for.
 */
import { readVOTable, writeVOTable, type FieldMeta, type Row, type WritableField } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import { ownerOf, type Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import { threadResult } from '../threads/result-stream.js';
import { separationDeg } from '../threads/tiles.js';
import type { CrossSiteJoin } from './crossmatch-join.js';
import { convertTo, type ResponseFormat } from './formats.js';
import { isFinished } from './finished.js';
import type { StoredJoin } from './job-row.js';
import { follow, type Followed, type Warn } from './wait.js';

/** Start the join's cross-match thread as `identity` (the thread is theirs, as their TAP jobs are). */
export function startJoinThread(services: Services, join: CrossSiteJoin, identity: Identity): Promise<ThreadRow> {
  return services.threads.start(ownerOf(identity), identity, join.input);
}

/** A cross-match thread followed (follow, wait.ts): this broker's changes to it, and it read again (another broker may have taken it over). */
export function followedThread(services: Services, thread: ThreadRow, warn: Warn): Followed<ThreadRow> {
  return {
    read: () => services.threads.get(thread.id, thread.owner),
    subscribe: (seen) => services.threads.onUpdate((changed) => changed.id === thread.id && seen(changed)),
    onReadError: (err) => warn(err, `reading thread ${thread.id} again while waiting for it failed`),
  };
}

/** The thread once it has ended, or as it is when `timeoutMs` runs out or `signal` aborts. */
export function waitForThread(services: Services, thread: ThreadRow, timeoutMs: number, warn: Warn, signal?: AbortSignal): Promise<ThreadRow> {
  return follow(thread, followedThread(services, thread, warn), (t) => isFinished(t.state), timeoutMs, signal);
}

/** A COMPLETED thread's result as the join's rows, in `format` (OVERFLOW when MAXREC cut it). */
export async function joinAnswer(thread: ThreadRow, join: StoredJoin, format: ResponseFormat, maxrec: number): Promise<{ contentType: string; body: AsyncIterable<Uint8Array> }> {
  const stored = await threadResult(thread, 'votable');
  const events = readVOTable(stored.body)[Symbol.asyncIterator]();
  let fields: FieldMeta[] | undefined;
  while (!fields) {
    const next = await events.next();
    if (next.done) throw new ConstellationError('INTERNAL', `the result of thread ${thread.id} has no table`);
    if (next.value.type === 'table' && next.value.table.index === 0) fields = next.value.table.fields;
  }
  const out: WritableField[] = join.outputs.map((o) =>
    o.from === 'sep'
      ? { name: o.name, datatype: 'double', unit: 'deg', ucd: 'pos.angDistance', description: 'angular separation of the matched positions' }
      : { ...plainField(fields![o.index]), name: o.name },
  );
  const limit = Math.min(join.top ?? Infinity, maxrec);
  // TOP is the query's own bound; only a cut by MAXREC is an OVERFLOW (TAP 1.1, DALI).
  const overflowAt = maxrec <= (join.top ?? Infinity) ? maxrec : Infinity;
  let overflow = false;
  const radius = join.input.radiusArcsec;
  const rows = async function* (): AsyncIterable<Row> {
    let n = 0;
    try {
      for (;;) {
        const next = await events.next();
        if (next.done) return;
        if (next.value.type !== 'rows' || next.value.table !== 0) continue;
        for (const r of next.value.rows) {
          const sep = Number(r[join.sepIndex]);
          if (join.strict && !(sep < radius)) continue;
          if (!join.filters.every((f) => inCone(r[f.raIndex], r[f.decIndex], f.cone))) continue;
          if (n >= limit) {
            if (n >= overflowAt) overflow = true;
            return;
          }
          n++;
          yield join.outputs.map((o) => (o.from === 'sep' ? sep / 3600 : r[o.index]));
        }
      }
    } finally {
      await events.return?.();
    }
  };
  const votable = writeVOTable({ name: 'crossmatch', fields: out }, rows(), {
    serialization: format.serialization ?? 'TABLEDATA',
    infos: [{ name: 'QUERY_STATUS', value: 'OK' }, { name: 'thread', value: thread.id }],
    trailingInfos: () => (overflow ? [{ name: 'QUERY_STATUS', value: 'OVERFLOW' }] : []),
  });
  return { contentType: format.contentType, body: format.kind === 'votable' ? votable : convertTo(votable, format) };
}

function inCone(ra: unknown, dec: unknown, cone: { ra: number; dec: number; radiusDeg: number }): boolean {
  return typeof ra === 'number' && typeof dec === 'number' && separationDeg(cone.ra, cone.dec, ra, dec) <= cone.radiusDeg;
}

/** A field's type and description, without ID or references. */
function plainField(f: FieldMeta): WritableField {
  return {
    name: f.name, datatype: f.datatype,
    ...(f.arraysize !== undefined ? { arraysize: f.arraysize } : {}),
    ...(f.unit !== undefined ? { unit: f.unit } : {}),
    ...(f.ucd !== undefined ? { ucd: f.ucd } : {}),
    ...(f.xtype !== undefined ? { xtype: f.xtype } : {}),
    ...(f.description !== undefined ? { description: f.description } : {}),
  };
}
