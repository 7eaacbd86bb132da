/** The one place node-cron is used: validating and running cron schedules. */
import cron from 'node-cron';

/** True when `expression` is a schedule node-cron accepts. */
export function isValidSchedule(expression: string): boolean {
  return cron.validate(expression);
}

/** A running schedule. */
export interface CronTask {
  stop(): void;
}

/**
 * Call `onTick` with each tick's scheduled time (whole seconds); a tick that comes while the
 * previous one still runs is skipped.
 */
export function onSchedule(expression: string, name: string, onTick: (tick: Date) => Promise<void>): CronTask {
  const task = cron.schedule(expression, (ctx) => onTick(new Date(Math.floor(ctx.date.getTime() / 1000) * 1000)), { name, noOverlap: true });
  return { stop: () => void task.destroy() };
}
