/**
 * UPLOAD=name,http(s)://… (TAPRegExt upload-http): the broker reads the table from the URL,
 * through the one HTTP client under an outbound policy that allows the URL's own public host
 * only. Loopback, link-local and private addresses are refused (the broker is no proxy into its
 * own network), and the read stops at the upload limit.
 */
import type { HttpClient } from '../../adapters/http.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';

// A public documentation address (TEST-NET-3) stands as the policy's own site, so that private
// addresses are never allowed to it and only the URL's host is named in allowHosts.
const PUBLIC_STAND_IN = 'https://203.0.113.1/';

/** The text of the table at `url`, at most `maxBytes` bytes. */
export async function fetchUpload(http: HttpClient, name: string, url: string, maxBytes: number, signal?: AbortSignal): Promise<string> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidArgument('UPLOAD', `${name}: "${url.slice(0, 80)}" is not a URL`);
  }
  const client = http.forSite({ siteId: 'tap-upload', url: PUBLIC_STAND_IN, allowHosts: [u.host] });
  let res;
  try {
    res = await client.request(u.toString(), { ...(signal ? { signal } : {}), followRedirects: false });
  } catch (err) {
    throw invalidArgument('UPLOAD', `${name}: the table at ${u.host} could not be read: ${(err as Error).message.slice(0, 200)}`);
  }
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += chunk.byteLength;
    if (bytes > maxBytes) {
      await res.dump().catch(() => undefined);
      throw new ConstellationError('PAYLOAD_TOO_LARGE', `UPLOAD ${name}: the table at ${u.host} is larger than ${maxBytes} bytes, this service's upload limit`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
