/**
 * `constellation login` and `logout` with --json: the interactive text (the verification
 * address and code) goes to stderr, and stdout gets one JSON document saying who is logged in.
 */
import type { Config } from '../config/config.js';
import { login, logout, type Out } from './login.js';
import { writeJson } from './output.js';
import { readLogin } from './token-cache.js';

const TO_STDERR: Out = { stdout: (t) => void process.stderr.write(t), stderr: (t) => void process.stderr.write(t) };

/** `constellation login [--json]`. */
export async function loginCommand(config: Config, json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (!json) return login(config, env);
  const code = await login(config, env, TO_STDERR);
  const issuer = config.identity?.issuer ?? '';
  const cached = await readLogin(issuer, env);
  // Never the tokens: who, and until when.
  writeJson({ loggedIn: cached !== undefined, issuer, subject: cached?.subject ?? null, name: cached?.name ?? null, email: cached?.email ?? null, expiresAt: cached ? new Date(cached.expiresAt).toISOString() : null });
  return code;
}

/** `constellation logout [--json]`. */
export async function logoutCommand(config: Config, json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (!json) return logout(config, env);
  const issuer = config.identity?.issuer ?? '';
  const was = issuer ? await readLogin(issuer, env) : undefined;
  const code = await logout(config, env, TO_STDERR);
  writeJson({ loggedOut: true, issuer, wasLoggedIn: was !== undefined, subject: was?.subject ?? null });
  return code;
}
