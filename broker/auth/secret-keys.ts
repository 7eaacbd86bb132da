/**
 * The broker's secret keys, from CONSTELLATION_SECRET_KEY: one or more base64 keys of at least
 * 32 bytes, comma-separated, newest first. The first key seals and signs; every listed key still
 * opens and verifies, so a key is rotated by putting a new one in front and dropping the old one
 * once nothing sealed under it is left. Each use (site credentials, session cookies) gets its own
 * key derived with HKDF, so one purpose's output is never valid for another.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConstellationError } from '../../registry/model/errors.js';

/** What a derived key is for. */
export type KeyPurpose = 'site-credentials' | 'session-cookie' | 'session-tokens' | 'job-credentials';

/** The environment variable that holds the keys. */
export const SECRET_KEY_ENV = 'CONSTELLATION_SECRET_KEY';

const IV_BYTES = 12;
const TAG_BYTES = 16;

interface Key {
  /** First 8 hex digits of the key's SHA-256: names the key in sealed values without revealing it. */
  id: string;
  material: Buffer;
}

/** The configured keys; `seal`/`sign` use the newest, `open`/`verify` accept any. */
export class SecretKeys {
  readonly #keys: Key[];

  private constructor(keys: Key[]) {
    this.#keys = keys;
  }

  /** Keys from `env` (undefined when the variable is unset or empty); INVALID_CONFIG for a malformed one, naming its position only. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): SecretKeys | undefined {
    const raw = env[SECRET_KEY_ENV]?.trim();
    if (!raw) return undefined;
    const keys = raw.split(',').map((part, i) => {
      const material = Buffer.from(part.trim(), 'base64');
      if (material.length < 32) {
        throw new ConstellationError('INVALID_CONFIG', `${SECRET_KEY_ENV}: key ${i + 1} is not base64 of at least 32 bytes (make one with: openssl rand -base64 32)`);
      }
      return { id: createHash('sha256').update(material).digest('hex').slice(0, 8), material };
    });
    return new SecretKeys(keys);
  }

  /** Id of the key that seals now. */
  get currentKeyId(): string {
    return this.#keys[0].id;
  }

  /** AES-256-GCM under the newest key; `context` (e.g. owner and site) is bound as associated data. Output: `keyId.iv.tag.ciphertext`, base64url parts. */
  seal(purpose: KeyPurpose, plaintext: string, context: string): string {
    const key = this.#keys[0];
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', derive(key, purpose), iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [key.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  /** The plaintext of a sealed value, or undefined when no configured key opens it (rotated away, tampered, other context). */
  open(purpose: KeyPurpose, sealed: string, context: string): string | undefined {
    const [keyId, iv, tag, body] = sealed.split('.');
    const key = this.#keys.find((k) => k.id === keyId);
    if (!key || iv === undefined || tag === undefined || body === undefined) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', derive(key, purpose), Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      const tagBytes = Buffer.from(tag, 'base64url');
      if (tagBytes.length !== TAG_BYTES) return undefined;
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return undefined; // a failed tag check is the answer, not an error
    }
  }

  /** True when `sealed` was sealed under an older key (re-seal it). */
  isStale(sealed: string): boolean {
    return !sealed.startsWith(`${this.#keys[0].id}.`);
  }

  /** `value.signature` with HMAC-SHA256 under the newest key. */
  sign(purpose: KeyPurpose, value: string): string {
    return `${value}.${hmac(this.#keys[0], purpose, value)}`;
  }

  /** The value of a signed string when any configured key signed it, compared in constant time. */
  verify(purpose: KeyPurpose, signed: string): string | undefined {
    const dot = signed.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const value = signed.slice(0, dot);
    const given = Buffer.from(signed.slice(dot + 1));
    return this.#keys.some((k) => {
      const expected = Buffer.from(hmac(k, purpose, value));
      return expected.length === given.length && timingSafeEqual(expected, given);
    })
      ? value
      : undefined;
  }
}

function derive(key: Key, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', key.material, Buffer.alloc(0), `constellation ${purpose}`, 32));
}

function hmac(key: Key, purpose: KeyPurpose, value: string): string {
  return createHmac('sha256', derive(key, purpose)).update(value).digest('base64url');
}

/** True when `given` equals `expected`, in time that does not depend on where they differ. */
export function constantTimeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
