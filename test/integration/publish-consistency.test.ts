import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';

/** A version of site "flip": every dataset and row count carries the generation. */
function generation(n: number) {
  return documentFor('flip', Array.from({ length: 30 }, (_, i) => ({
    id: `gen${n}.t${String(i).padStart(2, '0')}`, table: `gen${n}.t${i}`, rows: n, coverage: n % 2 ? '0/0-5' : '0/6-11',
  })));
}

describe(`a reader during a publish never sees mixed state (${backend})`, () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
  });
  afterAll(() => broker?.close());

  it('every read shows exactly one generation of the site', async () => {
    const put = (n: number) => fetch(`${broker.url}/sites/flip/capabilities`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(generation(n)),
    });
    expect((await put(0)).status).toBe(200);
    let publishing = true;
    const seen = new Set<number>();
    const reader = async () => {
      let reads = 0;
      while (publishing || reads < 3) {
        const { data, errors } = await broker.graphql<{
          site: { replicas: { dataset: { id: string }; rows: number }[] };
          datasets: { id: string; replicas: { rows: number }[] }[];
        }>(`{ site(id: "flip") { replicas { dataset { id } rows } } datasets(filter: { site: "flip" }) { id replicas { rows } } }`);
        expect(errors).toBeUndefined();
        const gens = new Set([
          ...data!.site.replicas.map((r) => r.rows),
          ...data!.site.replicas.map((r) => Number(/^gen(\d+)\./.exec(r.dataset.id)![1])),
          ...data!.datasets.flatMap((d) => [Number(/^gen(\d+)\./.exec(d.id)![1]), ...d.replicas.map((r) => r.rows)]),
        ]);
        expect([...gens]).toHaveLength(1);
        expect(data!.site.replicas).toHaveLength(30);
        expect(data!.datasets).toHaveLength(30);
        seen.add([...gens][0]);
        reads++;
      }
      return reads;
    };
    const readers = [reader(), reader(), reader()];
    for (let n = 1; n <= 12; n++) expect((await put(n)).status).toBe(200);
    publishing = false;
    const reads = await Promise.all(readers);
    expect(reads.reduce((a, b) => a + b, 0)).toBeGreaterThan(12);
    // The readers saw more than one generation, so they really did overlap the publishes.
    expect(seen.size).toBeGreaterThan(1);
    // Superseded datasets are gone; only the last generation remains.
    const { data } = await broker.graphql<{ datasets: { id: string }[] }>('{ datasets(filter: { text: "gen" }) { id } }');
    expect(data!.datasets.every((d) => d.id.startsWith('gen12.'))).toBe(true);
  });

  it('keeps the last 20 documents of a site', async () => {
    const { data } = await broker.graphql<{ site: { documents: { document: { datasets: { rows: number }[] } }[] } }>(
      '{ site(id: "flip") { documents(limit: 20) { document } } }');
    expect(data!.site.documents.map((d) => d.document.datasets[0].rows)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });
});
