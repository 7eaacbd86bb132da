/** What every CLI command writes on stdout: one JSON document under --json, printable lines otherwise. */
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';

// JSON.stringify escapes C0 controls but not DEL, C1 controls (U+009B is a one-character CSI)
// or bidirectional overrides; escaping them too keeps the same JSON value and a safe terminal.
// eslint-disable-next-line no-control-regex
const UNSAFE_IN_JSON = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Write `doc` as the command's one JSON document (compact, one line) on stdout; no raw control character reaches a terminal. */
export function writeJson(doc: unknown): void {
  process.stdout.write(jsonLine(doc));
}

/** `doc` as one line of JSON with a newline, every character a terminal could act on escaped. */
export function jsonLine(doc: unknown): string {
  return `${JSON.stringify(doc).replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

/** The JSON document of a failed command under --json: its code, message, violations and exit code. */
export function errorDocument(err: unknown, exitCode: number): { error: { code: string; message: string; violations?: unknown[] }; exitCode: number } {
  const e = isConstellationError(err) ? err : new ConstellationError('INTERNAL', err instanceof Error ? err.message : String(err));
  return { error: e.toJSON(), exitCode };
}

/** A byte count for people: B, kB, MB, GB (decimal). */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

/** Seconds since `startedMs`, to one decimal, for progress lines. */
export function elapsed(startedMs: number): string {
  return `${((Date.now() - startedMs) / 1000).toFixed(1)} s`;
}
