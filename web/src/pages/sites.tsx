/** The federation's sites: status, last harvest, and what each holds (datasets, services, compute, images). */
import { useEffect, useState } from 'preact/hooks';
import { describeError, gql } from '../api.js';
import { compact, safeHttpUrl, when } from '../format.js';

interface SiteRow {
  id: string;
  name: string;
  platform: string;
  url: string | null;
  status: string;
  origin: string | null;
  seeded: boolean;
  asOf: string | null;
  consecutiveFailures: number;
  lastHarvest: { outcome: string; trigger: string; startedAt: string; finishedAt: string | null; durationMs: number | null; errorCode: string | null; errorMessage: string | null } | null;
  replicas: { dataset: { id: string; title: string | null }; table: string; rows: number | null; skyFraction: number | null; access: { public: boolean } }[];
  services: { id: string; type: string }[];
  compute: { id: string; kind: string; cores: number; freeCores: number | null; gpus: number }[];
  images: { ref: string }[];
}

// Limits keep the query's static cost far below the broker's cap (README, "The GraphQL contract").
const SITES = `{ sites(limit: 500) { id name platform url status origin seeded asOf consecutiveFailures
  lastHarvest { outcome trigger startedAt finishedAt durationMs errorCode errorMessage }
  replicas(limit: 500) { dataset { id title } table rows skyFraction access { public } }
  services(limit: 50) { id type } compute(limit: 50) { id kind cores freeCores gpus } images(limit: 200) { ref } } }`;

/** The sites view. */
export function SitesPage() {
  const [sites, setSites] = useState<SiteRow[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    gql<{ sites: SiteRow[] }>(SITES).then((d) => setSites(d.sites), (e: unknown) => setError(describeError(e)));
  }, []);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!sites) return <p class="loading">Loading sites…</p>;
  if (sites.length === 0) return <p>No site has joined this federation yet.</p>;
  return (
    <section data-ready="true">
      <h2>Sites <small>{sites.length}</small></h2>
      <div class="cards">
        {sites.map((s) => <SiteCard key={s.id} site={s} />)}
      </div>
    </section>
  );
}

/** One site. Every string here comes from the site's own document: it is rendered as text only. */
function SiteCard({ site }: { site: SiteRow }) {
  const link = safeHttpUrl(site.url);
  const h = site.lastHarvest;
  const cores = site.compute.reduce((n, c) => n + c.cores, 0);
  return (
    <article class="card" data-site={site.id}>
      <header>
        <span class={`status status-${site.status.toLowerCase()}`} data-status={site.status}>{site.status}</span>
        <h3>{site.name}</h3>
        <code>{site.id}</code> · {site.platform}
      </header>
      <p class="url">{link ? <a href={link} rel="noopener noreferrer" target="_blank">{site.url}</a> : site.url ?? 'no URL'}</p>
      <dl>
        <dt>Advertised</dt>
        <dd>{site.origin ?? 'nothing yet'}{site.seeded ? ' (shipped seed)' : ''}{site.asOf ? `, as of ${when(site.asOf)}` : ''}</dd>
        <dt>Last harvest</dt>
        <dd data-harvest={h?.outcome ?? 'none'}>
          {h ? (
            <>
              {h.outcome} {when(h.finishedAt ?? h.startedAt)} ({h.trigger}{h.durationMs !== null ? `, ${h.durationMs} ms` : ''})
              {h.errorCode ? <div class="error">{h.errorCode}: {h.errorMessage}</div> : null}
            </>
          ) : 'never'}
          {site.consecutiveFailures > 0 ? <div class="error">{site.consecutiveFailures} failed in a row</div> : null}
        </dd>
        <dt>Services</dt>
        <dd>{site.services.map((s) => `${s.type} (${s.id})`).join(', ') || 'none'}</dd>
        <dt>Compute</dt>
        <dd>{site.compute.length ? `${site.compute.length} pool(s), ${cores} cores` : 'none'}{site.images.length ? `; ${site.images.length} image(s)` : ''}</dd>
      </dl>
      <details open={site.replicas.length <= 8}>
        <summary>{site.replicas.length} dataset(s)</summary>
        <table class="replicas">
          <thead><tr><th>dataset</th><th>table</th><th>rows</th><th>sky</th><th></th></tr></thead>
          <tbody>
            {site.replicas.map((r) => (
              <tr key={r.dataset.id} data-dataset={r.dataset.id}>
                <td title={r.dataset.title ?? undefined}>{r.dataset.id}{r.access.public ? '' : ' 🔒'}</td>
                <td><code>{r.table}</code></td>
                <td class="num">{compact(r.rows)}</td>
                <td class="num">{r.skyFraction === null ? 'no MOC' : `${(r.skyFraction * 100).toPrecision(3)}%`}</td>
                <td><a href={`#/sky?dataset=${encodeURIComponent(r.dataset.id)}`}>map</a></td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </article>
  );
}
