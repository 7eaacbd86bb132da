import { describe, expect, it } from 'vitest';
import { ConstellationError } from '../../registry/model/errors.js';
import { logFailure } from '../../broker/http/errors.js';

/** A logger that keeps what it is given, by level. */
function recorder() {
  const lines: { level: 'warn' | 'error'; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    warn: (obj: object, msg: string) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj: object, msg: string) => void lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
}

describe('logging a failed request', () => {
  it("logs a member site's failure as one warn line with its code and no error object (no stack)", () => {
    for (const kind of ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_MALFORMED', 'UPSTREAM_RATE_LIMITED', 'UPSTREAM'] as const) {
      const log = recorder();
      logFailure(log, new ConstellationError(kind, 'site "alpha" answered 503', { cause: new Error('socket detail') }), 'request failed');
      expect(log.lines).toHaveLength(1);
      expect(log.lines[0].level).toBe('warn');
      expect(log.lines[0].obj).toEqual({ code: `CONSTELLATION_E_${kind}` });
      expect(log.lines[0].msg).toBe('request failed: site "alpha" answered 503');
    }
  });

  it("logs the broker's own failure at error with the error, and nothing for a 4xx or while starting", () => {
    const log = recorder();
    const bug = new TypeError('x is undefined');
    logFailure(log, bug, 'request failed');
    expect(log.lines).toEqual([{ level: 'error', obj: { err: bug }, msg: 'request failed: internal error' }]);
    logFailure(log, new ConstellationError('INVALID_ARGUMENT', 'bad limit'), 'request failed');
    logFailure(log, new ConstellationError('STARTING', 'starting'), 'request failed');
    expect(log.lines).toHaveLength(1);
  });
});
