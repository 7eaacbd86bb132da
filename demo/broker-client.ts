/** Talking to a broker the demo (or a bench) started as a child process: its GraphQL API, its readiness, a free port for it. */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Ask the broker's GraphQL API; throws with the errors' codes and messages. */
export async function graphql<T>(base: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors?.length || body.data === undefined) {
    throw new Error(`GraphQL: ${(body.errors ?? []).map((e) => `${e.extensions?.code ?? ''} ${e.message}`).join('; ') || `HTTP ${res.status}`}`);
  }
  return body.data;
}

/** Wait for the broker's /readyz, failing when the process exits first. */
export async function ready(base: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the broker exited with code ${child.exitCode} before it was ready`);
    const res = await fetch(`${base}/readyz`).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the broker was not ready within 3 minutes');
}

/** A port nobody listens on now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || address === null) throw new Error('no free port');
  return address.port;
}
