/** DALI 1.1 examples (`/tap/examples`): queries that run against what the federation publishes now. */
import type { TapSchemaEntry } from './catalogue.js';
import { xmlEscape } from './xml.js';

/** One example: an id (the fragment), a title, what it shows, and the ADQL. */
export interface TapExample {
  id: string;
  name: string;
  description: string;
  query: string;
  table?: string;
}

/** Examples for the published `schemas`: TAP_SCHEMA's always, and one of each kind over the first dataset that fits. */
export function examplesFor(schemas: readonly TapSchemaEntry[]): TapExample[] {
  const datasets = schemas.filter((s) => s.name !== 'TAP_SCHEMA').flatMap((s) => s.tables);
  const out: TapExample[] = [
    { id: 'tables', name: 'The tables of the federation', description: 'Every canonical dataset this service publishes, from TAP_SCHEMA.', query: 'SELECT schema_name, table_name, description FROM TAP_SCHEMA.tables ORDER BY table_index' },
  ];
  const first = datasets[0];
  if (first) {
    out.push({ id: 'columns', name: `The columns of ${first.name}`, description: 'Canonical column names, types, units and UCDs of one dataset.', query: `SELECT column_name, datatype, unit, ucd FROM TAP_SCHEMA.columns WHERE table_name = '${first.name.replace(/'/g, "''")}'`, table: first.name });
    out.push({ id: 'first-rows', name: `A few rows of ${first.name}`, description: 'The query runs at a site that holds the dataset, in its own table and column names.', query: `SELECT TOP 10 * FROM ${first.name}`, table: first.name });
  }
  const positioned = datasets.find((t) => posColumns(t) !== undefined);
  if (positioned) {
    const [ra, dec] = posColumns(positioned)!;
    out.push({
      id: 'cone',
      name: `A cone search in ${positioned.name}`,
      description: 'Rows within 0.1 degrees of a position; the planner sends it to a site whose coverage holds the cone.',
      query: `SELECT TOP 100 * FROM ${positioned.name} WHERE 1 = CONTAINS(POINT('ICRS', ${ra}, ${dec}), CIRCLE('ICRS', 180, 0, 0.1))`,
      table: positioned.name,
    });
    out.push({ id: 'count', name: `Counting rows of ${positioned.name} in a cone`, description: 'An aggregate runs at the site; only its answer comes back.', query: `SELECT COUNT(*) AS n FROM ${positioned.name} WHERE 1 = CONTAINS(POINT('ICRS', ${ra}, ${dec}), CIRCLE('ICRS', 180, 0, 1))`, table: positioned.name });
  }
  return out;
}

/** The main RA and Dec columns of a table (by UCD), when it has both. */
function posColumns(t: TapSchemaEntry['tables'][number]): [string, string] | undefined {
  const find = (ucd: string) => t.columns.find((c) => (c.ucd ?? '').toLowerCase().split(';').includes(ucd) && /meta\.main/i.test(c.ucd ?? ''))
    ?? t.columns.find((c) => (c.ucd ?? '').toLowerCase().split(';').includes(ucd));
  const ra = find('pos.eq.ra');
  const dec = find('pos.eq.dec');
  return ra && dec && /^[a-z][a-z0-9_]*$/.test(ra.name) && /^[a-z][a-z0-9_]*$/.test(dec.name) ? [ra.name, dec.name] : undefined;
}

/** The examples document: XHTML with the RDFa DALI 1.1 asks for. */
export function examplesXhtml(examples: readonly TapExample[]): string {
  const items = examples
    .map((e) =>
      `<div typeof="example" id="${e.id}" resource="#${e.id}">\n` +
      `<h2 property="name">${xmlEscape(e.name)}</h2>\n` +
      `<p>${xmlEscape(e.description)}</p>\n` +
      `<pre class="dali-example-query" property="query">${xmlEscape(e.query)}</pre>\n` +
      (e.table ? `<p>Table: <span property="table">${xmlEscape(e.table)}</span></p>\n` : '') +
      '</div>')
    .join('\n');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML+RDFa 1.1//EN" "http://www.w3.org/MarkUp/DTD/xhtml-rdfa-2.dtd">\n' +
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n<head><title>Constellation TAP examples</title></head>\n' +
    '<body vocab="http://www.ivoa.net/rdf/examples#">\n<h1>Example queries for the federation\'s TAP service</h1>\n' +
    items +
    '\n</body>\n</html>\n'
  );
}
