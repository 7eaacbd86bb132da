/**
 * Several `constellation serve` processes from source on one PostgreSQL database, each on a
 * fixed port of its own, that can be killed (SIGKILL), stopped (SIGTERM) and restarted on the
 * same port. Every start, signal and exit is recorded with its time, so a harness can tell
 * which process was alive when.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { packagePath } from '../../registry/paths.js';
import { freePort } from './ports.js';
import { waitForReady, within, CHILD_PATIENCE_MS } from './wait.js';

/** One lifetime of one broker slot. */
export interface FleetProcess {
  index: number;
  /** 0 for the first start of the slot, then 1, 2, … for each restart. */
  generation: number;
  pid: number;
  child: ChildProcess;
  startedAt: number;
  readyAt?: number;
  /** When SIGKILL or SIGTERM was sent. */
  signalledAt?: number;
  signal?: 'SIGKILL' | 'SIGTERM';
  /** When a SIGTERM's grace ran out and SIGKILL followed (as an orchestrator does). */
  escalatedAt?: number;
  exitedAt?: number;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export interface BrokerFleetOptions {
  size: number;
  /** federation.yaml for every broker. */
  configFile: string;
  /** The shared PostgreSQL database; unset: the embedded one in `dataDir` (the first broker hosts it). */
  databaseUrl?: string;
  /** CONSTELLATION_DATA (unused with PostgreSQL, but checked). */
  dataDir: string;
  /** Each broker's log output (stdout and stderr), with its slot. */
  onLog?: (index: number, chunk: Buffer) => void;
  env?: NodeJS.ProcessEnv;
}

export class BrokerFleet {
  readonly processes: FleetProcess[] = [];
  private readonly ports: number[] = [];
  private readonly current: (FleetProcess | undefined)[];

  constructor(private readonly options: BrokerFleetOptions) {
    this.current = Array.from({ length: options.size }, () => undefined);
  }

  /** The base URL of slot `index`. */
  url(index: number): string {
    return `http://127.0.0.1:${this.ports[index]}`;
  }

  /** The slot's live process, if any. */
  live(index: number): FleetProcess | undefined {
    const p = this.current[index];
    return p && p.exitedAt === undefined ? p : undefined;
  }

  /** The slots whose process is ready and not signalled. */
  ready(): number[] {
    return this.current.flatMap((p, i) => (p && p.readyAt !== undefined && p.signalledAt === undefined && p.exitedAt === undefined ? [i] : []));
  }

  /** Pids of every process alive now (for attributing a connection to its sender). */
  alivePids(): number[] {
    return this.processes.filter((p) => p.exitedAt === undefined).map((p) => p.pid);
  }

  /** The process with this pid, in any lifetime. */
  byPid(pid: number): FleetProcess | undefined {
    return this.processes.find((p) => p.pid === pid);
  }

  /** Start every slot, one after the other (the first runs the migrations), each once ready. */
  async start(): Promise<void> {
    for (let i = 0; i < this.options.size; i++) {
      this.ports[i] = await freePort();
      await this.spawn(i);
    }
  }

  /** Start slot `index` again on its port; resolves once it answers ready. */
  async spawn(index: number): Promise<FleetProcess> {
    if (this.live(index)) throw new Error(`broker slot ${index} is still running (pid ${this.live(index)?.pid})`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.options.env,
      CONSTELLATION_CONFIG: this.options.configFile,
      PORT: String(this.ports[index]),
      HOST: '127.0.0.1',
      LOG_LEVEL: this.options.env?.LOG_LEVEL ?? 'warn',
      CONSTELLATION_DATA: this.options.dataDir,
      DATABASE_URL: this.options.databaseUrl ?? '',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', packagePath('broker/cli/run.ts'), 'serve'], { cwd: packagePath('.'), env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error(`broker slot ${index} did not start`);
    const generation = this.processes.filter((p) => p.index === index).length;
    const proc: FleetProcess = { index, generation, pid: child.pid, child, startedAt: Date.now() };
    this.processes.push(proc);
    this.current[index] = proc;
    let tail = '';
    const onData = (d: Buffer) => {
      tail = (tail + d.toString('utf8')).slice(-4000);
      this.options.onLog?.(index, d);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      proc.exitedAt = Date.now();
      proc.exit = { code, signal };
    });
    await waitForReady(this.url(index), {
      exited: () => (proc.exitedAt !== undefined ? `broker ${index} (pid ${proc.pid}) exited with ${proc.exit?.code ?? proc.exit?.signal}` : undefined),
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${tail}`);
    });
    proc.readyAt = Date.now();
    return proc;
  }

  /**
   * Send `signal` to slot `index`'s process and wait for it to exit; returns the process record.
   * A SIGTERM not obeyed within `graceMs` is followed by SIGKILL, as an orchestrator's
   * termination grace period ends (escalatedAt says when).
   */
  async stop(index: number, signal: 'SIGKILL' | 'SIGTERM', graceMs = CHILD_PATIENCE_MS): Promise<FleetProcess> {
    const proc = this.live(index);
    if (!proc) throw new Error(`broker slot ${index} is not running`);
    const exited = new Promise<void>((resolve) => {
      if (proc.exitedAt !== undefined) resolve();
      else proc.child.once('exit', () => resolve());
    });
    proc.signalledAt = Date.now();
    proc.signal = signal;
    proc.child.kill(signal);
    if (signal === 'SIGTERM') {
      const graceOver = setTimeout(() => {
        if (proc.exitedAt !== undefined) return;
        proc.escalatedAt = Date.now();
        proc.child.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(graceOver);
      return proc;
    }
    await within(exited, `broker ${index} (pid ${proc.pid}) did not exit after ${signal}`, CHILD_PATIENCE_MS);
    return proc;
  }

  /** Kill every live process (SIGKILL) and wait for each to exit. */
  async close(): Promise<void> {
    await Promise.all(this.processes.filter((p) => p.exitedAt === undefined).map(async (p) => {
      const exited = new Promise((r) => p.child.once('exit', r));
      p.child.kill('SIGKILL');
      await exited;
    }));
  }
}
