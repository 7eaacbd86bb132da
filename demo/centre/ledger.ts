/** What a demo centre answered: every query with its text, rows and bytes, so a demo can report bytes moved. */

/** One answered (or refused) query. */
export interface QueryRecord {
  /** Sequence number at this centre, from 1. */
  seq: number;
  mode: 'sync' | 'async';
  adql: string;
  /** The PostgreSQL it ran as (declination bands added, names respelt); absent when it failed before. */
  sql?: string;
  /** Names of the tables uploaded with it (TAP_UPLOAD.<name>). */
  uploads: string[];
  uploadRows: number;
  /** Bytes the client sent: the request body, uploads included. */
  bytesIn: number;
  rowsOut: number;
  /** Size of the result document. */
  bytesOut: number;
  /** Bytes of result actually sent (an async result fetched twice counts twice). */
  bytesSent: number;
  overflow: boolean;
  durationMs: number;
  /** Why it failed, when it did. */
  error?: string;
  startedAt: string;
}

/** Sums over every query a centre answered. */
export interface LedgerTotals {
  queries: number;
  failed: number;
  rowsOut: number;
  bytesIn: number;
  bytesOut: number;
  bytesSent: number;
}

/** The list of queries a centre answered, in order. */
export class QueryLedger {
  readonly records: QueryRecord[] = [];

  /** Starts a record for a query just received. */
  open(mode: QueryRecord['mode'], adql: string, uploads: string[], bytesIn: number): QueryRecord {
    const record: QueryRecord = {
      seq: this.records.length + 1, mode, adql, uploads, uploadRows: 0, bytesIn, rowsOut: 0, bytesOut: 0, bytesSent: 0, overflow: false, durationMs: 0, startedAt: new Date().toISOString(),
    };
    this.records.push(record);
    return record;
  }

  /** Sums over all records. */
  totals(): LedgerTotals {
    const t: LedgerTotals = { queries: 0, failed: 0, rowsOut: 0, bytesIn: 0, bytesOut: 0, bytesSent: 0 };
    for (const r of this.records) {
      t.queries++;
      if (r.error !== undefined) t.failed++;
      t.rowsOut += r.rowsOut;
      t.bytesIn += r.bytesIn;
      t.bytesOut += r.bytesOut;
      t.bytesSent += r.bytesSent;
    }
    return t;
  }

  /** Forgets every record (between two runs of a demo). */
  clear(): void {
    this.records.length = 0;
  }
}
