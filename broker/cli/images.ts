/** `constellation images`: the container images the federation's sites advertise. */
import { invalidArgument } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { brokerClient } from './broker-client.js';
import { EXIT } from './exit-codes.js';
import { writeJson } from './output.js';
import { formatTable } from './table.js';

/** What `constellation images` was given. */
export interface ImagesArgs {
  text?: string;
  software?: string;
  type?: string;
  arch?: string;
  site?: string;
  limit?: string;
  json?: boolean;
}

interface ImageLine {
  ref: string;
  digest: string | null;
  arch: string | null;
  types: string[];
  software: string[];
  compute: string[] | null;
  site: { id: string };
}

/** `constellation images [--text T] [--software S] [--type T] [--arch A] [--site ID] [--limit N] [--json]`. */
export async function imagesCommand(config: Config, args: ImagesArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const limit = Number(args.limit ?? 1000);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw invalidArgument('--limit', `must be a whole number from 1 to 10000, not "${args.limit}"`);
  const filter = { name: args.text, software: args.software, type: args.type, arch: args.arch, site: args.site };
  const broker = await brokerClient(config, env);
  const { images } = await broker.graphql<{ images: ImageLine[] }>(
    'query($f: ImageFilter, $l: Int) { images(filter: $f, limit: $l) { ref digest arch types software compute site { id } } }',
    { f: filter, l: limit },
  );
  if (args.json) {
    writeJson({ images });
    return EXIT.OK;
  }
  // Image references and software lists are the sites' own words: formatTable makes them printable.
  const rows = images.map((i) => [i.ref, i.site.id, i.arch ?? '-', i.types.join(','), i.software.slice(0, 6).join(', ') + (i.software.length > 6 ? `, … (${i.software.length})` : '')]);
  process.stdout.write(formatTable(['IMAGE', 'SITE', 'ARCH', 'TYPES', 'SOFTWARE'], rows));
  return EXIT.OK;
}
