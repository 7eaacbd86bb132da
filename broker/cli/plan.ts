/**
 * `constellation plan`: where would this run, and why. Every candidate site with its verdict,
 * score, estimates, reasons and cost terms, the chosen one first: the planner's explained
 * decision, as the GraphQL `plan` query gives it.
 */
import { invalidArgument } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { brokerClient } from './broker-client.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, writeJson } from './output.js';
import { palette, printableInline } from './terminal.js';

/** What `constellation plan` was given. */
export interface PlanArgs {
  datasets: string[];
  cone?: string;
  image?: string;
  arch?: string;
  cores?: string;
  memory?: string;
  gpus?: string;
  walltime?: string;
  /** List the sites holding none of the datasets too. */
  everySite?: boolean;
  json?: boolean;
}

interface CandidateView {
  site: { id: string; name: string; status: string };
  eligible: boolean;
  score: number;
  estimatedBytesMoved: number | null;
  estimatedRows: number | null;
  estimatedWaitS: number;
  pool: string | null;
  reasons: { code: string; dataset: string | null; message: string }[];
  terms: { name: string; kind: string; value: number; unit: string; weight: number; weightUnit: string; contribution: number }[];
}

interface PlanView {
  chosen: CandidateView | null;
  candidates: CandidateView[];
  sitesWithoutData: number;
  formula: string;
  registryVersion: number;
}

const CANDIDATE = 'site { id name status } eligible score estimatedBytesMoved estimatedRows estimatedWaitS pool reasons { code dataset message } terms { name kind value unit weight weightUnit contribution }';

/** The PlanRequest from the command's arguments; INVALID_ARGUMENT naming the argument otherwise. */
export function planRequest(args: PlanArgs): Record<string, unknown> {
  const container = args.image !== undefined;
  if (!container && args.datasets.length === 0) throw invalidArgument('DATASET', 'is required: constellation plan DATASET... [--cone RA,DEC,R], or --image REF for a container job');
  const request: Record<string, unknown> = { kind: container ? 'CONTAINER' : 'QUERY', datasets: args.datasets };
  if (args.cone !== undefined) {
    const cone = args.cone.split(',').map((x) => (x.trim() === '' ? NaN : Number(x)));
    if (cone.length !== 3 || cone.some((x) => !Number.isFinite(x))) throw invalidArgument('--cone', `must be RA,DEC,RADIUS in degrees (e.g. 180,0,0.5), not "${args.cone}"`);
    request.region = { cone: { ra: cone[0], dec: cone[1], radiusDeg: cone[2] } };
  }
  if (container) {
    request.image = args.image;
    if (args.arch !== undefined) request.arch = args.arch;
    request.cores = whole('--cores', args.cores ?? '1');
    request.memoryGb = positive('--memory', args.memory ?? '1');
    if (args.gpus !== undefined) request.gpus = whole('--gpus', args.gpus, 0);
    if (args.walltime !== undefined) request.walltimeS = whole('--walltime', args.walltime);
  } else {
    for (const [flag, value] of [['--arch', args.arch], ['--cores', args.cores], ['--memory', args.memory], ['--gpus', args.gpus], ['--walltime', args.walltime]] as const) {
      if (value !== undefined) throw invalidArgument(flag, 'is for a container job: give --image REF too');
    }
  }
  return request;
}

function whole(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > 2_147_483_647) throw invalidArgument(flag, `must be a whole number of at least ${min}, not "${value}"`);
  return n;
}

function positive(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw invalidArgument(flag, `must be a positive number, not "${value}"`);
  return n;
}

/** `constellation plan DATASET... [--cone RA,DEC,R] [--image REF --cores N --memory GB ...] [--json]`; exits 1 when no site is eligible. */
export async function planCommand(config: Config, args: PlanArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const request = planRequest(args);
  const broker = await brokerClient(config, env);
  const { plan } = await broker.graphql<{ plan: PlanView }>(`query($r: PlanRequest!, $every: Boolean!) { plan(request: $r) { chosen { site { id } } candidates(everySite: $every) { ${CANDIDATE} } sitesWithoutData formula registryVersion } }`, { r: request, every: args.everySite === true });
  // The chosen candidate first, then the other eligible ones by score, then the rejected.
  const chosenId = plan.chosen?.site.id;
  const candidates = [...plan.candidates].sort((a, b) => rank(b, chosenId) - rank(a, chosenId) || b.score - a.score);
  if (args.json) {
    writeJson({ plan: { chosen: chosenId ?? null, registryVersion: plan.registryVersion, formula: plan.formula, candidates, sitesWithoutData: plan.sitesWithoutData } });
    return chosenId ? EXIT.OK : EXIT.FAILED;
  }
  const colour = palette(process.stdout, env);
  const what = request.kind === 'CONTAINER' ? `image ${args.image}` : args.datasets.join(', ');
  const where = args.cone ? ` in the cone ${args.cone}` : '';
  process.stdout.write(`${printableInline(`plan for ${what}${where}`)} (registry version ${plan.registryVersion}): ${chosenId ? `chosen ${colour.bold(chosenId)}` : colour.red('no eligible site')}\n`);
  for (const c of candidates) {
    const chosen = c.site.id === chosenId;
    const verdict = chosen ? colour.green('CHOSEN  ') : c.eligible ? colour.yellow('ELIGIBLE') : colour.red('REJECTED');
    const figures = c.eligible
      ? [`score ${c.score.toPrecision(3)}`, c.estimatedRows === null ? 'rows unknown' : `~${Math.round(c.estimatedRows).toLocaleString('en')} rows`, c.estimatedBytesMoved === null ? 'bytes moved unknown' : `${formatBytes(c.estimatedBytesMoved)} moved`, `wait ${Math.round(c.estimatedWaitS)} s`, ...(c.pool ? [`pool ${c.pool}`] : [])].join(', ')
      : '';
    process.stdout.write(`${chosen ? '→' : ' '} ${c.site.id.padEnd(16)} ${verdict}  ${printableInline(c.site.status)}${figures ? `  ${figures}` : ''}\n`);
    for (const r of c.reasons) process.stdout.write(`      ${r.code}${r.dataset ? ` (${printableInline(r.dataset)})` : ''}: ${printableInline(r.message)}\n`);
    for (const t of c.eligible ? c.terms : []) {
      process.stdout.write(`      ${colour.dim(printableInline(`${t.name}: ${t.value.toPrecision(3)} ${t.unit} × ${t.weight} ${t.weightUnit} = ${t.contribution.toPrecision(3)} (${t.kind.toLowerCase()})`))}\n`);
    }
  }
  if (plan.sitesWithoutData > 0 && args.everySite !== true) {
    const n = plan.sitesWithoutData;
    process.stdout.write(`  ${n} ${plan.candidates.length > 0 ? 'other ' : ''}site${n === 1 ? '' : 's'} hold${n === 1 ? 's' : ''} none of ${printableInline(args.datasets.join(', '))} (--every-site lists ${n === 1 ? 'it' : 'them'})\n`);
  }
  return chosenId ? EXIT.OK : EXIT.FAILED;
}

function rank(c: CandidateView, chosenId: string | undefined): number {
  return c.site.id === chosenId ? 2 : c.eligible ? 1 : 0;
}
