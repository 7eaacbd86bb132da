/** The one place node-cron is used: validating and running cron schedules. */
import cron from 'node-cron';

/** True when `expression` is a schedule node-cron accepts. */
export function isValidSchedule(expression: string): boolean {
  return cron.validate(expression);
}
