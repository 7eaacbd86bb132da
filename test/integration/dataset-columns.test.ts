import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';

const column = (name: string) => ({ name, datatype: 'double' });

describe(`a dataset's columns (${backend})`, () => {
  let broker: TestBroker;
  const put = (doc: unknown, id: string) => fetch(`${broker.url}/sites/${id}/capabilities`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });

  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    // The site's own order is not alphabetical; a second site adds a column the first lacks.
    expect((await put(documentFor('irsa', [{ id: 'allwise.source', table: 'allwise_p3as_psd', columns: ['cntr', 'ra', 'dec', 'w1mpro'].map(column) }]), 'irsa')).status).toBe(200);
    expect((await put(documentFor('mirror', [{ id: 'allwise.source', table: 'aw.src', columns: ['w1mpro', 'dec', 'ra', 'cntr', 'ext_flg'].map(column) }]), 'mirror')).status).toBe(200);
  });
  afterAll(() => broker?.close());

  it('come in the first replica\'s own order, then what only later replicas have', async () => {
    const { data, errors } = await broker.graphql<{ dataset: { columns: { name: string }[]; replicas: { site: { id: string }; columns: { name: string }[] }[] } }>(
      '{ dataset(id: "allwise.source") { columns { name } replicas { site { id } columns { name } } } }');
    expect(errors).toBeUndefined();
    expect(data!.dataset.columns.map((c) => c.name)).toEqual(['cntr', 'ra', 'dec', 'w1mpro', 'ext_flg']);
    const mirror = data!.dataset.replicas.find((r) => r.site.id === 'mirror')!;
    expect(mirror.columns.map((c) => c.name)).toEqual(['w1mpro', 'dec', 'ra', 'cntr', 'ext_flg']);
  });
});
