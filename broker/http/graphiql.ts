/** GraphiQL served from the installed graphiql, react and react-dom packages, so /graphiql works without internet access. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { packagePath } from '../../registry/paths.js';

const gzipAsync = promisify(gzip);
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
// Asset URLs carry a hash of their content, so browsers may keep them for a year: an upgrade changes the URL.
const IMMUTABLE = 'public, max-age=31536000, immutable';

interface Asset {
  url: string;
  type: string;
  body: Buffer;
  gzipped?: Promise<Buffer>;
}

/** The absolute path of `file` inside the installed package `name`, found the way Node resolves it. */
function packageFile(name: string, file: string): string {
  return join(dirname(createRequire(import.meta.url).resolve(`${name}/package.json`)), file);
}

/** Read the files the page needs; the page lists them in this order, which is the order they must run in. */
async function loadAssets(): Promise<Asset[]> {
  const files = [
    // graphiql's UMD build reads the React and ReactDOM globals, so both load first.
    { path: packageFile('react', 'umd/react.production.min.js'), type: JS },
    { path: packageFile('react-dom', 'umd/react-dom.production.min.js'), type: JS },
    { path: packageFile('graphiql', 'graphiql.min.js'), type: JS },
    { path: packageFile('graphiql', 'graphiql.min.css'), type: CSS },
    // Ours, shipped as files rather than inline so the page's CSP can refuse inline script and style.
    { path: packagePath('broker/http/graphiql-assets/start.js'), type: JS },
    { path: packagePath('broker/http/graphiql-assets/start.css'), type: CSS },
  ];
  return Promise.all(files.map(async ({ path, type }) => {
    const body = await readFile(path);
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
    const ext = extname(path);
    return { url: `/graphiql/assets/${basename(path, ext)}.${hash}${ext}`, type, body };
  }));
}

/** The page: only same-origin stylesheets and scripts, started by start.js. */
function page(assets: Asset[]): string {
  const styles = assets.filter((a) => a.type === CSS).map((a) => `<link rel="stylesheet" href="${a.url}">`);
  const scripts = assets.filter((a) => a.type === JS).map((a) => `<script src="${a.url}"></script>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Constellation · GraphiQL</title>
${styles.join('\n')}
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
${scripts.join('\n')}
</body>
</html>
`;
}

/** The page's CSP: everything from this origin only, nothing inline; fonts and icons are data: URLs inside graphiql's CSS. */
function contentSecurityPolicy(host: string): string {
  // 'self' covers ws(s):// of the same host only in CSP level 3 browsers; name it for the others,
  // but only a plain host[:port], so a crafted Host header cannot add directives.
  const sockets = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "font-src 'self' data:",
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Whether an Accept-Encoding header admits gzip (a `q=0` refuses it). */
function acceptsGzip(header: string | undefined): boolean {
  return (header ?? '').split(',').some((part) => {
    const [coding, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return coding === 'gzip' && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** GET /graphiql (the page) and /graphiql/assets/<file> (exactly the files it references, nothing else). */
export async function graphiqlRoutes(app: FastifyInstance): Promise<void> {
  const assets = await loadAssets();
  const byUrl = new Map(assets.map((a) => [a.url, a]));
  const html = page(assets);

  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
  });

  app.get('/graphiql', async (request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', contentSecurityPolicy(request.host))
      // The page names the current asset hashes, so it must be revalidated after an upgrade.
      .header('cache-control', 'no-cache')
      .header('referrer-policy', 'no-referrer')
      .send(html),
  );

  // A lookup by exact URL: a decoded "../" or any other name is simply not there.
  app.get<{ Params: { file: string } }>('/graphiql/assets/:file', async (request, reply) => {
    const asset = byUrl.get(`/graphiql/assets/${request.params.file}`);
    if (!asset) return reply.callNotFound();
    reply.header('content-type', asset.type).header('cache-control', IMMUTABLE).header('vary', 'accept-encoding');
    if (!acceptsGzip(request.headers['accept-encoding'])) return reply.send(asset.body);
    // graphiql.min.js shrinks from 978 kB to 310 kB; compressed once, on first request.
    asset.gzipped ??= gzipAsync(asset.body);
    return reply.header('content-encoding', 'gzip').send(await asset.gzipped);
  });
}
