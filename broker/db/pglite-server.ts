/**
 * One PGlite cluster served over the PostgreSQL wire protocol (pglite-socket) on 127.0.0.1, in
 * whichever process calls it: the broker's own (tests, one-off CLI commands) or a host process
 * of its own (`constellation serve`, ./embedded-host.ts).
 */
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { copyTemplate } from './pglite-template.js';

/** How long a server waits for connected processes to disconnect before it stops. */
const DRAIN_MS = 30_000;

/** A running server: its port, and a clean stop (connections drained, the cluster shut down). */
export interface PgliteServer {
  port: number;
  close(): Promise<void>;
}

/** Open (or create from the install-time template) the cluster in `pgdata` and serve it. */
export async function servePglite(pgdata: string): Promise<PgliteServer> {
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    // A new data directory starts from the install-time template rather than a slow initdb.
    if (!(await stat(pgdata).catch(() => null))) await copyTemplate(pgdata);
    db = await PGlite.create(pgdata);
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 100 });
    await server.start();
  } catch (err) {
    await server?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    throw err;
  }
  const [openDb, openServer] = [db, server];
  let closing: Promise<void> | undefined;
  return {
    port: portOf(openServer),
    close: () =>
      (closing ??= (async () => {
        // Other brokers may have joined this server: let their connections finish first.
        const drainUntil = Date.now() + DRAIN_MS;
        while (openServer.getStats().activeConnections > 0 && Date.now() < drainUntil) await sleep(100);
        await openServer.stop();
        await openDb.close();
      })()),
  };
}

function portOf(server: PGLiteSocketServer): number {
  const conn = server.getServerConn();
  const port = Number(conn.slice(conn.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`unexpected pglite-socket address "${conn}"`);
  return port;
}
