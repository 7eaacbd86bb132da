/**
 * Drawing coverage MOCs on an all-sky Mollweide canvas. Each canvas pixel is tested through
 * the HEALPix cell (about one pixel wide) under its centre: it is painted in a site's colour when
 * that cell meets the site's MOC, so a coverage smaller than a pixel still shows as one pixel.
 */
import { nestIndex, radecToVec, vecToCell, vec3 } from '../../registry/coverage/healpix.js';
import { RANGE_ORDER, touches, type DrawableMoc } from './moc.js';
import { fromCanvas, project, toCanvas, unproject } from './mollweide.js';

/** One site's layer. */
export interface SkyLayer {
  site: string;
  /** #rrggbb */
  color: string;
  moc: DrawableMoc;
}

/** Background inside the sky ellipse (tests read it back to tell an empty pixel). */
export const SKY_BACKGROUND = '#0b1226';
/** How strongly a layer's colour covers what is under it. */
const LAYER_ALPHA = 0.7;

/** Parse #rrggbb. */
export function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** The HEALPix order whose cells are about one pixel wide on a canvas `width` pixels across (cell side ≈ 58.6° / 2^order). */
export function pixelOrder(width: number): number {
  return Math.min(RANGE_ORDER, Math.max(0, Math.ceil(Math.log2(58.6 / (360 / width)))));
}

/** Draw `layers` (in order, later over earlier) and a 30° graticule; returns the pixels painted per site. */
export function drawSky(canvas: HTMLCanvasElement, layers: SkyLayer[]): Map<string, number> {
  const { width, height } = canvas;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser gives no 2D canvas');
  const image = ctx.createImageData(width, height);
  const data = image.data;
  const order = pixelOrder(width);
  const span = 4 ** (RANGE_ORDER - order);
  const background = rgb(SKY_BACKGROUND);
  const colours = layers.map((l) => rgb(l.color));
  const painted = new Map(layers.map((l) => [l.site, 0]));
  const v = vec3();
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      const p = fromCanvas(px, py, width, height);
      const pos = unproject(p.x, p.y);
      if (!pos) continue; // outside the sky: left transparent
      const { f, x, y } = vecToCell(order, radecToVec(pos.ra, pos.dec, v));
      const start = nestIndex(order, f, x, y) * span;
      let [r, g, b] = background;
      layers.forEach((layer, i) => {
        if (!touches(layer.moc, start, start + span)) return;
        const [lr, lg, lb] = colours[i];
        r = r * (1 - LAYER_ALPHA) + lr * LAYER_ALPHA;
        g = g * (1 - LAYER_ALPHA) + lg * LAYER_ALPHA;
        b = b * (1 - LAYER_ALPHA) + lb * LAYER_ALPHA;
        painted.set(layer.site, (painted.get(layer.site) ?? 0) + 1);
      });
      const o = 4 * (py * width + px);
      data[o] = r;
      data[o + 1] = g;
      data[o + 2] = b;
      data[o + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
  drawGraticule(ctx, width, height);
  return painted;
}

/** Lines of declination and right ascension every 30°, thin and faint over the coverage. */
function drawGraticule(ctx: CanvasRenderingContext2D, width: number, height: number): void {
  ctx.save();
  ctx.strokeStyle = 'rgba(255,255,255,0.18)';
  ctx.lineWidth = 1;
  const line = (points: [number, number][]) => {
    ctx.beginPath();
    points.forEach(([ra, dec], i) => {
      const { px, py } = toCanvas(project(ra, dec), width, height);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.stroke();
  };
  const steps = (from: number, to: number, n: number) => Array.from({ length: n + 1 }, (_, i) => from + ((to - from) * i) / n);
  for (let dec = -60; dec <= 60; dec += 30) line(steps(180.0001, 539.9999, 120).map((ra) => [ra, dec]));
  for (let ra = 0; ra < 360; ra += 30) line(steps(-90, 90, 90).map((dec) => [ra === 180 ? 180.0001 : ra, dec]));
  line(steps(-90, 90, 90).map((dec) => [179.9999, dec]));
  ctx.restore();
}
