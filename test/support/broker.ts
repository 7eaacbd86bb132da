/** A real broker listening on 127.0.0.1 for a test, over a fresh database. */
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildOptions } from '../../broker/app.js';
import type { Config } from '../../broker/config/config.js';
import { freshDatabase, type TestDatabase } from './database.js';
import { logSink } from './log-capture.js';

export interface TestBroker {
  app: FastifyInstance;
  url: string;
  db: TestDatabase;
  /** POST a GraphQL query (with `headers` added, e.g. a bearer token); returns the parsed body and HTTP status. */
  graphql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; data?: T; errors?: GraphQLErrorBody[] }>;
  /** Harvest `siteId` now as the local CLI does (confirming a held one when asked) and return its run record. */
  harvest(siteId: string, confirm?: boolean): Promise<HarvestRunView>;
  close(): Promise<void>;
}

/** The fields of a HarvestRun that tests look at. */
export interface HarvestRunView {
  outcome: string;
  errorCode: string | null;
  errorMessage: string | null;
  durationMs: number;
  bytes: number | null;
}

export interface GraphQLErrorBody {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; violations?: { path: string; rule: string; message: string }[] };
}

/** Start a broker for `config` on a fresh database (or on `db` when given). */
export async function startBroker(config: Config, db?: TestDatabase, options: Omit<BuildOptions, 'database'> = {}): Promise<TestBroker> {
  const database = db ?? (await freshDatabase());
  // Brokers log at debug into the file's capture, which is checked for secrets after the file.
  const app = await buildApp({ ...config, logLevel: 'debug' }, { logStream: logSink, ...options, database });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    url: address,
    db: database,
    async graphql(query, variables, headers = {}) {
      const res = await fetch(`${address}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, ...((await res.json()) as object) };
    },
    async harvest(siteId, confirm = false) {
      // The local operator's path (as `constellation harvest`): harvesting through the API needs an admin.
      const run = await app.services.harvester.harvest(siteId, 'cli', { confirm });
      return { outcome: run.outcome, errorCode: run.errorCode, errorMessage: run.errorMessage, durationMs: run.durationMs ?? 0, bytes: run.bytes };
    },
    async close() {
      await app.close();
      if (!db) await database.close();
    },
  };
}
