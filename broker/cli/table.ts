/** Plain-text tables for the CLI: aligned columns, numbers right-aligned, every cell printable. */
import { printableInline } from './terminal.js';

/** Render `rows` under `headers` as an aligned text table. */
export function formatTable(headers: string[], rows: (string | number | null | undefined)[][]): string {
  // Cells may hold a site's own words (names, image references): never raw control characters on a terminal.
  const cells = rows.map((r) => r.map((v) => (v === null || v === undefined ? '' : typeof v === 'number' ? v.toLocaleString('en-US') : printableInline(v))));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => r[i] === null || r[i] === undefined || typeof r[i] === 'number'));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) =>
    values.map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n') + '\n';
}
