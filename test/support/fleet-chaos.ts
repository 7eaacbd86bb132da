/**
 * The fleet harness's stops: brokers killed (SIGKILL) or stopped (SIGTERM) while the jobs run,
 * every so often (the bench) or at given points of the submissions (the suite), each restarted
 * on its port at once.
 */
import type { BrokerFleet, FleetProcess } from './broker-fleet.js';
import { openRequest, untilClosing } from './open-request.js';
import type { RoundRobinFront } from './round-robin-front.js';
import { CHILD_PATIENCE_MS, waitUntil } from './wait.js';

/** When brokers are stopped: every so often (the bench), or as the submitted jobs pass given counts (the suite). */
export type ChaosPlan =
  | { kind: 'timed'; killEveryMs: number; termEveryMs?: number }
  | { kind: 'progress'; steps: { afterJobs: number; signal: 'SIGKILL' | 'SIGTERM' }[] };

/** Stopping brokers while the jobs run, and starting them again. */
export class Chaos {
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly pending = new Set<Promise<void>>();
  private readonly done: ('SIGKILL' | 'SIGTERM')[] = [];
  /** Progress plan: steps whose job count has been reached, not yet acted on. */
  private readonly due: ('SIGKILL' | 'SIGTERM')[] = [];
  private nextStep = 0;
  /** Stops begun (signal sent). */
  private started = 0;
  private turn = 0;
  private lastKill = 0;
  private lastTerm = 0;

  constructor(
    private readonly fleet: BrokerFleet,
    private readonly front: RoundRobinFront,
    private readonly plan: ChaosPlan,
    private readonly graceMs: number,
    private readonly log: (line: string) => void,
  ) {}

  start(at: number): void {
    this.lastKill = at;
    this.lastTerm = at + (this.plan.kind === 'timed' && this.plan.termEveryMs ? this.plan.termEveryMs / 2 : 0);
    this.tick();
  }

  /** `jobs` jobs have been submitted and retried. */
  progress(jobs: number): void {
    if (this.plan.kind !== 'progress') return;
    while (this.nextStep < this.plan.steps.length && jobs >= this.plan.steps[this.nextStep].afterJobs) this.due.push(this.plan.steps[this.nextStep++].signal);
  }

  /**
   * Resolves when job `n` may be submitted: in a progress plan, once every stop planned before it
   * was made (a stop waits for every broker to serve, and a restart takes seconds: without the
   * gate a short run would end before its stops).
   */
  async gate(n: number): Promise<void> {
    if (this.plan.kind !== 'progress') return;
    const before = this.plan.steps.filter((step) => step.afterJobs <= n).length;
    await waitUntil(() => this.stopping || this.started >= before, (ok) => ok, { timeoutMs: 2 * CHILD_PATIENCE_MS, intervalMs: 100, describe: () => `broker stop ${before} of the plan was never made` });
  }

  count(signal: 'SIGKILL' | 'SIGTERM'): number {
    return this.done.filter((s) => s === signal).length;
  }

  /** Steps of a progress plan not carried out (their moment never came with every broker serving). */
  missed(): number {
    return this.plan.kind === 'progress' ? this.plan.steps.length - this.done.length : 0;
  }

  /** No more stops; wait for those under way and their restarts. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private tick(): void {
    if (this.stopping) return;
    const now = Date.now();
    if (this.plan.kind === 'progress') {
      const next = this.due[0];
      if (next !== undefined && this.act(next)) this.due.shift();
    } else if (now - this.lastKill >= this.plan.killEveryMs) {
      if (this.act('SIGKILL')) this.lastKill = now;
    } else if (this.plan.termEveryMs && now - this.lastTerm >= this.plan.termEveryMs) {
      if (this.act('SIGTERM')) this.lastTerm = now;
    }
    this.timer = setTimeout(() => this.tick(), 100);
  }

  /**
   * Stop a broker with `signal` and start it again; false when not now. Only while every broker
   * serves (a restart here takes seconds, and one broker always serves). A SIGTERM comes while a
   * client's request to that broker is in flight on a kept-alive connection, as a load balancer
   * drains a busy replica: the request is finished after the signal, and the broker must still
   * exit promptly.
   */
  private act(signal: 'SIGKILL' | 'SIGTERM'): boolean {
    const ready = this.fleet.ready();
    if (ready.length < this.front.size) return false;
    // Random for the bench's timed plan; in turn for the suite's (so one run stops different slots).
    const index = this.plan.kind === 'timed' ? ready[Math.floor(Math.random() * ready.length)] : ready[this.turn++ % ready.length];
    this.started++;
    this.front.down(index);
    const work = (async () => {
      let p: FleetProcess;
      if (signal === 'SIGTERM') {
        const request = await openRequest(this.fleet.url(index));
        const proc = this.fleet.live(index);
        const stopping = this.fleet.stop(index, signal, this.graceMs);
        // The request ends after the broker has begun to close (not before the signal is handled).
        await untilClosing(this.fleet.url(index), () => proc?.exitedAt !== undefined);
        const status = await request.finish();
        this.log(`a request in flight at SIGTERM of broker ${index} was answered ${status}`);
        p = await stopping;
        request.close();
      } else p = await this.fleet.stop(index, signal, this.graceMs);
      this.done.push(signal);
      const escalated = p.escalatedAt === undefined ? '' : `; still running after the ${this.graceMs / 1000} s grace, so killed`;
      this.log(`${signal} broker ${index} (pid ${p.pid}): exited after ${(p.exitedAt ?? 0) - (p.signalledAt ?? 0)} ms with ${p.exit?.code ?? p.exit?.signal}${escalated}`);
      const next = await this.fleet.spawn(index);
      this.front.up(index, this.fleet.url(index));
      this.log(`broker ${index} restarted (pid ${next.pid}), ready in ${((next.readyAt ?? 0) - next.startedAt) / 1000} s`);
    })();
    const tracked: Promise<void> = work.catch((err: Error) => this.log(`stopping or restarting broker ${index} failed: ${err.message}`)).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return true;
  }
}
