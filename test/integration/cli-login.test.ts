/**
 * `constellation login`, `whoami` and `logout` as a user runs them, in a child process, against
 * a real OpenID provider: the device code is approved over HTTP with a cookie jar, the tokens
 * are cached in a private file, refreshed when they near expiry, and revoked at logout.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../registry/paths.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { childEnv, runCli, type CliResult } from '../support/cli.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, BROKER_CLIENT_ID, CLI_CLIENT_ID, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { CHILD_PATIENCE_MS, waitUntil } from '../support/wait.js';

// Shorter than the CLI's 60 s refresh margin: every later command must refresh first.
const ACCESS_TTL_S = 30;
const CLI_TEST_MS = 3 * CHILD_PATIENCE_MS;

interface CachedFile {
  version: number;
  issuers: Record<string, { clientId: string; accessToken: string; refreshToken?: string; expiresAt: number; subject?: string }>;
}

describe(`constellation login, whoami, logout (${backend})`, () => {
  let idp: TestOidcProvider;
  let broker: TestBroker;
  let dir: string;
  let configDir: string;
  let federationFile: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    idp = await startOidcProvider({ accessTokenTtlS: ACCESS_TTL_S });
    const yaml = `
federation: { name: cli-login-test }
registration: { open: true }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  clientId: ${BROKER_CLIENT_ID}
sites: []
`;
    dir = await mkdtemp(join(tmpdir(), 'constellation-cli-login-'));
    configDir = join(dir, 'config', 'constellation');
    federationFile = join(dir, 'federation.yaml');
    await writeFile(federationFile, yaml);
    broker = await startBroker(configFromYaml(yaml));
    env = { CONSTELLATION_CONFIG_DIR: configDir, CONSTELLATION_CLI_CLIENT_ID: CLI_CLIENT_ID, CONSTELLATION_URL: broker.url };
  }, CHILD_PATIENCE_MS);

  afterAll(async () => {
    await broker?.close();
    await idp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => runCli([...args, '--config', federationFile], { ...env, ...extra });
  const cache = async (): Promise<CachedFile> => JSON.parse(await readFile(join(configDir, 'tokens.json'), 'utf8')) as CachedFile;

  /** `constellation login` in the background: approve its code as `username` once it prints it. */
  async function login(username: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', packagePath('broker/cli/run.ts'), 'login', '--config', federationFile], {
      cwd: packagePath('.'),
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const userCode = await waitUntil(
        () => {
          if (child.exitCode !== null) throw new Error(`login exited ${child.exitCode} before printing a code:\n${stdout}\n${stderr}`);
          return /code: ([A-Z0-9-]+)/.exec(stdout)?.[1];
        },
        (code) => code !== undefined,
        { timeoutMs: CHILD_PATIENCE_MS, describe: () => `login to print a user code (stdout: ${stdout}, stderr: ${stderr})` },
      );
      expect(stdout).toContain(`${idp.issuer}/device`);
      await idp.approveDevice(userCode as string, username);
      return { code: await exited, stdout, stderr };
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }

  it('logs in with the device code and caches the tokens in a 0600 file in a 0700 directory', async () => {
    const result = await login('alice');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Logged in as Alice Astronomer \(alice-0001\)/);
    const file = await cache();
    const entry = file.issuers[idp.issuer];
    expect(entry).toMatchObject({ clientId: CLI_CLIENT_ID, subject: 'alice-0001' });
    expect(entry.refreshToken).toEqual(expect.any(String));
    registerSecret(entry.accessToken);
    registerSecret(entry.refreshToken);
    expect((await stat(join(configDir, 'tokens.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(configDir)).mode & 0o777).toBe(0o700);
    // No token is printed.
    expect(result.stdout).not.toContain(entry.accessToken);
  }, CLI_TEST_MS);

  it('whoami asks the running broker with a token refreshed first, and keeps the file private', async () => {
    const before = await cache();
    const refreshes = idp.grants('refresh_token');
    const result = await cli(['whoami', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ issuer: idp.issuer, subject: 'alice-0001', groups: ['astronomers', 'gaia-team'], roles: { admin: false, operatorOf: [] }, source: 'broker' });
    expect(idp.grants('refresh_token')).toBe(refreshes + 1);
    const after = await cache();
    expect(after.issuers[idp.issuer].accessToken).not.toBe(before.issuers[idp.issuer].accessToken);
    expect(after.issuers[idp.issuer].expiresAt).toBeGreaterThan(before.issuers[idp.issuer].expiresAt);
    registerSecret(after.issuers[idp.issuer].accessToken);
    registerSecret(after.issuers[idp.issuer].refreshToken);
    expect((await stat(join(configDir, 'tokens.json'))).mode & 0o777).toBe(0o600);

    const text = await cli(['whoami']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/subject:\s+alice-0001/);
    expect(text.stdout).toMatch(/groups:\s+astronomers, gaia-team/);
  }, CLI_TEST_MS);

  it('whoami with no broker answering shows what the login token says', async () => {
    const result = await cli(['whoami', '--json'], { CONSTELLATION_URL: 'http://127.0.0.1:9' });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ subject: 'alice-0001', source: 'token' });
    expect(result.stderr).toMatch(/no broker answering at http:\/\/127\.0\.0\.1:9/);
  }, CLI_TEST_MS);

  it('logout revokes the refresh token and deletes the cached login; whoami then fails with a coded message', async () => {
    const { refreshToken } = (await cache()).issuers[idp.issuer];
    const result = await cli(['logout']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Logged out of ${idp.issuer}`);
    expect((await cache()).issuers[idp.issuer]).toBeUndefined();
    // The provider no longer honours the revoked refresh token.
    const res = await fetch(idp.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken as string, client_id: CLI_CLIENT_ID }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');

    const whoami = await cli(['whoami']);
    // Not authorised (the CLI's exit code 4).
    expect(whoami.code).toBe(4);
    expect(whoami.stderr.trim()).toMatch(/^constellation: CONSTELLATION_E_UNAUTHENTICATED: not logged in to .*; run constellation login$/);
    const again = await cli(['logout']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Not logged in');
  }, CLI_TEST_MS);

  it('answers a bad option with usage (exit 2) and a federation without identity with a coded failure (exit 1)', async () => {
    const usage = await cli(['whoami', '--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: constellation');
    const bare = join(dir, 'bare.yaml');
    await writeFile(bare, 'federation: { name: bare }\nregistration: { open: true }\nsites: []\n');
    const none = await runCli(['login', '--config', bare], env);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toMatch(/^constellation: CONSTELLATION_E_IDENTITY_UNAVAILABLE: the federation in .*bare\.yaml names no identity provider/);
  }, CLI_TEST_MS);
});
