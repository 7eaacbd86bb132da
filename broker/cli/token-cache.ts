/**
 * The command line's tokens, cached in the user's config directory (tokens.json, mode 0600 in a
 * 0700 directory), one entry per issuer, so a login lasts across commands.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConstellationError } from '../../registry/model/errors.js';

/** One issuer's cached login. */
export interface CachedLogin {
  clientId: string;
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  subject?: string;
  name?: string;
  email?: string;
}

interface CacheFile {
  version: 1;
  issuers: Record<string, CachedLogin>;
}

/** The directory: CONSTELLATION_CONFIG_DIR, else $XDG_CONFIG_HOME/constellation, else ~/.config/constellation. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CONSTELLATION_CONFIG_DIR) return env.CONSTELLATION_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'constellation');
}

/** The cache file's path. */
export function tokenFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'tokens.json');
}

/** The cached login for `issuer`, if any. */
export async function readLogin(issuer: string, env: NodeJS.ProcessEnv = process.env): Promise<CachedLogin | undefined> {
  return (await readCache(env)).issuers[issuer];
}

/** Store (or with undefined, forget) the login for `issuer`. */
export async function writeLogin(issuer: string, login: CachedLogin | undefined, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const cache = await readCache(env);
  if (login) cache.issuers[issuer] = login;
  else delete cache.issuers[issuer];
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // Written whole to a private temporary file and renamed: never a half-written or world-readable cache.
  const temp = join(dir, `.tokens.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(temp, `${JSON.stringify(cache, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, tokenFile(env));
}

async function readCache(env: NodeJS.ProcessEnv): Promise<CacheFile> {
  let text: string;
  try {
    text = await readFile(tokenFile(env), 'utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return { version: 1, issuers: {} };
    throw new ConstellationError('INVALID_ARGUMENT', `${tokenFile(env)} cannot be read (${(err as Error).message})`, { cause: err });
  }
  const parsed = parseCache(text);
  if (!parsed) throw new ConstellationError('INVALID_ARGUMENT', `${tokenFile(env)} is not a token cache written by constellation; delete it and run constellation login`);
  return parsed;
}

function parseCache(text: string): CacheFile | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { version, issuers } = value as Record<string, unknown>;
  if (version !== 1 || typeof issuers !== 'object' || issuers === null) return undefined;
  const out: Record<string, CachedLogin> = {};
  for (const [issuer, entry] of Object.entries(issuers)) {
    const login = parseLogin(entry);
    if (login) out[issuer] = login;
  }
  return { version: 1, issuers: out };
}

function parseLogin(entry: unknown): CachedLogin | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const e = entry as Record<string, unknown>;
  if (typeof e.clientId !== 'string' || typeof e.accessToken !== 'string' || typeof e.expiresAt !== 'number') return undefined;
  const text = (k: string): Record<string, string> => {
    const v = e[k];
    return typeof v === 'string' ? { [k]: v } : {};
  };
  return { clientId: e.clientId, accessToken: e.accessToken, expiresAt: e.expiresAt, ...text('refreshToken'), ...text('idToken'), ...text('subject'), ...text('name'), ...text('email') };
}
