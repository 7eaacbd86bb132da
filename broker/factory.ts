/** Building the broker's services once, from a config and an open database. */
import type pg from 'pg';
import type { Config } from './config/config.js';
import { CoverageView } from './services/coverage-view.js';
import { Publisher } from './services/publisher.js';

/** Everything handlers need, built once per broker process. */
export interface Services {
  config: Config;
  pool: pg.Pool;
  databaseKind: 'postgresql' | 'embedded';
  publisher: Publisher;
  coverage: CoverageView;
}

/** Wire the services over `pool`. */
export function createServices(config: Config, pool: pg.Pool, databaseKind: Services['databaseKind']): Services {
  const coverage = new CoverageView();
  // A publish returns only once this process's coverage index shows it.
  const publisher = new Publisher(pool, config, () => coverage.refresh(pool));
  return { config, pool, databaseKind, publisher, coverage };
}
