/**
 * Hostile payloads of issue 9, generated (never stored), shared by the regression tests and
 * bench/attacks.ts so the bench replays exactly what the tests refuse.
 */
import type { ServerResponse } from 'node:http';
import { NS } from '../../adapters/ivoa/xml/namespaces.js';

/** The amplifier: every dataset with its replicas, their sites and columns, `aliases` times over. */
export function bigDatasetsQuery(aliases: number): string {
  const one = 'datasets(limit: 100000) { id title replicas { table rows site { id name status } columns { name unit ucd } } }';
  return `{ ${Array.from({ length: aliases }, (_, i) => `a${i}: ${one}`).join(' ')} }`;
}

/** An order-29 MOC of `cells` single cells spread over the sky (about 20 bytes a cell). */
export function order29Moc(cells: number): string {
  const step = (12n << 58n) / BigInt(cells + 1);
  const parts = ['29/'];
  for (let i = 1; i <= cells; i++) parts.push(String(step * BigInt(i)));
  return parts.join(' ');
}

/** A VOSI tableset whose one schema holds `levels` tables, each inside the previous one. */
export function deepTableset(levels: number): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<vosi:tableset xmlns:vosi="${NS.vosiTables}"><schema><name>cat</name>` +
    '<table type="table">'.repeat(levels) + '</table>'.repeat(levels) + '</schema></vosi:tableset>';
}

/** The honest UWS job document with `levels` nested elements inside its jobInfo. */
export function deepJob(honest: string, levels: number): string {
  const info = '<uws:jobInfo>' + '<x>'.repeat(levels) + '</x>'.repeat(levels) + '</uws:jobInfo>';
  return honest.replace('</uws:job>', `${info}</uws:job>`);
}

/** VOSI capabilities whose TAP base, availability and tables URLs all point under `base` (any host). */
export function capabilities(base: string): string {
  const cap = (id: string, url: string) => `<capability standardID="${id}"><interface xsi:type="vs:ParamHTTP"><accessURL use="full">${url}</accessURL></interface></capability>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
    ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">' +
    `<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess"><interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">${base}</accessURL></interface>` +
    '<language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version></language></capability>' +
    cap('ivo://ivoa.net/std/VOSI#availability', `${base}/availability`) +
    cap('ivo://ivoa.net/std/VOSI#tables-1.1', `${base}/tables`) +
    '</vosi:capabilities>'
  );
}

/**
 * Streams `total` bytes of `fill` lazily (with backpressure) and counts what the socket actually
 * took: a 300 MB answer is never built in memory, and the count shows how much the broker read.
 */
export function hugeBody(res: ServerResponse, total: number, counter: { written: number }, fill = 'x'): void {
  const chunk = Buffer.alloc(64 * 1024, fill);
  const pump = () => {
    while (counter.written < total) {
      counter.written += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

/** The honest tableset with only the tables named in `keep` (a hostile site "forgets" the rest). */
export const keepOnly = (keep: readonly string[]) => (honest: string) =>
  honest.replace(/<table\b[\s\S]*?<\/table>/g, (table) => (keep.some((name) => table.includes(`<name>${name}</name>`)) ? table : ''));
