/**
 * Whole-response cache for read-only GraphQL queries, keyed by the registry version the
 * process knows, the query text and its variables. Registry data changes only when a site
 * publishes or is harvested, and every such change bumps the version, so a cached answer is
 * a consistent answer of one version; a new version simply stops matching old entries.
 */
import { createHash } from 'node:crypto';

/**
 * Fields that change without a new registry version: jobs, and a site's harvest record (a
 * failed or unchanged harvest is recorded without changing what the site advertises).
 */
const VOLATILE_FIELDS = /\b(?:jobs?\s*[({]|(?:harvests|lastHarvest|consecutiveFailures)\b)/;

interface Entry {
  body: string;
  bytes: number;
}

/** A bounded LRU of serialised GraphQL responses. */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  /** The key of a query at a registry version, or undefined when the request must not be cached. */
  key(version: number, body: unknown): string | undefined {
    if (typeof body !== 'object' || body === null) return undefined;
    const { query, variables, operationName } = body as { query?: unknown; variables?: unknown; operationName?: unknown };
    // Only plain registry queries are cacheable: a mutation or subscription keyword anywhere
    // disqualifies, and so does any field that changes without a new registry version.
    if (typeof query !== 'string' || /\b(mutation|subscription)\b/.test(query) || VOLATILE_FIELDS.test(query)) return undefined;
    return createHash('sha256').update(`${version}\u0000${operationName ?? ''}\u0000${query}\u0000${JSON.stringify(variables ?? null)}`).digest('base64url');
  }

  get(key: string): string | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-insert to mark as most recently used.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.body;
  }

  set(key: string, body: string): void {
    const bytes = body.length * 2;
    if (bytes > this.maxBytes / 4) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { body, bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }
}
