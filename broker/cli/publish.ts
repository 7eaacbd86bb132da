/**
 * `constellation publish FILE --site ID`: PUT a capability document to /sites/ID/capabilities,
 * streamed from the file. The site's publish key is read from an environment variable
 * (CONSTELLATION_PUBLISH_KEY, or the one --key-env names), never from the command line where
 * other users could read it in the process list; a logged-in operator or admin needs none.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { invalidArgument } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { PUBLISH_KEY_HEADER } from '../auth/rights.js';
import { brokerClient } from './broker-client.js';
import { EXIT } from './exit-codes.js';
import { writeJson } from './output.js';
import { printableInline } from './terminal.js';

/** The variable the publish key is read from unless --key-env names another. */
export const PUBLISH_KEY_ENV = 'CONSTELLATION_PUBLISH_KEY';

/** What `constellation publish` was given. */
export interface PublishArgs {
  file?: string;
  site?: string;
  keyEnv?: string;
  json?: boolean;
}

interface PublishAnswer {
  siteId?: string;
  registryVersion?: number;
  documentId?: number;
  replicas?: number;
}

/** `constellation publish FILE --site ID [--key-env VAR] [--json]`. */
export async function publishCommand(config: Config, args: PublishArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (!args.file) throw invalidArgument('FILE', 'is required: constellation publish FILE --site ID (a capability document, JSON)');
  if (!args.site) throw invalidArgument('--site', 'is required: the id of the site the document describes');
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(args.site)) throw invalidArgument('--site', `must be a site id ([a-z0-9-], at most 63), not "${args.site}"`);
  if (args.keyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(args.keyEnv)) throw invalidArgument('--key-env', `must name an environment variable, not "${args.keyEnv}"`);
  const keyVar = args.keyEnv ?? PUBLISH_KEY_ENV;
  const key = env[keyVar];
  if (args.keyEnv !== undefined && !key) throw invalidArgument('--key-env', `names ${keyVar}, which is not set`);
  let size: number;
  try {
    const info = await stat(args.file);
    if (!info.isFile()) throw new Error('not a regular file');
    size = info.size;
  } catch (err) {
    throw invalidArgument('FILE', `${args.file} cannot be read (${err instanceof Error ? err.message : String(err)})`);
  }
  const broker = await brokerClient(config, env);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(size) };
  if (key) headers[PUBLISH_KEY_HEADER] = key;
  const answer = (await broker.send('PUT', `/sites/${args.site}/capabilities`, createReadStream(args.file), headers)) as PublishAnswer;
  if (args.json) {
    writeJson({ published: answer });
    return EXIT.OK;
  }
  process.stdout.write(`published ${printableInline(args.file)} as the capabilities of ${args.site}: ${answer.replicas ?? 0} dataset replica(s), document ${answer.documentId ?? '-'}, registry version ${answer.registryVersion ?? '-'}\n`);
  return EXIT.OK;
}
