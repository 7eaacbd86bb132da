/**
 * One broker before a pair of simulated TAP sites per case, both holding the case's dataset: the
 * first (`<case>-a`) preferred and forcing the case's faults, the second (`<case>-b`) honest.
 * Used where a fault must be met on purpose, not drawn (jobs-orphan, fleet-faults).
 */
import { expect } from 'vitest';
import { injectFaults, type FaultInjector, type ForcedFault } from '../sites/fault-injector.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type TapService } from '../sites/tap-service.js';
import { startBroker, type TestBroker } from './broker.js';
import { configFromYaml } from './config.js';
import { datasetTable } from './fleet-sites.js';

/** One simulated site of a pair, with its fault injector. */
export interface PairSite { site: SimSite; tap: TapService; faults: FaultInjector }

/** The broker and the sites by id (`<case>-a`, `<case>-b`). */
export interface FaultPairs { broker: TestBroker; sites: Map<string, PairSite>; close(): Promise<void> }

/**
 * Start the pairs of `cases` (each: the fleet dataset it holds and the preferred site's forced
 * faults) and a broker with `jobs` settings (a YAML flow mapping) harvesting each site with its
 * faults off; the faults are on when this returns.
 */
export async function startFaultPairs(federation: string, jobs: string, cases: Record<string, { dataset: number; forced: ForcedFault[] }>): Promise<FaultPairs> {
  const sites = new Map<string, PairSite>();
  const lines: string[] = [];
  const closeSites = async () => {
    for (const s of sites.values()) {
      await s.tap.close();
      await s.site.close();
    }
  };
  let broker: TestBroker | undefined;
  try {
    for (const [name, c] of Object.entries(cases)) {
      for (const role of ['a', 'b'] as const) {
        const site = new SimSite();
        const tap = mountTapService(site, { path: '/tap', tables: [datasetTable(c.dataset)], asyncDelayMs: 30 });
        const faults = injectFaults(site, { name: `${name}-${role}`, seed: 1, rates: {}, forced: role === 'a' ? c.forced : [] });
        faults.enabled = false;
        await site.start();
        sites.set(`${name}-${role}`, { site, tap, faults });
        lines.push(`  - { id: ${name}-${role}, name: ${name} ${role}, adapter: tap, url: "${site.url}/tap", preference: ${role === 'a' ? 2 : 1} }`);
      }
    }
    broker = await startBroker(configFromYaml(`
federation: { name: ${federation} }
registration: { open: true }
jobs: ${jobs}
sites:
${lines.join('\n')}
`));
    for (const id of sites.keys()) expect((await broker.harvest(id)).outcome, id).toBe('OK');
  } catch (err) {
    await broker?.close();
    await closeSites();
    throw err;
  }
  for (const s of sites.values()) s.faults.enabled = true;
  const started = broker;
  return {
    broker: started,
    sites,
    async close() {
      await started.close();
      await closeSites();
    },
  };
}
