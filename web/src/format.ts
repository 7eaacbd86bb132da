/** Small display helpers shared by the pages. */

/** 1234567 → "1.23 M" (rows, bytes); null → "—". */
export function compact(n: number | null | undefined, unit = ''): string {
  if (n === null || n === undefined) return '—';
  const abs = Math.abs(n);
  const [div, suffix] = abs >= 1e12 ? [1e12, ' T'] : abs >= 1e9 ? [1e9, ' G'] : abs >= 1e6 ? [1e6, ' M'] : abs >= 1e3 ? [1e3, ' k'] : [1, ' '];
  const value = n / div;
  return `${div === 1 ? String(Number(value.toPrecision(3))) : value.toPrecision(3)}${suffix}${unit}`.trim();
}

/** An ISO timestamp as local date and time, or "—". */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A URL from a site's document, only when it is http(s): anything else (javascript:, data:) is shown as text, never linked. */
export function safeHttpUrl(url: string | null | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** A broker path such as /results/ID?format=csv, linked only when it is a path on this origin. */
export function localPath(path: string | null | undefined): string | undefined {
  return path && path.startsWith('/') && !path.startsWith('//') && !path.includes('\\') ? path : undefined;
}

/** Distinct colours for sites on the map, in order (readable on the dark sky). */
export const SITE_COLOURS = ['#ff9f1c', '#2ec4b6', '#e71d36', '#9b5de5', '#f7ff58', '#00bbf9', '#f15bb5', '#8ac926'];
