/**
 * UPLOAD=name,http(s)://… (TAPRegExt upload-http): the broker reads the table from the URL,
 * through the one HTTP client under an outbound policy that allows the URL's own public host
 * only. Loopback, link-local and private addresses are refused (the broker is no proxy into its
 * own network), the read stops at the upload limit, and the whole read (retries included) has a
 * deadline. Each read gets a client of its own, not kept, whose circuit is the URL's host's: a
 * dead host fails fast for those who name it and nobody else.
 */
import type { HttpClient, HttpResponse } from '../../adapters/http.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';

// A public documentation address (TEST-NET-3) stands as the policy's own site, so that private
// addresses are never allowed to it and only the URL's host is named in allowHosts.
const PUBLIC_STAND_IN = 'https://203.0.113.1/';
// A private address on a port nothing listens on: with it as the policy's own site, private
// addresses are allowed (see UploadFetchOptions.privateAddresses).
const PRIVATE_STAND_IN = 'http://127.0.0.1:0/';

/** Longest the broker spends reading one uploaded table by URL, retries included. */
export const UPLOAD_FETCH_DEADLINE_MS = 60_000;

/** How one table is read. */
export interface UploadFetchOptions {
  /** Stops the read (the caller went away). */
  signal?: AbortSignal;
  /** The whole read's deadline; UPLOAD_FETCH_DEADLINE_MS by default. */
  deadlineMs?: number;
  /** Allow loopback and private addresses: only for a broker whose callers' tables are on its own network (and tests); refused by default. */
  privateAddresses?: boolean;
}

/** The text of the table at `url`, at most `maxBytes` bytes (a signal as the fifth argument is `{ signal }`). */
export async function fetchUpload(http: HttpClient, name: string, url: string, maxBytes: number, options: UploadFetchOptions | AbortSignal = {}): Promise<string> {
  const { signal, deadlineMs = UPLOAD_FETCH_DEADLINE_MS, privateAddresses = false } = options instanceof AbortSignal ? { signal: options } : options;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidArgument('UPLOAD', `${name}: "${url.slice(0, 80)}" is not a URL`);
  }
  const client = http.forOneOff({ siteId: 'tap-upload', url: privateAddresses ? PRIVATE_STAND_IN : PUBLIC_STAND_IN, allowHosts: [u.host] }, u.host);
  const deadline = AbortSignal.timeout(deadlineMs);
  const stop = signal ? AbortSignal.any([signal, deadline]) : deadline;
  // Whatever fails once the deadline has passed failed because of it.
  const failed = (err: unknown, doing: string): ConstellationError => {
    if (deadline.aborted && !signal?.aborted) {
      return new ConstellationError('UPSTREAM_TIMEOUT', `UPLOAD ${name}: the table at ${u.host} was not read within ${deadlineMs / 1000} s, this service's limit for a table uploaded by URL`, { cause: err });
    }
    if (err instanceof ConstellationError && err.kind === 'PAYLOAD_TOO_LARGE') return err;
    return invalidArgument('UPLOAD', `${name}: the table at ${u.host} could not be ${doing}: ${(err as Error).message.slice(0, 200)}`);
  };
  let res: HttpResponse;
  try {
    res = await client.request(u.toString(), { signal: stop, followRedirects: false });
  } catch (err) {
    throw failed(err, 'read');
  }
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    for await (const chunk of res.body) {
      bytes += chunk.byteLength;
      if (bytes > maxBytes) {
        throw new ConstellationError('PAYLOAD_TOO_LARGE', `UPLOAD ${name}: the table at ${u.host} is larger than ${maxBytes} bytes, this service's upload limit`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    // Leaving the loop early (too large, or failed) drops the connection: nothing is read further.
    throw failed(err, 'read to its end');
  }
  return Buffer.concat(chunks).toString('utf8');
}
