/**
 * Install-time step (`npm ci` → `prepare`): build the embedded database template. Best effort:
 * without it a new data directory runs initdb instead, slower but the same.
 */
import { buildTemplate } from './pglite-template.js';

const started = Date.now();
buildTemplate().then(
  (dir) => process.stdout.write(`constellation: embedded database template built in ${Date.now() - started} ms (${dir})\n`),
  (err: unknown) => process.stderr.write(`constellation: could not build the embedded database template (${(err as Error).message}); new data directories will run initdb instead\n`),
);
