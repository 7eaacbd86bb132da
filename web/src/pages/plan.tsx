/** The plan explorer: ask the planner where some work would run, and see its verdict on every site with reasons and cost terms. */
import { useEffect, useState } from 'preact/hooks';
import { describeError, gql } from '../api.js';
import { compact } from '../format.js';

interface Term { name: string; kind: 'COST' | 'FACTOR'; value: number; unit: string; weight: number; weightUnit: string; contribution: number }
interface Candidate {
  site: { id: string; name: string };
  eligible: boolean;
  score: number;
  estimatedBytesMoved: number | null;
  estimatedRows: number | null;
  estimatedWaitS: number;
  pool: string | null;
  reasons: { code: string; dataset: string | null; message: string }[];
  terms: Term[];
}
interface Plan { formula: string; registryVersion: number; chosen: { site: { id: string } } | null; candidates: Candidate[]; sitesWithoutData: number }
/** A plan as shown: with whether the sites without the data were asked for as candidates. */
type Shown = Plan & { everySite: boolean };

const PLAN = `query($r: PlanRequest!, $every: Boolean!) { plan(request: $r) { formula registryVersion sitesWithoutData chosen { site { id } }
  candidates(everySite: $every) { site { id name } eligible score estimatedBytesMoved estimatedRows estimatedWaitS pool
    reasons { code dataset message } terms { name kind value unit weight weightUnit contribution } } } }`;

/** A number field's value, or undefined when empty. */
const num = (s: string) => (s.trim() === '' ? undefined : Number(s));

/** The plan explorer view. */
export function PlanPage() {
  const [datasets, setDatasets] = useState<string[]>([]);
  const [picked, setPicked] = useState<string[]>([]);
  const [kind, setKind] = useState<'QUERY' | 'CONTAINER'>('QUERY');
  const [cone, setCone] = useState({ ra: '', dec: '', radius: '' });
  const [job, setJob] = useState({ image: '', arch: '', cores: '1', memoryGb: '2', gpus: '' });
  const [plan, setPlan] = useState<Shown>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [everySite, setEverySite] = useState(false);

  useEffect(() => {
    gql<{ datasets: { id: string }[] }>('{ datasets(limit: 5000) { id } }').then((d) => setDatasets(d.datasets.map((x) => x.id)), (e: unknown) => setError(describeError(e)));
  }, []);

  const ask = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const [ra, dec, radiusDeg] = [num(cone.ra), num(cone.dec), num(cone.radius)];
      const anyCone = [ra, dec, radiusDeg].some((v) => v !== undefined);
      if (anyCone && [ra, dec, radiusDeg].some((v) => v === undefined || Number.isNaN(v))) throw new Error('a cone needs RA, Dec and radius, all numbers (or none of them)');
      const request: Record<string, unknown> = { kind, datasets: picked };
      if (anyCone) request.region = { cone: { ra, dec, radiusDeg } };
      if (kind === 'CONTAINER') {
        if (!job.image.trim()) throw new Error('a container plan needs an image');
        request.image = job.image.trim();
        if (job.arch.trim()) request.arch = job.arch.trim();
        for (const key of ['cores', 'memoryGb', 'gpus'] as const) {
          const v = num(job[key]);
          if (v !== undefined) {
            if (Number.isNaN(v)) throw new Error(`${key} must be a number`);
            request[key] = v;
          }
        }
      }
      setPlan({ ...(await gql<{ plan: Plan }>(PLAN, { r: request, every: everySite })).plan, everySite });
    } catch (e) {
      setPlan(undefined);
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const field = (value: string, set: (v: string) => void, name: string, placeholder: string) => (
    <input name={name} value={value} placeholder={placeholder} inputMode="decimal" onInput={(e) => set((e.target as HTMLInputElement).value)} />
  );

  return (
    <section>
      <h2>Plan explorer</h2>
      <form class="plan-form" onSubmit={ask}>
        <fieldset>
          <legend>Work</legend>
          <label><input type="radio" name="kind" checked={kind === 'QUERY'} onChange={() => setKind('QUERY')} /> ADQL query</label>
          <label><input type="radio" name="kind" value="CONTAINER" checked={kind === 'CONTAINER'} onChange={() => setKind('CONTAINER')} /> container job</label>
        </fieldset>
        <fieldset>
          <legend>Datasets</legend>
          <select multiple size={Math.min(8, Math.max(3, datasets.length))} name="datasets" data-control="datasets"
            onChange={(e) => setPicked([...(e.target as HTMLSelectElement).selectedOptions].map((o) => o.value))}>
            {datasets.map((d) => <option key={d} value={d} selected={picked.includes(d)}>{d}</option>)}
          </select>
        </fieldset>
        <fieldset>
          <legend>Cone (degrees, optional)</legend>
          {field(cone.ra, (ra) => setCone({ ...cone, ra }), 'ra', 'RA')}
          {field(cone.dec, (dec) => setCone({ ...cone, dec }), 'dec', 'Dec')}
          {field(cone.radius, (radius) => setCone({ ...cone, radius }), 'radius', 'radius')}
        </fieldset>
        {kind === 'CONTAINER' ? (
          <fieldset>
            <legend>Container</legend>
            <input name="image" value={job.image} placeholder="image ref or sha256 digest" onInput={(e) => setJob({ ...job, image: (e.target as HTMLInputElement).value })} />
            {field(job.cores, (cores) => setJob({ ...job, cores }), 'cores', 'cores')}
            {field(job.memoryGb, (memoryGb) => setJob({ ...job, memoryGb }), 'memoryGb', 'memory GB')}
            {field(job.gpus, (gpus) => setJob({ ...job, gpus }), 'gpus', 'GPUs')}
            <input name="arch" value={job.arch} placeholder="arch (amd64)" onInput={(e) => setJob({ ...job, arch: (e.target as HTMLInputElement).value })} />
          </fieldset>
        ) : null}
        <label><input type="checkbox" name="everySite" checked={everySite} onChange={(e) => setEverySite((e.target as HTMLInputElement).checked)} /> list the sites holding none of the datasets too</label>
        <button type="submit" disabled={busy}>{busy ? 'Planning…' : 'Plan'}</button>
      </form>
      {error ? <p class="error" role="alert">{error}</p> : null}
      {plan ? <PlanResult plan={plan} /> : null}
    </section>
  );
}

