/** The all-sky map: a dataset's replica coverage MOCs, site by site in different colours (Mollweide). */
import { useEffect, useRef, useState } from 'preact/hooks';
import { describeError, gql } from '../api.js';
import { SITE_COLOURS, compact } from '../format.js';
import { WHOLE_SKY, readMoc, type DrawableMoc } from '../moc.js';
import { drawSky, type SkyLayer } from '../sky.js';

interface DatasetChoice { id: string; title: string | null }
interface ReplicaCoverage { site: { id: string; name: string }; table: string; rows: number | null; coverage: string | null; skyFraction: number | null }
interface LegendEntry { site: string; name: string; color: string; cells: number; pixels: number; table: string; rows: number | null; problem?: string; wholeSky: boolean }

/** Canvas size in pixels: 2:1, about one order-8 HEALPix cell per pixel. */
const WIDTH = 960;
const HEIGHT = 480;

/** The sky view; `dataset` preselects one (from #/sky?dataset=id). */
export function SkyPage({ dataset }: { dataset?: string }) {
  const [choices, setChoices] = useState<DatasetChoice[]>();
  const [chosen, setChosen] = useState(dataset ?? '');
  const [title, setTitle] = useState<string | null>(null);
  const [legend, setLegend] = useState<LegendEntry[]>();
  const [error, setError] = useState<string>();
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const canvas = useRef<HTMLCanvasElement>(null);
  const [replicas, setReplicas] = useState<ReplicaCoverage[]>();

  useEffect(() => {
    gql<{ datasets: DatasetChoice[] }>('{ datasets(limit: 5000) { id title } }').then((d) => {
      setChoices(d.datasets);
      if (!chosen && d.datasets.length) setChosen(d.datasets[0].id);
    }, (e: unknown) => setError(describeError(e)));
  }, []);

  useEffect(() => {
    if (!chosen) return;
    setReplicas(undefined);
    setError(undefined);
    gql<{ dataset: { title: string | null; replicas: ReplicaCoverage[] } | null }>(
      'query($id: ID!) { dataset(id: $id) { title replicas(limit: 200) { site { id name } table rows coverage skyFraction } } }',
      { id: chosen },
    ).then((d) => {
      if (!d.dataset) throw new Error(`no dataset ${chosen}`);
      setTitle(d.dataset.title);
      setReplicas(d.dataset.replicas);
    }).catch((e: unknown) => setError(describeError(e)));
  }, [chosen]);

  // Draw whenever the replicas or the sites shown change.
  useEffect(() => {
    if (!replicas || !canvas.current) return;
    const entries: LegendEntry[] = [];
    const layers: SkyLayer[] = [];
    replicas.forEach((r, i) => {
      const color = SITE_COLOURS[i % SITE_COLOURS.length];
      let moc: DrawableMoc = WHOLE_SKY;
      let problem: string | undefined;
      try {
        if (r.coverage !== null) moc = readMoc(r.coverage);
      } catch (e) {
        problem = `coverage not drawn: ${e instanceof Error ? e.message : String(e)}`;
      }
      entries.push({ site: r.site.id, name: r.site.name, color, cells: problem ? 0 : moc.cells, pixels: 0, table: r.table, rows: r.rows, problem, wholeSky: r.coverage === null });
      if (!problem && !hidden.has(r.site.id)) layers.push({ site: r.site.id, color, moc });
    });
    const painted = drawSky(canvas.current, layers);
    for (const e of entries) e.pixels = painted.get(e.site) ?? 0;
    setLegend(entries);
  }, [replicas, hidden]);

  const toggle = (site: string) => {
    const next = new Set(hidden);
    if (!next.delete(site)) next.add(site);
    setHidden(next);
  };

  return (
    <section>
      <h2>Sky coverage</h2>
      <label>
        Dataset{' '}
        <select value={chosen} onChange={(e) => setChosen((e.target as HTMLSelectElement).value)} data-control="dataset">
          {(choices ?? []).map((d) => <option key={d.id} value={d.id}>{d.id}</option>)}
        </select>
      </label>
      {title ? <p class="dataset-title">{title}</p> : null}
      {error ? <p class="error" role="alert">{error}</p> : null}
      <div class="sky">
        <canvas ref={canvas} width={WIDTH} height={HEIGHT} data-dataset={replicas ? chosen : undefined}
          data-drawn={legend && replicas ? 'true' : undefined} aria-label={`Coverage of ${chosen} by site, Mollweide projection, RA 0 at the centre increasing to the left`} />
        <p class="axes">RA 0° at the centre, increasing to the left; lines every 30°.</p>
      </div>
      {legend ? (
        <ul class="legend">
          {legend.length === 0 ? <li>No site holds this dataset.</li> : null}
          {legend.map((e) => (
            <li key={e.site} data-site={e.site} data-color={e.color} data-cells={e.cells} data-pixels={e.pixels}>
              <label>
                <input type="checkbox" checked={!hidden.has(e.site)} onChange={() => toggle(e.site)} />
                <svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" fill={e.color} /></svg>{' '}
                <strong>{e.name}</strong> <code>{e.site}</code>: <code>{e.table}</code>, {compact(e.rows)} rows,{' '}
                {e.wholeSky ? 'no coverage given (whole sky assumed)' : `${e.cells} MOC cell(s)`}
              </label>
              {e.problem ? <div class="error">{e.problem}</div> : null}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
