/** The broker's version, as package.json gives it: recorded with every thread it starts. */
import { readFileSync } from 'node:fs';
import { packagePath } from '../../registry/paths.js';

let cached: string | undefined;

/** package.json's version (read once; "unknown" when it has none). */
export function brokerVersion(): string {
  if (cached === undefined) {
    const pkg: unknown = JSON.parse(readFileSync(packagePath('package.json'), 'utf8'));
    const version = pkg !== null && typeof pkg === 'object' && 'version' in pkg ? pkg.version : undefined;
    cached = typeof version === 'string' ? version : 'unknown';
  }
  return cached;
}
