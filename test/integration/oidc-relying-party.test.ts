/**
 * The broker's relying party (broker/auth/provider.ts) against the test OpenID provider: the
 * provider's tokens carry what the rest of the suite relies on, RFC 8693 exchange and client
 * credentials give tokens for a site's audience, key rotation changes the JWKS, and every
 * failure is a coded error that names the issuer or the variable, never a secret.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../broker/auth/identity.js';
import { OidcProvider } from '../../broker/auth/provider.js';
import type { IdentityConfig } from '../../broker/config/config.js';
import { isConstellationError } from '../../registry/model/errors.js';
import { BROKER_AUDIENCE, BROKER_CLIENT_ID, BROKER_CLIENT_SECRET, TEST_USERS, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';

const identity = (issuer: string): IdentityConfig => ({
  issuer,
  audience: BROKER_AUDIENCE,
  clientId: BROKER_CLIENT_ID,
  clientSecretEnv: 'OIDC_CLIENT_SECRET',
  scopes: 'openid profile email offline_access',
  groupsClaim: 'groups',
  algorithms: ['RS256'],
  clockSkewS: 30,
  roles: { admin: [], operators: {} },
  anonymous: 'submit',
});

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (isConstellationError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a failure');
}

describe('the OpenID relying party and the test provider', () => {
  let idp: TestOidcProvider;
  let stranger: TestOidcProvider;
  let rp: OidcProvider;

  beforeAll(async () => {
    [idp, stranger] = await Promise.all([startOidcProvider(), startOidcProvider()]);
    rp = new OidcProvider(identity(idp.issuer), { OIDC_CLIENT_SECRET: BROKER_CLIENT_SECRET });
  });

  afterAll(async () => {
    await Promise.all([idp?.close(), stranger?.close()]);
  });

  it('issues RS256 JWT access tokens for the broker audience with the user\'s groups and profile', async () => {
    const token = await idp.tokenFor('alice');
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: idp.currentKid() });
    expect(decodeJwt(token)).toMatchObject({
      iss: idp.issuer,
      aud: BROKER_AUDIENCE,
      sub: TEST_USERS.alice.sub,
      groups: ['astronomers', 'gaia-team'],
      name: 'Alice Astronomer',
      email: 'alice@example.org',
      preferred_username: 'alice',
    });
    expect(decodeJwt(await idp.tokenFor('erin', { audience: 'urn:site:other' }))).toMatchObject({ aud: 'urn:site:other', groups: [] });
    // Two providers in one file have their own keys and issuers.
    expect(stranger.issuer).not.toBe(idp.issuer);
    expect(stranger.currentKid()).not.toBe(idp.currentKid());
  });

  it('reads the JWKS address from discovery', async () => {
    expect((await rp.jwksUri()).href).toBe(`${idp.issuer}/jwks`);
  });

  it('exchanges a user\'s token for one with the site\'s audience (RFC 8693), counted per audience', async () => {
    const before = idp.exchanges('urn:site:rsp');
    const { token, expiresAt } = await rp.exchange(new Secret(await idp.tokenFor('bob')), 'urn:site:rsp');
    expect(String(token)).toBe('[redacted]');
    expect(JSON.stringify({ token })).not.toContain(token.reveal());
    expect(decodeJwt(token.reveal())).toMatchObject({ iss: idp.issuer, sub: TEST_USERS.bob.sub, aud: 'urn:site:rsp', groups: ['astronomers'] });
    expect(expiresAt - Date.now()).toBeGreaterThan(290_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(300_000);
    expect(idp.exchanges('urn:site:rsp')).toBe(before + 1);
  });

  it('refuses to exchange a token that is not this provider\'s valid access token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      'not-a-token',
      await stranger.tokenFor('alice'),
      await idp.sign({ iss: idp.issuer, sub: 'alice-0001', aud: BROKER_AUDIENCE, iat: now - 600, exp: now - 300 }),
    ];
    for (const subject of cases) {
      const refused = await failure(rp.exchange(new Secret(subject), 'urn:site:rsp'));
      expect(refused.code).toBe('CONSTELLATION_E_UNAUTHENTICATED');
      expect(refused.message).toMatch(/invalid_grant/);
      expect(refused.message).not.toContain(subject);
    }
  });

  it('gets the broker\'s own token for an audience with client credentials', async () => {
    const { token, expiresAt } = await rp.clientCredentials('urn:site:mast');
    expect(decodeJwt(token.reveal())).toMatchObject({ iss: idp.issuer, sub: BROKER_CLIENT_ID, aud: 'urn:site:mast' });
    expect(expiresAt).toBeGreaterThan(Date.now());
  });

  it('names the variable, never the secret, when the provider does not accept the client', async () => {
    const wrong = new OidcProvider(identity(idp.issuer), { OIDC_CLIENT_SECRET: 'a-wrong-secret-value-42' });
    const refused = await failure(wrong.clientCredentials('urn:site:mast'));
    expect(refused.code).toBe('CONSTELLATION_E_UNAUTHENTICATED');
    expect(refused.message).toContain('OIDC_CLIENT_SECRET');
    expect(refused.message).not.toContain('a-wrong-secret-value-42');
  });

  it('says which discovery URL it could not read when the issuer is down, and refuses plain http off loopback', async () => {
    const down = new OidcProvider(identity('http://127.0.0.1:9'), {});
    const refused = await failure(down.exchange(new Secret('x'), 'urn:a:b'));
    expect(refused.code).toBe('CONSTELLATION_E_IDENTITY_UNAVAILABLE');
    expect(refused.message).toContain('http://127.0.0.1:9/.well-known/openid-configuration');
    const insecure = await failure(new OidcProvider(identity('http://login.example.org'), {}).jwksUri());
    expect(insecure.code).toBe('CONSTELLATION_E_INVALID_CONFIG');
    expect(insecure.message).toMatch(/https/);
  });

  it('rotates its signing key: new tokens use the new kid and the JWKS drops the old one (or keeps it when asked)', async () => {
    const jwks = async () => ((await (await fetch(idp.jwksUri)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    const first = idp.currentKid();
    await idp.rotateKeys({ keepOld: true });
    const second = idp.currentKid();
    expect(second).not.toBe(first);
    expect(await jwks()).toEqual([second, first]);
    await idp.rotateKeys();
    const third = idp.currentKid();
    expect(await jwks()).toEqual([third]);
    expect(decodeProtectedHeader(await idp.tokenFor('carol')).kid).toBe(third);
    // Grants made before the rotation still work: the provider's storage outlives its keys.
    expect(decodeJwt((await rp.exchange(new Secret(await idp.tokenFor('dave')), 'urn:site:rsp')).token.reveal()).sub).toBe(TEST_USERS.dave.sub);
  });
});
