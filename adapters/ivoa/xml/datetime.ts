/** xs:dateTime reading that never throws: services send odd timestamps and we keep what they sent. */

/** A timestamp as the service wrote it, and as a Date when it is a valid one. */
export interface Instant {
  raw: string;
  /** null when `raw` is not a valid date-time (e.g. "2000-00-00T00:00:00Z" or "-1"). */
  date: Date | null;
}

const DATE_TIME =
  /^(-?\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/**
 * Parses an ISO 8601 / xs:dateTime value, also accepting "+0800" offsets, a space instead of
 * "T" and a bare date. A value without a zone is taken as UTC, as DALI prescribes.
 */
export function parseDateTime(raw: string): Date | null {
  const m = DATE_TIME.exec(raw.trim());
  if (m === null) return null;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = m[4] === undefined ? 0 : Number(m[4]);
  const minute = m[5] === undefined ? 0 : Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  // 24:00:00 is the end of the day in xs:dateTime; 60 seconds allows a leap second.
  if (hour > 24 || minute > 59 || second > 60 || (hour === 24 && (minute !== 0 || second !== 0 || millis !== 0))) return null;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (oh > 14 || om > 59) return null;
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const d = new Date(0);
  // setUTCFullYear avoids Date.UTC's mapping of years 0..99 onto 1900..1999.
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, millis);
  const t = d.getTime() - offsetMinutes * 60_000;
  return Number.isFinite(t) ? new Date(t) : null;
}

/** Keeps the raw text and adds the Date when the text is a valid date-time. */
export function parseInstant(raw: string): Instant {
  const text = raw.trim();
  return { raw: text, date: parseDateTime(text) };
}
