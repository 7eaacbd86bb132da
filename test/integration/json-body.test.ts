/**
 * Large JSON bodies (PUT /sites/:id/capabilities) are parsed while they arrive, in slices: the
 * same document as JSON.parse gives, the same refusals (not JSON, "__proto__", too large), and
 * the event loop keeps turning through a 15 MB body (issue 9, finding 2: one JSON.parse of it
 * held the broker ~300 ms).
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WHOLE_BODY_BYTES } from '../../broker/http/json-body.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { expectLoopTurned, measureLoop } from '../support/event-loop.js';
import { WAITING_TEST_MS } from '../support/wait.js';

describe(`large JSON bodies (${backend})`, () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await broker?.close();
  });

  const put = async (site: string, body: string | Buffer) => {
    const res = await fetch(`${broker.url}/sites/${site}/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
    return { status: res.status, body: (await res.json()) as { code?: string; message?: string; violations?: { path: string; rule: string }[] } };
  };
  /** A valid document of about `mb` MB (long descriptions, every character class JSON escapes). */
  const bigDocument = (site: string, mb: number) => {
    const description = `Ünïcödé ✓ "quoted" back\\slash tab\t new\nline 𝔊 ${'x'.repeat(3_800)}`;
    const count = Math.ceil((mb * 1e6) / 4_000);
    return documentFor(site, Array.from({ length: count }, (_, i) => ({ id: `${site}.t${i}`, table: `big.t${i}`, description })));
  };

  it('publishes a large document exactly as it was sent', async () => {
    const doc = bigDocument('bulky', 3);
    const text = JSON.stringify(doc);
    expect(text.length).toBeGreaterThan(WHOLE_BODY_BYTES);
    const { status, body } = await put('bulky', text);
    expect(status, JSON.stringify(body).slice(0, 300)).toBe(200);
    const stored = await (await fetch(`${broker.url}/sites/bulky/capabilities`)).json();
    expect(stored).toEqual(JSON.parse(text));
  }, WAITING_TEST_MS);

  it('keeps the event loop turning while a 15 MB document of 150,000 invalid datasets is read and refused', async () => {
    const doc = documentFor('attack-doc', [{ id: 'survey.wide', table: 'survey.wide' }]) as unknown as { datasets: unknown[] };
    doc.datasets = Array.from({ length: 150_000 }, (_, i) => ({ id: `Bad Id ${i}`, table: `t${i}`, service: 'tap', access: { public: 1 }, title: 'padding-'.repeat(2) }));
    const body = Buffer.from(JSON.stringify(doc));
    expect(body.length).toBeGreaterThan(14_000_000);
    const m = await measureLoop(() => put('attack-doc', body));
    expect(m.result.status).toBe(422);
    expect(m.result.body.code).toBe('CONSTELLATION_E_INVALID_DOCUMENT');
    expect(m.result.body.violations?.[0]).toMatchObject({ path: '/datasets', rule: 'maxItems' });
    // Refused while it arrived, at the 50,001st dataset: the rest was never built.
    expect(m.result.body.message).toMatch(/has more than 50000 datasets/);
    expectLoopTurned(m, `${(body.length / 1e6).toFixed(1)} MB document read and refused`);
  }, WAITING_TEST_MS);

  it('reads long strings (seven MOCs of 2 MB) without holding the loop or a string per character', async () => {
    const moc = `29/${Array.from({ length: 105_000 }, (_, i) => String(i * 1_000_003)).join(' ')}`;
    const doc = documentFor('long-strings', Array.from({ length: 7 }, (_, i) => ({ id: `long.t${i}`, table: `long.t${i}`, coverage: moc })));
    const body = JSON.stringify(doc);
    expect(body.length).toBeGreaterThan(7 * 1_000_000);
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 5);
    const m = await measureLoop(() => put('long-strings', body));
    clearInterval(sampler);
    expect(m.result.status).toBe(422);
    expect(m.result.body.violations?.map((v) => v.rule)).toContain('limit');
    expectLoopTurned(m, `${(body.length / 1e6).toFixed(1)} MB of long strings read and refused`);
    // About the size of the strings themselves, not hundreds of MB.
    expect(heapPeak - heapBefore).toBeLessThan(250 * 1024 * 1024);
  }, WAITING_TEST_MS);

  it('caps only the document\'s own datasets array: a "datasets" key deeper down is the validator\'s business', async () => {
    const doc = bigDocument('nested', 1.2) as unknown as Record<string, unknown>;
    doc.extra = { datasets: Array.from({ length: 60_000 }, (_, i) => i) };
    const { status, body } = await put('nested', JSON.stringify(doc));
    expect(status).toBe(422);
    expect(body.message).not.toMatch(/has more than 50000 datasets/);
    expect(body.violations?.[0].path).toBe('/extra');
  }, WAITING_TEST_MS);

  it('refuses what is not JSON, a "__proto__" key and a truncated document, large or small, with INVALID_JSON', async () => {
    const pad = (json: string) => json.replace('{', `{"pad":"${'x'.repeat(WHOLE_BODY_BYTES + 10)}",`);
    for (const json of ['{"a":1,"__proto__":{"admin":true}}', '{"a":', '{"a":1}{"b":2}', '{"a":tru}']) {
      for (const body of [json, pad(json)]) {
        const { status, body: answer } = await put('nonsense', body);
        expect(status, `${body.length} bytes: ${json}`).toBe(400);
        expect(answer.code).toBe('CONSTELLATION_E_INVALID_JSON');
      }
    }
    const proto = await put('nonsense', pad('{"__proto__":{"admin":true}}'));
    expect(proto.body.message).toBe('request body is not valid JSON: a "__proto__" key is not accepted');
    expect(({} as { admin?: boolean }).admin).toBeUndefined();
  }, WAITING_TEST_MS);

  it('refuses a body over the limit with 413, by its declared length before reading it, or while it streams in', async () => {
    const limit = broker.app.initialConfig.bodyLimit!;
    const declared = await new Promise<number>((resolve, reject) => {
      // Declares more than the limit and sends almost nothing: refused without waiting for the rest.
      const req = httpRequest(`${broker.url}/sites/x/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json', 'content-length': String(limit + 1) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write('{"a":');
    });
    expect(declared).toBe(413);
    // No declared length (chunked): counted as it arrives.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${broker.url}/sites/x/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', (err) => (('code' in err && err.code === 'EPIPE') ? undefined : reject(err)));
      req.write(`{"pad":"`);
      const block = 'x'.repeat(1024 * 1024);
      for (let sent = 0; sent <= limit; sent += block.length) req.write(block);
      req.end('"}');
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).code).toBe('CONSTELLATION_E_PAYLOAD_TOO_LARGE');
  }, WAITING_TEST_MS);
});
