/**
 * One simulated TAP site in its own process (so the bench measures only the broker), holding
 * a Gaia-like table of `rows` rows (argv[2], default 100,000); prints its URL and table as JSON
 * once the table is loaded, and exits when its stdin closes.
 */
import { SimSite } from '../test/sites/sim-site.js';
import { mountTapService, type SimTable } from '../test/sites/tap-service.js';

const rows = Number(process.argv[2] ?? 100_000);
const table: SimTable = {
  name: 'gaiadr3.gaia_source',
  rows,
  position: { ra: 'ra', dec: 'dec' },
  columns: [
    { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'parallax', datatype: 'double', unit: 'mas', ucd: 'pos.parallax' },
    { name: 'pmra', datatype: 'double', unit: 'mas/yr', ucd: 'pos.pm;pos.eq.ra' },
    { name: 'pmdec', datatype: 'double', unit: 'mas/yr', ucd: 'pos.pm;pos.eq.dec' },
    { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt.G' },
    { name: 'bp_rp', datatype: 'float', unit: 'mag', ucd: 'phot.color' },
    { name: 'designation', datatype: 'char', ucd: 'meta.id' },
  ],
};
const site = new SimSite();
mountTapService(site, { path: '/tap', tables: [table] });
// Not TAP: how many times a job's UWS document was asked for, so the bench can show what polling costs the site.
site.app.get('/bench/job-reads', async (request) => {
  const job = (request.query as { path?: string }).path;
  return { reads: site.seen.filter((r) => r.method === 'GET' && r.url.split('?')[0] === job).length };
});
await site.start();
// The service loads its table on the first query; do it now so no measured run pays for it.
const warm = await fetch(`${site.url}/tap/sync`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: `SELECT TOP 1 source_id FROM ${table.name}` }),
});
if (!warm.ok) throw new Error(`the simulated site failed its warm-up query: HTTP ${warm.status} ${await warm.text()}`);
await warm.arrayBuffer();
process.stdout.write(JSON.stringify({ url: site.url, table: table.name }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
