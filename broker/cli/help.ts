/** `constellation COMMAND --help`: each command's usage, options and an example. */
import { EXIT_CODES_HELP } from './exit-codes.js';

const BROKER = `  --broker URL     the running broker (default CONSTELLATION_URL, else http://HOST:PORT);
                   the cached login's token (constellation login) goes with every request`;
const JSON_OPTION = '  --json           print one JSON document on stdout and nothing else (errors too: {"error":{code,message},"exitCode":N})';

/** Each command's help text, without the exit codes (added to every one). */
export const COMMAND_HELP: Record<string, string> = {
  serve: `usage: constellation serve [--config FILE]

Start the broker on HOST:PORT (default 127.0.0.1:4000); GraphQL at /graphql. It logs JSON lines.

example:
  PORT=4000 constellation serve --config federation.yaml
`,
  migrate: `usage: constellation migrate [--config FILE] [--json]

Apply pending database migrations and exit.
${JSON_OPTION}

example:
  DATABASE_URL=postgres://user@db:5432/constellation constellation migrate
`,
  sites: `usage: constellation sites [--config FILE] [--json]

List the federation's sites (from the broker running at HOST:PORT, else from the database).
${JSON_OPTION}

example:
  constellation sites --json | jq -r '.sites[] | select(.status == "UP") | .id'
`,
  datasets: `usage: constellation datasets [--text TEXT] [--site ID] [--config FILE] [--json]

List canonical datasets and where their replicas are.
  --text TEXT      text in the canonical id, a title or a local table name
  --site ID        only datasets with a replica at this site
${JSON_OPTION}

example:
  constellation datasets --text gaia
`,
  harvest: `usage: constellation harvest [SITE] [--confirm] [--config FILE] [--json]

Harvest one site now, or every site; exits 1 if any harvest failed or was held.
  --confirm        apply a harvest held for removing too many datasets (needs SITE)
${JSON_OPTION}

example:
  constellation harvest dachs
`,
  query: `usage: constellation query "ADQL" [--out FILE] [--format csv|votable|json] [--site ID] [--maxrec N] [--json]

Run an ADQL query (canonical dataset ids and column names) where its data is: submitted
through the broker's GraphQL API (submitQuery), followed with a progress line on a terminal
(Ctrl-C cancels the job), then streamed from the job's result route to FILE or stdout.
  --out FILE       write the result there (written whole, then renamed into place)
  --format F       csv (default), votable or json; guessed from FILE's extension (.vot, .xml, .json)
  --site ID        run at this site only
  --maxrec N       row limit passed to the site (TAP MAXREC)
${JSON_OPTION}
                   (the job; the result goes to --out only, or stays at the job's "results" URL)
${BROKER}

example:
  constellation query "SELECT TOP 10 source_id, ra, dec FROM gaia_dr3.gaia_source" --out gaia.csv
`,
  plan: `usage: constellation plan DATASET... [--cone RA,DEC,R] [--every-site] [--json]
       constellation plan [DATASET...] --image REF [--cores N] [--memory GB] [--gpus N] [--walltime S] [--arch A] [--every-site] [--json]

Where would this run, and why: every site holding a dataset asked for, with its verdict, score,
estimates, reasons and cost terms, the chosen one first, and how many sites hold none of them.
Exits 1 when no site is eligible.
  --cone RA,DEC,R  the sky region, degrees
  --image REF      plan a container job with this image instead of a query
  --every-site     list the sites holding none of the datasets too (rejected, NO_REPLICA)
${JSON_OPTION}
${BROKER}

example:
  constellation plan gaia_dr3.gaia_source --cone 180,0,0.5
`,
  jobs: `usage: constellation jobs [--state S,...] [--kind query|container] [--limit N] [--json]

Your jobs, newest first.
  --state S,...    PENDING, QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED
  --kind K         query or container
  --limit N        at most N (default 50, at most 1000)
${JSON_OPTION}
${BROKER}

example:
  constellation jobs --state EXECUTING,QUEUED
`,
  job: `usage: constellation job ID [--json]

One of your jobs: state, site, times, result link, error and history. Exits 5 when there is no such job of yours.
${JSON_OPTION}
${BROKER}

example:
  constellation job 0b6f3c1e-8f52-4d6a-9a55-1f1d2e3c4b5a
`,
  cancel: `usage: constellation cancel ID [--json]

Cancel one of your jobs: the site is asked to abort it, then it is ABORTED. A job that has
already ended is shown as it is.
${JSON_OPTION}
${BROKER}

example:
  constellation cancel 0b6f3c1e-8f52-4d6a-9a55-1f1d2e3c4b5a
`,
  images: `usage: constellation images [--text T] [--software S] [--type T] [--arch A] [--site ID] [--limit N] [--json]

The container images the federation's sites advertise.
  --text T         text in the image reference
  --software S     text in one of its software entries (astropy matches astropy=6.1)
  --type T         a session type: headless, notebook, desktop, ...
  --arch A         amd64, arm64, ...
  --site ID        only this site's images
${JSON_OPTION}
${BROKER}

example:
  constellation images --software astropy --type headless
`,
  publish: `usage: constellation publish FILE --site ID [--key-env VAR] [--json]

Publish FILE (a capability document, JSON) as site ID's capabilities (PUT /sites/ID/capabilities).
The site's publish key is read from CONSTELLATION_PUBLISH_KEY, or from the variable --key-env
names, and sent as X-Publish-Key; it is never taken on the command line. A logged-in operator
of the site, or an admin, needs no key.
${JSON_OPTION}
${BROKER}

example:
  CONSTELLATION_PUBLISH_KEY=... constellation publish esa.json --site esa
`,
  crossmatch: `usage: constellation crossmatch --left ID --right ID --cone RA,DEC,R --radius ARCSEC
         [--mode best|all] [--strategy same-site|upload|broker] [--out FILE] [--format csv|votable|json] [--json]

Cross-match two datasets in a cone through the running broker, with progress.
${JSON_OPTION}
                   (the thread; the pairs go to --out only)
${BROKER}

example:
  constellation crossmatch --left gaia_dr3.gaia_source --right ps1_dr2.mean_object --cone 180,0,0.5 --radius 1 --out pairs.csv
`,
  thread: `usage: constellation thread ID [--json]

A cross-match thread's state, plan, steps and progress.
${JSON_OPTION}
${BROKER}

example:
  constellation thread 5d1c7f0e-2b9a-4c1e-8e3f-6a7b8c9d0e1f
`,
  demo: `usage: constellation demo [--keep]

Start two simulated centres and a broker, cross-match Gaia-like and Pan-STARRS-like catalogues
through the public API and check the pairs against the truth (exit 0 when recall and
precision are both 1). --keep leaves it running.

example:
  constellation demo --keep
`,
  login: `usage: constellation login [--config FILE] [--json]

Log in to the federation's identity provider with the device code: open the address shown
(on stderr under --json) and confirm the code. The token is cached in CONSTELLATION_CONFIG_DIR.
${JSON_OPTION}

example:
  constellation login && constellation whoami
`,
  logout: `usage: constellation logout [--config FILE] [--json]

Revoke and forget the cached login.
${JSON_OPTION}

example:
  constellation logout
`,
  whoami: `usage: constellation whoami [--json]

Who the running broker says you are (what the cached login says when no broker answers).
${JSON_OPTION}
${BROKER}

example:
  constellation whoami --json | jq .groups
`,
};

/** The help of `command` (with the exit codes), or undefined for an unknown command. */
export function commandHelp(command: string): string | undefined {
  const text = COMMAND_HELP[command];
  return text === undefined ? undefined : `${text}\n${EXIT_CODES_HELP}`;
}
