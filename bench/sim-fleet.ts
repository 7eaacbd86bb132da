/** A fleet of simulated TAP sites in their own process (so the bench measures only the broker); prints their URLs as JSON. */
import { SimSite } from '../test/sites/sim-site.js';
import { mountTapService, type SimTable } from '../test/sites/tap-service.js';

const count = Number(process.argv[2] ?? 200);
const tables: SimTable[] = Array.from({ length: 20 }, (_, i) => ({
  name: `survey${i % 5}.table${i}`,
  rows: 1000,
  position: { ra: 'ra', dec: 'dec' },
  columns: [
    { name: 'id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    ...Array.from({ length: 17 }, (_, c) => ({ name: `mag_${c}`, datatype: 'float' as const, unit: 'mag', ucd: 'phot.mag' })),
  ],
}));
const sites: SimSite[] = [];
for (let i = 0; i < count; i++) {
  const site = new SimSite();
  mountTapService(site, { path: '/tap', tables, maxRec: 100000 });
  sites.push(await site.start());
}
process.stdout.write(JSON.stringify(sites.map((s) => s.url)) + '\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
