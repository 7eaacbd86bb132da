/** A real broker listening on 127.0.0.1 for a test, over a fresh database. */
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildOptions } from '../../broker/app.js';
import type { Config } from '../../broker/config/config.js';
import { freshDatabase, type TestDatabase } from './database.js';

export interface TestBroker {
  app: FastifyInstance;
  url: string;
  db: TestDatabase;
  /** POST a GraphQL query; returns the parsed body and HTTP status. */
  graphql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<{ status: number; data?: T; errors?: GraphQLErrorBody[] }>;
  /** Run the `harvest` mutation for `siteId` (confirming a held one when asked) and return its run record (throws on GraphQL errors). */
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
  const app = await buildApp(config, { logger: false, ...options, database });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    url: address,
    db: database,
    async graphql(query, variables) {
      const res = await fetch(`${address}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, ...((await res.json()) as object) };
    },
    async harvest(siteId, confirm = false) {
      const { data, errors } = await this.graphql<{ harvest: HarvestRunView }>(
        'mutation($siteId: ID!, $confirm: Boolean) { harvest(siteId: $siteId, confirm: $confirm) { outcome errorCode errorMessage durationMs bytes } }', { siteId, confirm });
      if (errors || !data) throw new Error(`harvest of ${siteId} answered ${JSON.stringify(errors)}`);
      return data.harvest;
    },
    async close() {
      await app.close();
      if (!db) await database.close();
    },
  };
}
