/** A free TCP port on 127.0.0.1, for a child process to listen on. */
import { createServer } from 'node:net';

/** Ask the kernel for a free port and release it (a child listens there next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