/** Every candidate, eligible first by score, the chosen one marked; the sites without the data counted. */
function PlanResult({ plan }: { plan: Shown }) {
  const chosen = plan.chosen?.site.id;
  return (
    <div class="plan" data-chosen={chosen ?? ''}>
      <p class="verdict">{chosen ? <>Chosen: <strong>{chosen}</strong></> : <strong>No site is eligible.</strong>} (registry version {plan.registryVersion})</p>
      <table class="candidates">
        <thead><tr><th>site</th><th>verdict</th><th>score</th><th>bytes moved</th><th>rows</th><th>wait</th><th>reasons</th><th>cost terms</th></tr></thead>
        <tbody>
          {plan.candidates.map((c) => (
            <tr key={c.site.id} data-site={c.site.id} data-eligible={String(c.eligible)} class={c.site.id === chosen ? 'chosen' : c.eligible ? 'eligible' : 'rejected'}>
              <td><strong>{c.site.id}</strong><div class="muted">{c.site.name}</div>{c.pool ? <div class="muted">pool {c.pool}</div> : null}</td>
              <td>{c.site.id === chosen ? 'chosen' : c.eligible ? 'eligible' : 'rejected'}</td>
              <td class="num">{c.score.toPrecision(3)}</td>
              <td class="num">{compact(c.estimatedBytesMoved, 'B')}</td>
              <td class="num">{compact(c.estimatedRows)}</td>
              <td class="num">{compact(c.estimatedWaitS, 's')}</td>
              <td>
                <ul class="reasons">
                  {c.reasons.map((r, i) => <li key={i} data-code={r.code}><code>{r.code}</code>{r.dataset ? ` (${r.dataset})` : ''}: {r.message}</li>)}
                </ul>
              </td>
              <td>
                <ul class="terms">
                  {c.terms.map((t) => (
                    <li key={t.name} data-term={t.name}>
                      {t.name}: {compact(t.value, t.unit === '1' ? '' : t.unit)}{' '}
                      {t.kind === 'COST' ? `× ${t.weight}${t.weightUnit === '1' ? '' : ` ${t.weightUnit}`} = ${t.contribution.toPrecision(3)} s` : `→ × ${t.contribution.toPrecision(3)}`}
                    </li>
                  ))}
                </ul>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {plan.sitesWithoutData > 0 && !plan.everySite
        ? <p class="muted without-data" data-count={plan.sitesWithoutData}>{plan.sitesWithoutData} {plan.candidates.length > 0 ? 'other ' : ''}site{plan.sitesWithoutData === 1 ? ' holds' : 's hold'} none of the datasets (not listed).</p>
        : null}
      <details><summary>Formula</summary><pre>{plan.formula}</pre></details>
    </div>
  );
}
