/** The caller's jobs and cross-match threads, each kept current by a GraphQL subscription while it runs. */
import { useEffect, useState } from 'preact/hooks';
import { describeError, gql } from '../api.js';
import { compact, localPath, when } from '../format.js';
import { live } from '../live.js';

interface Job {
  id: string;
  kind: string;
  state: string;
  site: { id: string } | null;
  sitePhase: string | null;
  error: { code: string; message: string } | null;
  results: string | null;
  request: { adql?: string; image?: string; command?: string };
  createdAt: string;
  updatedAt: string;
}
interface Thread {
  id: string;
  state: string;
  progress: { stepsDone: number; stepsTotal: number; rows: number; bytes: number };
  results: string | null;
  resultRows: number | null;
  error: { code: string; message: string } | null;
  request: { left?: { dataset?: string }; right?: { dataset?: string } };
  createdAt: string;
}

const JOB = 'id kind state site { id } sitePhase error { code message } results request createdAt updatedAt';
const THREAD = 'id state progress { stepsDone stepsTotal rows bytes } results resultRows error { code message } request createdAt';
const FINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED']);

/** The jobs view. */
export function JobsPage() {
  const [jobs, setJobs] = useState<Job[]>();
  const [threads, setThreads] = useState<Thread[]>();
  const [error, setError] = useState<string>();
  const [loads, setLoads] = useState(0);

  useEffect(() => {
    gql<{ jobs: Job[]; threads: Thread[] }>(`{ jobs(limit: 50) { ${JOB} } threads(limit: 50) { ${THREAD} } }`)
      .then((d) => { setJobs(d.jobs); setThreads(d.threads); setError(undefined); }, (e: unknown) => setError(describeError(e)));
  }, [loads]);

  if (error) return <p class="error" role="alert">{error}</p>;
  if (!jobs || !threads) return <p class="loading">Loading jobs…</p>;
  return (
    <section data-ready="true">
      <h2>Jobs <small>{jobs.length}</small> <button type="button" onClick={() => setLoads(loads + 1)}>Refresh list</button></h2>
      {jobs.length === 0 ? <p>No jobs yet (submitQuery or submitJob in GraphiQL, or <code>constellation query</code>).</p> : (
        <table class="jobs">
          <thead><tr><th>job</th><th>kind</th><th>what</th><th>state</th><th>site</th><th>created</th><th>result</th><th></th></tr></thead>
          <tbody>{jobs.map((j) => <JobRow key={j.id} initial={j} />)}</tbody>
        </table>
      )}
      <h2>Cross-match threads <small>{threads.length}</small></h2>
      {threads.length === 0 ? <p>No threads yet (the crossmatch mutation starts one).</p> : (
        <table class="jobs">
          <thead><tr><th>thread</th><th>datasets</th><th>state</th><th>steps</th><th>rows</th><th>created</th><th>result</th></tr></thead>
          <tbody>{threads.map((t) => <ThreadRow key={t.id} initial={t} />)}</tbody>
        </table>
      )}
    </section>
  );
}

/** Follow `initial` by subscription while it is not final; `data-live` says whether it is followed. */
function useLive<T extends { id: string; state: string }>(initial: T, subscription: string, field: string): [T, 'following' | 'final' | 'lost', string | undefined] {
  const [item, setItem] = useState(initial);
  const [mode, setMode] = useState<'following' | 'final' | 'lost'>(FINAL.has(initial.state) ? 'final' : 'following');
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    if (FINAL.has(initial.state)) return;
    return live.subscribe<Record<string, T>>(subscription, { id: initial.id }, {
      next: (data) => setItem(data[field]),
      complete: () => setMode('final'),
      error: (message) => { setMode('lost'); setProblem(message); },
    });
  }, [initial.id]);
  return [item, mode, problem];
}

/** One job, live. */
function JobRow({ initial }: { initial: Job }) {
  const [job, mode, problem] = useLive(initial, `subscription($id: ID!) { jobUpdated(id: $id) { ${JOB} } }`, 'jobUpdated');
  const [cancelError, setCancelError] = useState<string>();
  const result = localPath(job.results);
  const cancel = () => gql(`mutation($id: ID!) { cancelJob(id: $id) { id state } }`, { id: job.id }).catch((e: unknown) => setCancelError(describeError(e)));
  const what = job.request.adql ?? [job.request.image, job.request.command].filter(Boolean).join(' ');
  return (
    <tr data-job={job.id} data-state={job.state} data-live={mode}>
      <td><code>{job.id.slice(0, 8)}</code></td>
      <td>{job.kind}</td>
      <td class="what" title={what}>{what.length > 80 ? `${what.slice(0, 80)}…` : what}</td>
      <td>
        <span class={`state state-${job.state.toLowerCase()}`}>{job.state}</span>
        {job.sitePhase ? <div class="muted">site: {job.sitePhase}</div> : null}
        {mode === 'following' ? <div class="muted">live</div> : null}
        {problem ? <div class="error">{problem}</div> : null}
        {job.error ? <div class="error">{job.error.code}: {job.error.message}</div> : null}
      </td>
      <td>{job.site?.id ?? '—'}</td>
      <td>{when(job.createdAt)}</td>
      <td>{result ? <>
        <a href={result} data-result="default">result</a>{' '}
        {['csv', 'json', 'votable'].map((f) => <a key={f} href={`/results/${encodeURIComponent(job.id)}?format=${f}`}>{f} </a>)}
      </> : '—'}</td>
      <td>{FINAL.has(job.state) ? null : <button type="button" onClick={cancel}>Cancel</button>}{cancelError ? <div class="error">{cancelError}</div> : null}</td>
    </tr>
  );
}

/** One thread, live. */
function ThreadRow({ initial }: { initial: Thread }) {
  const [thread, mode, problem] = useLive(initial, `subscription($id: ID!) { threadUpdated(id: $id) { ${THREAD} } }`, 'threadUpdated');
  const result = localPath(thread.results);
  const { stepsDone, stepsTotal, rows } = thread.progress;
  return (
    <tr data-thread={thread.id} data-state={thread.state} data-live={mode}>
      <td><code>{thread.id.slice(0, 8)}</code></td>
      <td>{thread.request.left?.dataset ?? '?'} × {thread.request.right?.dataset ?? '?'}</td>
      <td>
        <span class={`state state-${thread.state.toLowerCase()}`}>{thread.state}</span>
        {problem ? <div class="error">{problem}</div> : null}
        {thread.error ? <div class="error">{thread.error.code}: {thread.error.message}</div> : null}
      </td>
      <td>{stepsDone} / {stepsTotal}</td>
      <td class="num">{compact(thread.resultRows ?? rows)}</td>
      <td>{when(thread.createdAt)}</td>
      <td>{result ? <a href={result}>result</a> : '—'} <a href={`/threads/${encodeURIComponent(thread.id)}/provenance`}>provenance</a></td>
    </tr>
  );
}
