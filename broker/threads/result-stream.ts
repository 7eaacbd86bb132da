/** A COMPLETED thread's stored result file, streamed as VOTable, CSV or JSON. */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { ConstellationError } from '../../registry/model/errors.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import { RESULT_TYPES, convertResult, startStream, type ResultFormat, type ResultStream } from '../jobs/results.js';

/** Stream `thread`'s result in `format`; NOT_FOUND before it completed, RESULT_EXPIRED when its file is gone. */
export async function threadResult(thread: ThreadRow, format: ResultFormat): Promise<ResultStream> {
  if (thread.state !== 'COMPLETED') {
    throw new ConstellationError('NOT_FOUND', `thread ${thread.id} has no result: it is ${thread.state}${thread.errorMessage ? ` (${thread.errorMessage})` : ''}`);
  }
  const expired = new ConstellationError('RESULT_EXPIRED', `the result of thread ${thread.id} is no longer kept (results.retentionDays); run the cross-match again`);
  const path = thread.resultPath;
  if (path === null) throw expired;
  try {
    await access(path);
  } catch {
    throw expired;
  }
  return startStream(convertResult({ contentType: RESULT_TYPES.votable, body: createReadStream(path) }, format));
}
