/**
 * The soak's chart: the broker's RSS (and its V8 heap after forced GCs) and event-loop delay
 * (p99 and max of each sampling interval) over time, the warm-up shaded, drawn as SVG and
 * rendered to PNG by a headless Chromium (test/support/chromium.ts, Debian's chromium driven by
 * playwright-core).
 */
import { writeFile } from 'node:fs/promises';
import { chromiumMissing, launchChromium } from '../test/support/chromium.js';
import type { Sample } from './soak-sampler.js';

const W = 1100;
const PANEL_H = 300;
const M = { left: 70, right: 30, top: 40, bottom: 40 };

interface Series {
  label: string;
  colour: string;
  points: { x: number; y: number }[];
  /** Dots only (sparse series). */
  dots?: boolean;
}

/** One panel: axes, grid, the warm-up band, and its series; y from 0 to the largest value. */
function panel(title: string, unit: string, series: readonly Series[], xMax: number, warmup: number, loadEnd: number, top: number, fit?: { a: number; b: number; from: number }, yCap?: number, zoom = false): string {
  const h = PANEL_H - M.top - M.bottom;
  const w = W - M.left - M.right;
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const highest = Math.max(1e-9, ...ys);
  // A cap keeps a few starved intervals from flattening the rest; what is above it is drawn at the top edge.
  const yMax = (yCap !== undefined && highest > yCap ? yCap : highest) * (zoom ? 1.02 : 1.1);
  // Zoomed: the axis starts near the lowest value, so a slow growth shows.
  const yMin = zoom && ys.length ? Math.min(...ys) * 0.98 : 0;
  const X = (x: number) => M.left + (x / Math.max(xMax, 1e-9)) * w;
  const Y = (y: number) => top + M.top + h - ((Math.min(y, yMax) - yMin) / (yMax - yMin)) * h;
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${top + 22}" font-size="16" font-weight="bold">${title}</text>`);
  out.push(`<rect x="${X(0)}" y="${top + M.top}" width="${X(Math.min(warmup, xMax)) - X(0)}" height="${h}" fill="#eee"/>`);
  out.push(`<text x="${X(0) + 4}" y="${top + M.top + 14}" font-size="12" fill="#666">warm-up</text>`);
  if (loadEnd < xMax) {
    out.push(`<rect x="${X(loadEnd)}" y="${top + M.top}" width="${X(xMax) - X(loadEnd)}" height="${h}" fill="#f4f4f4"/>`);
    out.push(`<text x="${X(loadEnd) + 4}" y="${top + M.top + 14}" font-size="12" fill="#666">drain</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = yMin + ((yMax - yMin) / 5) * i;
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${Y(v) + 4}" font-size="11" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}</text>`);
  }
  const step = xMax > 20 ? 5 : xMax > 5 ? 1 : 0.5;
  for (let x = 0; x <= xMax + 1e-9; x += step) {
    out.push(`<line x1="${X(x)}" x2="${X(x)}" y1="${top + M.top + h}" y2="${top + M.top + h + 4}" stroke="#000"/>`);
    out.push(`<text x="${X(x)}" y="${top + M.top + h + 18}" font-size="11" text-anchor="middle">${x}</text>`);
  }
  out.push(`<text x="${W / 2}" y="${top + PANEL_H - 4}" font-size="12" text-anchor="middle">minutes since the load started</text>`);
  out.push(`<text x="16" y="${top + M.top + h / 2}" font-size="12" transform="rotate(-90 16 ${top + M.top + h / 2})" text-anchor="middle">${unit}</text>`);
  out.push(`<rect x="${M.left}" y="${top + M.top}" width="${w}" height="${h}" fill="none" stroke="#000"/>`);
  series.forEach((s, i) => {
    if (s.dots) for (const p of s.points) out.push(`<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="3" fill="${s.colour}"/>`);
    else out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="1.5" points="${s.points.map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ')}"/>`);
    // The legend on the title's line, clear of the curves.
    const lx = 330 + i * 230;
    out.push(`<rect x="${lx}" y="${top + 17}" width="14" height="4" fill="${s.colour}"/><text x="${lx + 18}" y="${top + 22}" font-size="12">${s.label}</text>`);
  });
  if (yCap !== undefined && highest > yCap) {
    out.push(`<text x="${W - M.right - 8}" y="${top + M.top + 30}" font-size="12" text-anchor="end" fill="#b00">axis cut at ${(yCap * 1.1).toFixed(0)} ${unit}: the highest point, ${highest.toFixed(0)} ${unit}, is drawn at the top edge</text>`);
  }
  if (fit) {
    const y0 = fit.a + fit.b * fit.from;
    const y1 = fit.a + fit.b * loadEnd;
    out.push(`<line x1="${X(fit.from)}" y1="${Y(y0)}" x2="${X(loadEnd)}" y2="${Y(y1)}" stroke="#000" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${W - M.right - 8}" y="${top + M.top + h - 8}" font-size="12" text-anchor="end">dashed: RSS fitted from the warm-up's end to the load's end, ${fit.b >= 0 ? '+' : ''}${fit.b.toFixed(3)} MB/min</text>`);
  }
  return out.join('\n');
}

/** The chart as SVG. `fit`: the RSS line fitted from the warm-up's end to the load's end (MB = a + b·minutes). */
export function soakSvg(samples: readonly Sample[], warmupMs: number, loadEndMs: number, caption: string, fit?: { a: number; b: number }): string {
  const min = (t: number) => t / 60_000;
  const xMax = Math.max(min(samples.at(-1)?.t ?? 0), min(warmupMs));
  const mb = (b: number) => b / 1048576;
  const rss: Series[] = [
    { label: 'RSS (MB)', colour: '#1f77b4', points: samples.map((s) => ({ x: min(s.t), y: mb(s.rssBytes) })) },
    { label: 'V8 heap used (MB)', colour: '#aec7e8', points: samples.map((s) => ({ x: min(s.t), y: mb(s.heapUsedBytes) })) },
    { label: 'V8 heap after a forced GC (MB)', colour: '#d62728', dots: true, points: samples.filter((s) => s.heapAfterGcBytes !== undefined).map((s) => ({ x: min(s.t), y: mb(s.heapAfterGcBytes ?? 0) })) },
  ];
  const lag: Series[] = [
    { label: 'p99 per sampling interval (ms)', colour: '#ff7f0e', points: samples.map((s) => ({ x: min(s.t), y: s.lagP99 * 1000 })) },
    { label: 'p50 per sampling interval (ms)', colour: '#2ca02c', points: samples.map((s) => ({ x: min(s.t), y: s.lagP50 * 1000 })) },
  ];
  const gcOnly: Series[] = [{ label: 'V8 heap after a forced GC (MB), axis zoomed', colour: '#d62728', points: rss[2].points }];
  const height = 3 * PANEL_H + 40;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${M.left}" y="20" font-size="13" fill="#333">${escapeXml(caption)}</text>
${panel('Broker memory', 'MB', rss, xMax, min(warmupMs), min(loadEndMs), 30, fit ? { ...fit, from: min(warmupMs) } : undefined)}
${panel('Event-loop delay', 'ms', lag, xMax, min(warmupMs), min(loadEndMs), 30 + PANEL_H, undefined, lagCap(samples))}
${gcOnly[0].points.length > 1 ? panel('Heap left after each forced GC', 'MB', gcOnly, xMax, min(warmupMs), min(loadEndMs), 30 + 2 * PANEL_H, undefined, undefined, true) : ''}
</svg>`;
}

/** The delay axis's cap: four times the 95th percentile of the interval p99s, at least 100 ms. */
function lagCap(samples: readonly Sample[]): number {
  const p99s = samples.map((s) => s.lagP99 * 1000).sort((a, b) => a - b);
  const p95 = p99s[Math.floor(0.95 * (p99s.length - 1))] ?? 0;
  return Math.max(100, 4 * p95);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Write the chart as `<path>.svg` and, when Chromium is installed, `<path>.png`; returns the PNG's path or why there is none. */
export async function writeChart(path: string, svg: string): Promise<{ svg: string; png?: string; why?: string }> {
  await writeFile(`${path}.svg`, svg);
  const missing = chromiumMissing();
  if (missing) return { svg: `${path}.svg`, why: missing };
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: W, height: 3 * PANEL_H + 40 } });
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path: `${path}.png`, clip: { x: 0, y: 0, width: W, height: 3 * PANEL_H + 40 } });
    return { svg: `${path}.svg`, png: `${path}.png` };
  } finally {
    await browser.close();
  }
}
