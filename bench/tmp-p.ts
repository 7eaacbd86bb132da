import { openDatabase } from '../broker/db/database.js';
import { buildApp } from '../broker/app.js';
import { parseConfig } from '../broker/config/load.js';
import { migrate } from '../registry/store/migrate.js';
import { SMoc } from '../registry/coverage/moc.js';
import { random } from './support.js';
const database = await openDatabase({ dataDir: '/tmp/p' + Date.now() }, { max: 20 });
await migrate(database.pool);
const app = await buildApp(parseConfig('federation: { name: b }\nregistration: { open: true }\nsites: []\n', { LOG_LEVEL: 'error', CONSTELLATION_CACHE_MB: '0' }), { database, prepared: true, logger: false });
const rnd = random(1);
for (let i = 0; i < 50; i++) {
  const datasets = Array.from({ length: 100 }, (_, j) => j + Math.floor(rnd() * 400)).filter((v, k, a) => a.indexOf(v) === k).map((d) => ({ id: `s${Math.floor(d/100)}.t${d%100}`, service: 'tap', table: `s.t${d}`, rows: 5, coverage: rnd() < 0.05 ? '0/0-11' : SMoc.fromCone(rnd()*360, Math.asin(2*rnd()-1)*180/Math.PI, 2+rnd()*13, 5).toAscii(), access: { public: true } }));
  await app.services.publisher.publish(`s${i}`, { schemaVersion: 1, site: { id: `s${i}`, name: 'x', platform: 'tap' }, services: [{ id: 'tap', type: 'tap', url: 'https://x.org/tap' }], datasets, compute: [], images: [], asOf: '2026-01-01T00:00:00Z' }, 'publish');
}
const pool = database.pool as any;
const orig = pool.connect.bind(pool);
pool.connect = async () => { const c = await orig(); const q = c.query.bind(c); c.query = async (t: string, v: unknown[]) => { const s = performance.now(); const r = await q(t, v); console.error((performance.now() - s).toFixed(1), 'ms', t.slice(0, 80).replace(/\s+/g, ' ')); return r; }; return c; };
const query = `query Region($ra: Float!, $dec: Float!) { datasets(filter: { region: { cone: { ra: $ra, dec: $dec, radiusDeg: 1 } } }, limit: 50) { id title replicas { site { id status } table rows rowBytes } } }`;
for (let k = 0; k < 2; k++) {
  const s = performance.now();
  const r = await app.inject({ method: 'POST', url: '/graphql', payload: { query, variables: { ra: 180, dec: 20 } } });
  console.error('total', (performance.now() - s).toFixed(1), r.body.length);
}
process.exit(0);
