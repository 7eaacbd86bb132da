/**
 * The embedded database's own process (forked by ./embedded.ts for `constellation serve`):
 * PostgreSQL in WebAssembly runs each statement synchronously on its event loop and keeps a
 * few hundred MB of WASM memory, so it gets a process of its own rather than the broker's.
 * Tells its parent the port over IPC; stops cleanly when asked, or when the parent is gone.
 */
import { servePglite } from './pglite-server.js';

/** IPC messages between ./embedded.ts and this process. */
export type HostMessage = { ready: { port: number } } | { failed: string };

const pgdata = process.argv[2];
if (!pgdata || !process.send) {
  console.error('embedded-host: run by the broker (forked with an IPC channel and the pgdata path)');
  process.exit(2);
}
const send = (m: HostMessage) => process.send!(m);

try {
  const server = await servePglite(pgdata);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await server.close();
      process.exit(0);
    } catch (err) {
      console.error(`embedded-host: the database did not shut down cleanly: ${(err as Error).message}`);
      process.exit(1);
    }
  };
  process.on('message', (m) => {
    if (m === 'stop') void stop();
  });
  // The parent died (or closed the channel): nobody will ask, so stop now.
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  // Ctrl-C reaches the whole process group: the broker stops this process once its own
  // connections are closed (or by going away), so the signal itself changes nothing here.
  process.on('SIGINT', () => undefined);
  send({ ready: { port: server.port } });
} catch (err) {
  send({ failed: (err as Error).message });
  process.exit(1);
}
