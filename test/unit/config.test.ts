import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../broker/config/load.js';
import { ConstellationError } from '../../registry/model/errors.js';

function problems(yaml: string, env = {}): { path: string; rule: string; message: string }[] {
  try {
    parseConfig(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConstellationError);
    return (err as ConstellationError).violations;
  }
  throw new Error('expected the config to be rejected');
}

const SITE = `{ id: esa, name: ESA, adapter: esa, url: "https://gea.esac.esa.int/tap-server" }`;

describe('federation.yaml checks', () => {
  it('accepts a minimal federation and applies defaults from the environment', () => {
    const config = parseConfig(`federation: { name: x }\nsites: [${SITE}]\n`, { PORT: '4100', CONSTELLATION_DATA: '/tmp/cdata' });
    expect(config.server).toEqual({ host: '127.0.0.1', port: 4100, trustProxy: false });
    expect(config.database).toEqual({ url: undefined, dataDir: '/tmp/cdata' });
    expect(config.sites[0].credentials).toEqual({ strategy: 'anonymous' });
    expect(Object.isFrozen(config.sites[0])).toBe(true);
  });

  it('names YAML syntax errors by line and column', () => {
    const [p] = problems('federation: { name: x\nsites: [\n');
    expect(p.rule).toBe('yaml');
    expect(p.path).toMatch(/^line \d+, column \d+$/);
  });

  it('names unknown keys, wrong types and enum violations with their YAML path and line', () => {
    const v = problems(`federation: { name: x }\nsites:\n  - ${SITE}\n  - { id: two, name: Two, adapter: hubble, url: "https://x.org", colour: 1 }\n`);
    expect(v.map((x) => x.path)).toEqual(expect.arrayContaining(['sites[1].adapter (line 4)', 'sites[1].colour (line 4)']));
    expect(v.find((x) => x.path.startsWith('sites[1].adapter'))!.message).toMatch(/must be one of "rsp"/);
  });

  it('rejects duplicate site ids, bad cron schedules and two tables mapped to one dataset', () => {
    const v = problems(`federation: { name: x }
sites:
  - ${SITE}
  - { id: esa, name: again, adapter: esa, url: "https://x.org", harvest: { schedule: "61 * * * *" },
      datasets: { a.b: { id: c.d }, e.f: { id: c.d } } }
`);
    expect(v.map((x) => x.rule).sort()).toEqual(['cron', 'unique', 'unique']);
    expect(v.find((x) => x.rule === 'cron')!.path).toBe('sites[1].harvest.schedule (line 4)');
  });

  it('takes a table\'s coverage as MOC ASCII and names one that does not parse, with its path and line', () => {
    const ok = parseConfig(`federation: { name: x }
sites:
  - { id: t, name: T, adapter: tap, url: "https://t.org/tap", datasets: { s.g: { id: gaia.src, coverage: "3/1-4 5/77" } } }
`, {});
    expect(ok.sites[0].datasets['s.g'].coverage).toBe('3/1-4 5/77');
    const v = problems(`federation: { name: x }
sites:
  - { id: t, name: T, adapter: tap, url: "https://t.org/tap",
      datasets: { s.g: { id: gaia.src, coverage: "3/1-4 banana" } } }
`);
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ rule: 'moc', path: expect.stringMatching(/^sites\[0\]\.datasets\.s\.g\.coverage \(line 4\)$/) });
    expect(v[0].message).toMatch(/is not a valid MOC/);
  });

  it('rejects a bad PORT and body limit from the environment', () => {
    expect(() => parseConfig(`federation: { name: x }\nsites: []\n`, { PORT: 'eighty' })).toThrow(/PORT must be an integer/);
    expect(() => parseConfig(`federation: { name: x }\nsites: []\n`, { CONSTELLATION_BODY_LIMIT: '10' })).toThrow(/CONSTELLATION_BODY_LIMIT/);
  });

  it('fills identity defaults, and names operators of unknown sites and token strategies without a provider', () => {
    const config = parseConfig(`federation: { name: x }\nidentity: { issuer: "https://iam.example.org/", audience: constellation }\nsites: [${SITE}]\n`);
    expect(config.identity).toEqual({
      issuer: 'https://iam.example.org/', audience: 'constellation', scopes: 'openid profile email offline_access', groupsClaim: 'groups',
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'], clockSkewS: 30, roles: { admin: [], operators: {} }, anonymous: 'submit',
    });
    const v = problems(`federation: { name: x }
identity: { issuer: "https://iam.example.org/", audience: c, clockSkewS: 300, algorithms: [HS256], roles: { operators: { nowhere: [ops] } } }
sites: [${SITE}]
`);
    expect(v.map((x) => x.path)).toEqual(expect.arrayContaining([
      expect.stringMatching(/^identity\.clockSkewS/), expect.stringMatching(/^identity\.algorithms\[0\]/), expect.stringMatching(/^identity\.roles\.operators\.nowhere/),
    ]));
    const exchange = problems(`federation: { name: x }\nsites:\n  - { id: c, name: C, adapter: canfar, url: "https://ws-uv.canfar.net", credentials: { strategy: token-exchange } }\n`);
    expect(exchange[0]).toMatchObject({ rule: 'identity' });
    expect(exchange[0].message).toMatch(/needs the identity section/);
  });

  it('reads which proxies to trust from CONSTELLATION_TRUST_PROXY', () => {
    const trust = (v?: string) => parseConfig(`federation: { name: x }\nsites: []\n`, v === undefined ? {} : { CONSTELLATION_TRUST_PROXY: v }).server.trustProxy;
    expect([trust(), trust('false'), trust('true'), trust('2'), trust('10.0.0.1,10.0.0.2')]).toEqual([false, false, true, 2, '10.0.0.1,10.0.0.2']);
  });
});
