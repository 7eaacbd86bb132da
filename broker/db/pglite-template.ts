/**
 * A ready-made empty PGlite cluster, built once at install time (`npm ci` runs `prepare`). A new
 * embedded data directory starts as a copy of it instead of running initdb inside WebAssembly,
 * which takes 6–10 s on a 2-core machine against a few hundred milliseconds for the copy.
 */
import { cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { packagePath } from '../../registry/paths.js';

/** Where the template lives: build output, like dist/ itself. */
const TEMPLATE_DIR = packagePath('dist/pglite-template');
const MARKER = 'template.json';

/** The installed PGlite version: a template from another version is never used. */
async function pgliteVersion(): Promise<string> {
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const pkg = JSON.parse(await readFile(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Copy the template into `pgdata` (which must not exist); false when there is no usable template. */
export async function copyTemplate(pgdata: string): Promise<boolean> {
  const marker = await readFile(join(TEMPLATE_DIR, MARKER), 'utf8').then((t) => JSON.parse(t) as { pglite?: string }, () => null);
  if (!marker || marker.pglite !== (await pgliteVersion())) return false;
  // Copy beside the target and rename, so a copy cut short never looks like a cluster.
  const partial = `${pgdata}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await cp(join(TEMPLATE_DIR, 'pgdata'), partial, { recursive: true });
  await rename(partial, pgdata);
  return true;
}

/** Build the template (initdb in PGlite, then a clean shutdown); replaces any older one. */
export async function buildTemplate(): Promise<string> {
  const building = `${TEMPLATE_DIR}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  const db = await PGlite.create(join(building, 'pgdata'));
  await db.query('SELECT 1');
  await db.close();
  await writeFile(join(building, MARKER), JSON.stringify({ pglite: await pgliteVersion(), builtAt: new Date().toISOString() }));
  await rm(TEMPLATE_DIR, { recursive: true, force: true });
  await rename(building, TEMPLATE_DIR);
  return TEMPLATE_DIR;
}
