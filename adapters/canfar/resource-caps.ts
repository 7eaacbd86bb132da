/**
 * CADC's registry map `/reg/resource-caps`: one `ivoid = capabilities URL` per line, with `#`
 * comments and blank lines. It is not read as java.util.Properties would, because there ':'
 * also separates keys from values and would cut every `ivo://` identifier short.
 */
import { ConstellationError, type Violation } from '../../registry/model/errors.js';

const WHAT = 'CADC resource-caps document';

/** Parses resource-caps text into a Map from resource identifier to capabilities URL. */
export function parseResourceCaps(input: string | Uint8Array): Map<string, string> {
  let text = typeof input === 'string' ? input : new TextDecoder('utf-8').decode(input);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const violations: Violation[] = [];
  const map = new Map<string, string>();
  const lineOf = new Map<string, number>();

  text.split(/\r\n|\r|\n/).forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) return;
    const path = `line ${lineNo}`;
    const eq = line.indexOf('=');
    if (eq < 0) {
      violations.push({ path, rule: 'key=value', message: `expected "ivoid = URL", got "${line.slice(0, 80)}"` });
      return;
    }
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(key)) {
      violations.push({ path, rule: 'resource-identifier', message: `"${key}" is not a resource identifier` });
      return;
    }
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      violations.push({ path, rule: 'capabilities-url', message: `"${value}" is not an http(s) URL` });
      return;
    }
    const previous = map.get(key);
    // CADC's own client refuses an identifier with two locations rather than guess; so do we.
    if (previous !== undefined && previous !== value) {
      violations.push({
        path,
        rule: 'unique-identifier',
        message: `${key} is already mapped to ${previous} on line ${lineOf.get(key)}`,
      });
      return;
    }
    map.set(key, value);
    lineOf.set(key, lineNo);
  });

  if (violations.length > 0) {
    const first = violations[0];
    throw new ConstellationError(
      'UPSTREAM_MALFORMED',
      `${WHAT}: ${first.path}: ${first.message}${violations.length > 1 ? ` (and ${violations.length - 1} more)` : ''}`,
      { violations },
    );
  }
  return map;
}
