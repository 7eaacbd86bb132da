/** DALI error documents: a VOTable whose QUERY_STATUS INFO says ERROR and carries the message. */
import { isConstellationError } from '../../registry/model/errors.js';
import { xmlEscape } from './xml.js';

/** The media type of every VOTable the facade writes. */
export const VOTABLE_TYPE = 'application/x-votable+xml';

/** A VOTable error document for `message` (the code, when there is one, leads the message). */
export function errorVotable(message: string, code?: string): string {
  const text = code ? `${code}: ${message}` : message;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n' +
    '<RESOURCE type="results">\n' +
    `<INFO name="QUERY_STATUS" value="ERROR">${xmlEscape(text)}</INFO>\n` +
    '</RESOURCE>\n</VOTABLE>\n'
  );
}

/** The HTTP status and VOTable body that answer `err` (a coded error keeps its status; anything else is 500 with no detail). */
export function errorAnswer(err: unknown): { status: number; body: string } {
  if (isConstellationError(err)) return { status: err.statusCode, body: errorVotable(err.message, err.code) };
  const status = (err as { statusCode?: unknown }).statusCode;
  // fastify's own refusals (a body over the limit, a bad content type) say what was wrong.
  if (typeof status === 'number' && status >= 400 && status < 500) return { status, body: errorVotable((err as Error).message) };
  return { status: 500, body: errorVotable('internal error', 'CONSTELLATION_E_INTERNAL') };
}
