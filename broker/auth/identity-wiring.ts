/** The identity services of one broker process: its relying party, verifier, keys and browser sessions. */
import type pg from 'pg';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import type { IdentityConfig } from '../config/config.js';
import type { IdentityServices } from './identity-services.js';
import { OidcProvider } from './provider.js';
import { SecretKeys } from './secret-keys.js';
import { SessionStore } from './sessions.js';
import { TokenVerifier } from './verifier.js';

/**
 * Identity services for `config` over `pool` (sessions live in the database so replicas share
 * them). The verifier is built on first use from the issuer's discovery document: an issuer that
 * cannot be reached does not stop the broker from starting; requests with a token get
 * IDENTITY_UNAVAILABLE and the next one tries again.
 */
export function identityServicesFor(config: IdentityConfig, pool: pg.Pool, env: NodeJS.ProcessEnv): IdentityServices {
  const provider = new OidcProvider(config, env);
  const keys = SecretKeys.fromEnv(env);
  let verifier: Promise<TokenVerifier> | undefined;
  return {
    config,
    provider,
    // Browser sessions need the key that signs their cookie and seals their tokens.
    ...(keys ? { keys, sessions: new SessionStore(pool, keys, provider) } : {}),
    verifier() {
      verifier ??= provider.jwksUri().then(
        (uri) => new TokenVerifier(config, uri),
        (err: unknown) => {
          verifier = undefined;
          throw isConstellationError(err) ? err : new ConstellationError('IDENTITY_UNAVAILABLE', `the identity provider ${config.issuer} could not be reached; try again shortly`, { cause: err });
        },
      );
      return verifier;
    },
  };
}
