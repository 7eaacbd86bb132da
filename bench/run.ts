/** `npm run bench`: every benchmark, each printed as ratios against a baseline from the same run. */
import { benchRegistry, printRegistry } from './registry-graphql.js';

const small = process.argv.includes('--small');
console.log(`Constellation benchmarks (${process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite'}${small ? ', small' : ''})\n`);
printRegistry(await benchRegistry(small ? { sites: 50, replicasPerSite: 100, datasets: 500, seconds: 3 } : { sites: 1000, replicasPerSite: 100, datasets: 20000, seconds: 10 }));
