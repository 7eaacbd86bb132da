/** The web console: one page with four views chosen by the URL's fragment (#/sites, #/sky, #/plan, #/jobs). */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { gql } from './api.js';
import { JobsPage } from './pages/jobs.js';
import { PlanPage } from './pages/plan.js';
import { SitesPage } from './pages/sites.js';
import { SkyPage } from './pages/sky.js';
import './app.css';

/** What /console/config.json says about the federation. */
interface ConsoleConfig {
  federation: string;
  identity: boolean;
}

/** Who is signed in (GraphQL `me`). */
interface Me {
  subject: string;
  name: string | null;
  email: string | null;
  groups: string[];
  roles: { admin: boolean };
}

const VIEWS = [
  { path: 'sites', label: 'Sites' },
  { path: 'sky', label: 'Sky coverage' },
  { path: 'plan', label: 'Plan explorer' },
  { path: 'jobs', label: 'Jobs' },
] as const;
type View = (typeof VIEWS)[number]['path'];

/** The view named by the fragment: "#/sky?dataset=x" → sky. */
function currentView(): { view: View; params: URLSearchParams } {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const view = (VIEWS.find((v) => v.path === path)?.path ?? 'sites') as View;
  return { view, params: new URLSearchParams(query ?? '') };
}

/** Signed-in state: the caller, or "anonymous", with login/logout links when the federation has identity. */
function Account({ config }: { config: ConsoleConfig | undefined }) {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<string>();
  useEffect(() => {
    gql<{ me: Me | null }>('{ me { subject name email groups roles { admin } } }')
      .then((d) => setMe(d.me))
      .catch((e: unknown) => setError(String(e instanceof Error ? e.message : e)));
  }, []);
  const here = encodeURIComponent(`/${location.hash}`);
  if (error) return <span class="account" data-account="error" title={error}>account unknown</span>;
  if (me === undefined) return <span class="account">…</span>;
  if (me === null) {
    return (
      <span class="account" data-account="anonymous">
        anonymous{config?.identity ? <> · <a href={`/login?next=${here}`}>log in</a></> : null}
      </span>
    );
  }
  return (
    <span class="account" data-account="signed-in">
      <span title={me.groups.join(', ')}>{me.name ?? me.email ?? me.subject}</span>
      {me.roles.admin ? <span class="badge">admin</span> : null}
      {config?.identity ? <> · <a href="/logout">log out</a></> : null}
    </span>
  );
}

/** The page frame: header, navigation and the current view. */
function App() {
  const [{ view, params }, setRoute] = useState(currentView);
  const [config, setConfig] = useState<ConsoleConfig>();
  useEffect(() => {
    const onHash = () => setRoute(currentView());
    addEventListener('hashchange', onHash);
    fetch('/console/config.json', { credentials: 'same-origin' })
      .then((r) => (r.ok ? (r.json() as Promise<ConsoleConfig>) : undefined))
      .then(setConfig, () => setConfig(undefined));
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return (
    <>
      <header>
        <h1>
          Constellation{config ? <span class="federation"> · {config.federation}</span> : null}
        </h1>
        <nav>
          {VIEWS.map((v) => (
            <a key={v.path} href={`#/${v.path}`} class={v.path === view ? 'active' : undefined} data-view={v.path}>
              {v.label}
            </a>
          ))}
          <a href="/graphiql">GraphiQL</a>
        </nav>
        <Account config={config} />
      </header>
      <main data-page={view}>
        {view === 'sites' ? <SitesPage /> : null}
        {view === 'sky' ? <SkyPage dataset={params.get('dataset') ?? undefined} /> : null}
        {view === 'plan' ? <PlanPage /> : null}
        {view === 'jobs' ? <JobsPage /> : null}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
