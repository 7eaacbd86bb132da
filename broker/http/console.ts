/**
 * The web console at /: the page and assets Vite built from web/ into dist/web/ (at `npm ci`,
 * through package.json's prepare), served by @fastify/static, and /console/config.json, the two
 * facts about the federation the page cannot get from GraphQL. Everything the page shows it
 * reads from the public /graphql.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { packagePath } from '../../registry/paths.js';

/** Where the built console lives (web/vite.config.ts writes it). */
export const CONSOLE_DIR = packagePath('dist/web');

// Vite names assets by a hash of their content, so browsers may keep them for a year.
const IMMUTABLE = 'public, max-age=31536000, immutable';

export interface ConsoleOptions {
  /** The federation's name, shown in the page header. */
  federation: string;
  /** Whether federation.yaml names an identity provider (the page then links to /login and /logout). */
  identity: boolean;
  /** Where the built console is (tests point elsewhere); default CONSOLE_DIR. */
  dir?: string;
}

/**
 * The console's CSP: scripts, styles and fonts from this origin only, nothing inline, no eval;
 * images from this origin or data: (the favicon); connections to this origin's /graphql over
 * HTTP and WebSocket. The same policy as GraphiQL's.
 */
export function consoleContentSecurityPolicy(host: string): string {
  // 'self' covers ws(s):// of the same host only in CSP level 3 browsers; name it for the others,
  // but only a plain host[:port], so a crafted Host header cannot add directives.
  const sockets = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "font-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

/** GET / (the page), /assets/<file> (exactly the built files, nothing else) and /console/config.json. */
export async function consoleRoutes(app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  const dir = options.dir ?? CONSOLE_DIR;
  const config = JSON.stringify({ federation: options.federation, identity: options.identity });

  // Set before the app's onSend hook, which adds only frame-ancestors when a route set no CSP.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('content-security-policy', consoleContentSecurityPolicy(request.host));
  });

  app.get('/console/config.json', async (_request, reply) => reply.header('cache-control', 'no-cache').type('application/json; charset=utf-8').send(config));

  if (!existsSync(join(dir, 'index.html'))) {
    // A checkout whose console was never built (npm ci builds it): say how, rather than 404.
    app.log.warn({ dir }, 'the web console is not built; run `npm run build:web` (npm ci does it)');
    app.get('/', async (_request, reply) =>
      reply.code(503).type('text/plain; charset=utf-8').send('The web console is not built: run `npm run build:web` (npm ci does it). GraphQL is at /graphql, GraphiQL at /graphiql.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    // Routes for exactly the files built, found once at start: any other path is the app's 404.
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    dotfiles: 'deny',
    redirect: false,
    cacheControl: false,
    etag: true,
    lastModified: false,
    setHeaders: (reply, path) => {
      // The page names the current asset hashes, so it is revalidated every time.
      reply.header('cache-control', path.endsWith('.html') ? 'no-cache' : IMMUTABLE);
    },
  });
}
