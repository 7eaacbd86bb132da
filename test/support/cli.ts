/** Running the real `constellation` command in a child process (from source, through tsx). */
import { spawn } from 'node:child_process';
import { packagePath } from '../../registry/paths.js';
import { CHILD_PATIENCE_MS } from './wait.js';
import { logSink } from './log-capture.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a `constellation` child: this process's, without DATABASE_URL (the
 * suite's shared server database, which a child must never migrate or seed unless a test
 * hands it a fresh database's URL explicitly), at LOG_LEVEL warn, then `env`.
 */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return { ...process.env, DATABASE_URL: undefined, LOG_LEVEL: 'warn', ...env };
}

/**
 * Run `constellation <args>` with `env` added to `childEnv`. The child is
 * killed after `timeoutMs` (a guard against hanging, generous because starting tsx and a
 * database on a loaded machine takes long); the result's stderr then says so. A test that
 * calls this must have a vitest timeout above `timeoutMs` for each call it makes.
 */
export function runCli(args: string[], env: Record<string, string | undefined>, timeoutMs = CHILD_PATIENCE_MS): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', packagePath('broker/cli/run.ts'), ...args], {
      cwd: packagePath('.'),
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    // The child's output is log output too: it joins the file's capture, checked for secrets.
    child.stdout.on('data', (d) => {
      stdout += d;
      logSink.write(d);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      logSink.write(d);
    });
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (killed) stderr += `\n[runCli: constellation ${args.join(' ')} killed after ${timeoutMs} ms]`;
      resolve({ code, stdout, stderr });
    });
  });
}
