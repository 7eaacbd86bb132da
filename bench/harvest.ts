/**
 * Harvest of 200 simulated TAP sites (VOSI capabilities, tables, availability; 20 tables of
 * 20 columns each): total time and the broker's peak memory. Baseline, in the same run: the
 * same documents fetched with plain fetch at the same concurrency, without parsing or storing.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { HttpClient } from '../adapters/http.js';
import { parseConfig } from '../broker/config/load.js';
import { openDatabase } from '../broker/db/database.js';
import { createServices } from '../broker/factory.js';
import { registerConfiguredSites } from '../broker/services/seeds.js';
import { migrate } from '../registry/store/migrate.js';
import { packagePath } from '../registry/paths.js';

export interface HarvestBenchResult {
  sites: number;
  ok: number;
  harvestSeconds: number;
  baselineSeconds: number;
  ratio: number;
  peakRssMb: number;
  startRssMb: number;
}

async function startFleet(count: number): Promise<{ urls: string[]; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', packagePath('bench/sim-fleet.ts'), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`simulated fleet exited with ${code}`)));
  });
  return { urls: JSON.parse(line) as string[], stop: () => child.stdin!.end() };
}

/** Harvest `count` simulated sites with `concurrency` at a time. */
export async function benchHarvest(count = 200, concurrency = 8): Promise<HarvestBenchResult> {
  const fleet = await startFleet(count);
  const dataDir = await mkdtemp(join(tmpdir(), 'constellation-hbench-'));
  // Always embedded: the bench must not write into a shared server database.
  const database = await openDatabase({ dataDir });
  try {
    // Baseline: fetch what a harvest fetches, nothing more.
    let started = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < fleet.urls.length) {
        const base = `${fleet.urls[next++]}/tap`;
        for (const path of ['capabilities', 'availability', 'tables']) await (await fetch(`${base}/${path}`)).arrayBuffer();
      }
    }));
    const baselineSeconds = (Date.now() - started) / 1000;

    const yaml = `federation: { name: harvest-bench }\nharvest: { concurrency: ${concurrency}, jitterS: 0, timeoutS: 60 }\nsites:\n` +
      fleet.urls.map((u, i) => `  - { id: sim-${i}, name: Sim ${i}, adapter: tap, url: "${u}/tap" }`).join('\n') + '\n';
    const config = parseConfig(yaml, { LOG_LEVEL: 'error' });
    await migrate(database.pool);
    const http = new HttpClient();
    const services = createServices(config, database.pool, database.kind, { http });
    await registerConfiguredSites(database.pool, config, services.publisher);
    global.gc?.();
    const startRss = process.memoryUsage().rss;
    let peak = startRss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    started = Date.now();
    const runs = await services.harvester.harvestAll('bench');
    const harvestSeconds = (Date.now() - started) / 1000;
    clearInterval(sampler);
    await http.close();
    return {
      sites: count,
      ok: runs.filter((r) => r.outcome === 'OK').length,
      harvestSeconds,
      baselineSeconds,
      ratio: harvestSeconds / baselineSeconds,
      peakRssMb: peak / 2 ** 20,
      startRssMb: startRss / 2 ** 20,
    };
  } finally {
    fleet.stop();
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Print one result the way the bench runner does. */
export function printHarvest(r: HarvestBenchResult): void {
  console.log(`harvest: ${r.ok}/${r.sites} simulated TAP sites harvested`);
  console.log(`  plain fetch of the same documents   ${r.baselineSeconds.toFixed(2)} s  (baseline 1.00)`);
  console.log(`  full harvest (parse, validate, store) ${r.harvestSeconds.toFixed(2)} s  ratio ${r.ratio.toFixed(2)}`);
  console.log(`  broker RSS ${r.startRssMb.toFixed(0)} MB before, peak ${r.peakRssMb.toFixed(0)} MB`);
}

if (import.meta.url === `file://${process.argv[1]}`) printHarvest(await benchHarvest(Number(process.argv[2] ?? 200)));
