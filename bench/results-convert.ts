/**
 * The CSV/JSON conversion alone, in this process, from a BINARY2 file (no HTTP): for profiling
 * the per-row writer (`node --cpu-prof --import tsx bench/results-convert.ts [rows] [csv|json]`).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeVOTable } from '../adapters/ivoa/votable/index.js';
import { toText } from '../broker/jobs/to-text.js';
import { RESULT_TABLE, resultRows } from './results.js';

const rows = Number(process.argv[2] ?? 200_000);
const format = process.argv[3] === 'json' ? 'json' : 'csv';
const file = join(tmpdir(), `results-convert-${rows}.vot`);
if (!(await stat(file).catch(() => undefined))) {
  await pipeline(Readable.from(writeVOTable(RESULT_TABLE, resultRows(rows), { serialization: 'BINARY2', infos: [{ name: 'QUERY_STATUS', value: 'OK' }] })), createWriteStream(file));
}
for (let round = 0; round < 3; round++) {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  for await (const chunk of toText(createReadStream(file, { highWaterMark: 64 * 1024 }), format)) bytes += chunk.byteLength;
  const used = process.cpuUsage(cpu);
  console.log(`${format} ${rows} rows: ${(performance.now() - t0).toFixed(0)} ms wall, ${((used.user + used.system) / 1000).toFixed(0)} ms cpu, ${(bytes / 1e6).toFixed(1)} MB`);
}
