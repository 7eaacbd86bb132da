/** Who is calling: anonymous or a user whose bearer token was verified, with the rights their groups give. */
import { inspect } from 'node:util';
import type { IdentityConfig } from '../config/config.js';

/**
 * A secret string (a bearer token, a site token) that never prints: JSON, util.inspect and
 * template strings show `[redacted]`; `reveal()` is the one way to read it, at the moment it
 * is sent.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The secret itself, for the one place that sends it. */
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

/** What a caller's groups let them do. */
export interface Roles {
  admin: boolean;
  /** Ids of the sites this caller operates (may publish for). */
  operatorOf: string[];
}

/** A caller whose bearer token the broker verified. */
export interface User {
  kind: 'user';
  /** The token's `sub`. */
  subject: string;
  name?: string;
  email?: string;
  groups: string[];
  roles: Roles;
  /** The verified access token, kept to exchange it for site tokens (RFC 8693). */
  token: Secret;
  /** When the token expires, epoch milliseconds. */
  expiresAt: number;
}

/** A caller with no token. */
export interface Anonymous {
  kind: 'anonymous';
}

/** Who is calling. */
export type Identity = User | Anonymous;

/** The caller with no token. */
export const ANONYMOUS_IDENTITY: Anonymous = Object.freeze({ kind: 'anonymous' });

/** The owner recorded on an anonymous caller's jobs. */
export const ANONYMOUS_OWNER = 'anonymous';

/** The owner string recorded on jobs, threads and results: `user:<sub>`, or `anonymous`. */
export function ownerOf(identity: Identity): string {
  return identity.kind === 'user' ? `user:${identity.subject}` : ANONYMOUS_OWNER;
}

/** The groups a caller belongs to (none when anonymous), for replica access checks. */
export function groupsOf(identity: Identity): readonly string[] {
  return identity.kind === 'user' ? identity.groups : [];
}

/** True when the caller is an admin. */
export function isAdmin(identity: Identity): boolean {
  return identity.kind === 'user' && identity.roles.admin;
}

/** The roles `groups` give under federation.yaml's `identity.roles`. */
export function rolesFor(groups: readonly string[], roles: IdentityConfig['roles'] | undefined): Roles {
  if (!roles) return { admin: false, operatorOf: [] };
  const member = (wanted: readonly string[]) => wanted.some((g) => groups.includes(g));
  return {
    admin: member(roles.admin),
    operatorOf: Object.entries(roles.operators).filter(([, wanted]) => member(wanted)).map(([site]) => site).sort(),
  };
}
