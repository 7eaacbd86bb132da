import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';

// limit 100,000: 10,000 sites × 100,000 replicas: far over the cost limit; 1 × 1 × 1 far under.
const NESTED = 'query($l: Int!) { sites(limit: $l) { replicas(limit: $l) { table } } datasets(limit: 1) { id columns(limit: $l) { name } } }';
const LITERAL = '{ sites(limit: 10000) { replicas(limit: 100000) { table } } }';

describe(`the guard's verdicts kept per query text (${backend})`, () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
  });
  afterAll(() => broker?.close());

  it('judges a text whose limits come from variables again for every request', async () => {
    for (const [l, refused] of [[1, false], [100_000, true], [1, false], [100_000, true]] as const) {
      const answer = await broker.graphql(NESTED, { l });
      expect(answer.status, JSON.stringify(answer)).toBe(refused ? 400 : 200);
      if (refused) expect(answer.errors?.[0].extensions).toMatchObject({ code: 'CONSTELLATION_E_QUERY_TOO_COSTLY', measure: 'cost' });
      else expect(answer.errors).toBeUndefined();
    }
  });

  it('refuses a repeated text with literal limits every time, with the same measure', async () => {
    for (let k = 0; k < 3; k++) {
      const answer = await broker.graphql(LITERAL);
      expect(answer.errors?.[0].extensions).toMatchObject({ code: 'CONSTELLATION_E_QUERY_TOO_COSTLY', measure: 'cost' });
    }
  });
});
