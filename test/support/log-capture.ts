/**
 * Every log line the brokers of a test file write, kept so that the file can end by checking
 * that none of them carries a secret: a token the test provider issued, a session cookie, a
 * linked site token, a key. Tests (and the test provider) register what they know to be secret;
 * test/support/no-secrets-in-logs.ts checks after every file.
 */
import { Writable } from 'node:stream';

const lines: string[] = [];
const secrets = new Set<string>();

/** The stream brokers started by tests log to. */
export const logSink = new Writable({
  write(chunk: Buffer | string, _encoding, done) {
    lines.push(String(chunk));
    done();
  },
});

/** Remember `value` as a secret no log line may contain (values shorter than 12 characters are too common to check). */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 12) secrets.add(value);
}

/** The captured lines that match `pattern`. */
export function capturedLines(pattern: RegExp): string[] {
  return lines.filter((line) => pattern.test(line));
}

/** How many lines were captured so far (a check that capture is on). */
export function capturedLineCount(): number {
  return lines.length;
}

/** The captured lines that contain a registered secret, each with the first 16 characters of the secret it leaked. */
export function linesWithSecrets(): { line: string; secret: string }[] {
  const found: { line: string; secret: string }[] = [];
  for (const line of lines) {
    for (const secret of secrets) {
      // A JWT's signature alone identifies it; so does its payload. Check the whole value and its last part.
      const parts = [secret, ...(secret.split('.').length === 3 ? [secret.split('.')[2]].filter((p) => p.length >= 16) : [])];
      if (parts.some((p) => line.includes(p))) found.push({ line: line.slice(0, 400), secret: `${secret.slice(0, 16)}…` });
    }
  }
  return found;
}
