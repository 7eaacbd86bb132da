/** `npm run bench`: every benchmark, each printed as ratios against a baseline from the same run. */
import { benchAttacks, printAttacks } from './attacks.js';
import { benchE2eQuery, printE2eQuery } from './e2e-query.js';
import { benchHarvest, printHarvest } from './harvest.js';
import { benchIdentity, printIdentity } from './identity.js';
import { benchPlanner, printPlanner } from './planner.js';
import { benchRegistry, printRegistry } from './registry-graphql.js';
import { benchStart, printStart } from './start.js';
import { benchVotable, printVotable } from './votable.js';

const small = process.argv.includes('--small');
console.log(`Constellation benchmarks (${process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite'}${small ? ', small' : ''})\n`);
printStart(await benchStart(small ? 2 : 5));
console.log();
printRegistry(await benchRegistry(small ? { sites: 50, replicasPerSite: 100, datasets: 500, seconds: 3 } : { sites: 1000, replicasPerSite: 100, datasets: 20000, seconds: 10 }));
console.log();
printIdentity(await benchIdentity(small ? { sites: 20, seconds: 2 } : { sites: 200, seconds: 5 }));
console.log();
printVotable(await benchVotable(small ? { rows: 100_000 } : { rows: 1_000_000 }));
console.log();
printHarvest(await benchHarvest(small ? 20 : 200));
console.log();
printPlanner(await benchPlanner(small ? { sites: 100, replicasPerSite: 100, datasets: 500, plans: 2_000 } : {}));
console.log();
printE2eQuery(await benchE2eQuery(small ? { rows: 20_000, runs: 3 } : { rows: 100_000, runs: 10 }));
console.log();
printAttacks(await benchAttacks({ small }));
