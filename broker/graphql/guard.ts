/**
 * The gate of every GraphQL request: before mercurius parses, validates or runs anything, the
 * query's size, tokens, aliases, directives, fields, depth and static cost are checked (one
 * bounded parse), and after it ran the serialised answer's size. Every refusal is
 * QUERY_TOO_COSTLY with what was measured and the limit, in the message and in `extensions`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { GraphQLError, Kind, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import { ConstellationError, ErrorCodes } from '../../registry/model/errors.js';
import { analyseOperation, countDocument, unboundedListFields, type DocumentCounts, type OperationAnalysis } from './cost.js';
import { QUERY_LIMITS } from './limits.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The analysed operation of a GraphQL request that passed the guard. */
    graphqlOperation?: OperationAnalysis;
  }
}

/** What was measured against which limit. */
export interface Excess {
  measure: 'bytes' | 'tokens' | 'aliases' | 'directives' | 'fields' | 'depth' | 'cost' | 'responseBytes';
  value?: number;
  limit: number;
  message: string;
}

/** The verdict on one query text. */
export type Verdict = { excess: Excess } | { syntaxError: GraphQLError } | { analysis: OperationAnalysis };

/**
 * A parsed text; `checked` keeps, per operation name and depth bound, the verdict of an
 * operation whose limits are all literal (it holds whatever the variables), so a repeated query
 * with new variables is not analysed again.
 */
type Checked = { excess: Excess } | { analysis: OperationAnalysis };
type Parsed = { document: DocumentNode; counts: DocumentCounts; checked?: WeakMap<GraphQLSchema, Map<string, Checked>> } | { excess: Excess } | { syntaxError: GraphQLError };

/** Parsed query texts, so a repeated query is parsed once (small texts only: ASTs are ~10× their text). */
const parsedTexts = new Map<string, Parsed>();
const PARSED_TEXTS_MAX = 256;
const CACHEABLE_TEXT_BYTES = 8 * 1024;

function excess(measure: Excess['measure'], value: number | undefined, limit: number, what: string): { excess: Excess } {
  const shown = value === undefined ? `more than ${limit}` : String(value);
  return { excess: { measure, value, limit, message: `the query ${what.replace('%s', shown)}; the limit is ${limit}` } };
}

/** Parse `source` within the token limit and count what it writes; refusals before any schema work. */
function parseBounded(source: string): Parsed {
  const cached = parsedTexts.get(source);
  if (cached) return cached;
  let parsed: Parsed;
  try {
    const document = parse(source, { maxTokens: QUERY_LIMITS.maxTokens, noLocation: false });
    const counts = countDocument(document);
    if (counts.aliases > QUERY_LIMITS.maxAliases) parsed = excess('aliases', counts.aliases, QUERY_LIMITS.maxAliases, 'has %s aliases');
    else if (counts.directives > QUERY_LIMITS.maxDirectives) parsed = excess('directives', counts.directives, QUERY_LIMITS.maxDirectives, 'has %s directives');
    else if (counts.fields > QUERY_LIMITS.maxFields) parsed = excess('fields', counts.fields, QUERY_LIMITS.maxFields, 'selects %s fields');
    else parsed = { document, counts };
  } catch (err) {
    if (!(err instanceof GraphQLError)) throw err;
    parsed = /contains more tha[nt] \d+ tokens/.test(err.message)
      ? excess('tokens', undefined, QUERY_LIMITS.maxTokens, 'has %s tokens')
      : { syntaxError: err };
  }
  if (source.length <= CACHEABLE_TEXT_BYTES) {
    if (parsedTexts.size >= PARSED_TEXTS_MAX) parsedTexts.delete(parsedTexts.keys().next().value!);
    parsedTexts.set(source, parsed);
  }
  return parsed;
}

/** The checks that need the schema: depth (the same bound as mercurius' queryDepth) and static cost. */
function checkOperation(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | null | undefined | 'unknown', operationName: string | null | undefined, maxDepth: number): Checked {
  return verdictOn(analyseOperation(schema, document, variables, operationName), maxDepth);
}

/** The verdict on an analysed operation. */
function verdictOn(analysis: OperationAnalysis, maxDepth: number): Checked {
  if (analysis.depth > maxDepth) return excess('depth', analysis.depth, maxDepth, 'has depth %s');
  if (analysis.cost > QUERY_LIMITS.maxCost) {
    return excess('cost', analysis.cost, QUERY_LIMITS.maxCost, 'could build %s objects (each list counts its limit times its selection); ask with smaller limits or fewer fields');
  }
  return { analysis };
}

/** The first refusal among every operation of `document` (the hook is not told which one runs, nor the variables). */
function worstOperation(schema: GraphQLSchema, document: DocumentNode, maxDepth: number): { excess: Excess } | { analysis: OperationAnalysis } {
  let verdict: { excess: Excess } | { analysis: OperationAnalysis } = { analysis: { cost: 0, depth: 0, volatile: false } };
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    verdict = checkOperation(schema, { ...document, definitions: [...document.definitions.filter((d) => d.kind !== Kind.OPERATION_DEFINITION), def] }, 'unknown', undefined, maxDepth);
    if ('excess' in verdict) return verdict;
  }
  return verdict;
}

/** Judge one query text: too big, unparseable, too costly, or its analysis. */
export function judgeQuery(schema: GraphQLSchema, source: string, variables: Record<string, unknown> | null | undefined, operationName: string | null | undefined, maxDepth: number): Verdict {
  // Bytes before anything else: a UTF-16 length over the limit is over it in UTF-8 too.
  if (source.length > QUERY_LIMITS.maxBytes) return excess('bytes', Buffer.byteLength(source), QUERY_LIMITS.maxBytes, 'has %s bytes');
  const bytes = Buffer.byteLength(source);
  if (bytes > QUERY_LIMITS.maxBytes) return excess('bytes', bytes, QUERY_LIMITS.maxBytes, 'has %s bytes');
  const parsed = parseBounded(source);
  if (!('document' in parsed)) return parsed;
  const key = `${maxDepth}\u0000${operationName ?? ''}`;
  const known = parsed.checked?.get(schema)?.get(key);
  if (known !== undefined) return known;
  const analysis = analyseOperation(schema, parsed.document, variables, operationName);
  const verdict = verdictOn(analysis, maxDepth);
  // Only texts kept in parsedTexts are remembered, and only verdicts the variables cannot change.
  if (!analysis.variableLimits && source.length <= CACHEABLE_TEXT_BYTES) {
    parsed.checked ??= new WeakMap();
    let bySchema = parsed.checked.get(schema);
    if (bySchema === undefined) parsed.checked.set(schema, (bySchema = new Map()));
    if (bySchema.size < 8) bySchema.set(key, verdict);
  }
  return verdict;
}

/** The GraphQL error body of a refusal (the shape mercurius answers with). */
export function refusalBody(e: Excess): string {
  const code = ErrorCodes.QUERY_TOO_COSTLY.code;
  return JSON.stringify({ data: null, errors: [{ message: e.message, extensions: { code, measure: e.measure, ...(e.value === undefined ? {} : { value: e.value }), limit: e.limit } }] });
}

function refuse(reply: FastifyReply, body: string, status: number) {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(body);
}

export interface GuardOptions {
  /** Deepest selection accepted (mercurius' queryDepth checks the same afterwards). */
  maxDepth: number;
}

/**
 * Guard POST and GET /graphql. Registered before mercurius, so its hooks apply to mercurius'
 * routes; the query is judged in preValidation, after the body is read and before mercurius
 * parses it, and the answer's size in onSend, where mercurius' serialised answer passes.
 */
export function guardGraphQLRequests(app: FastifyInstance, options: GuardOptions): void {
  // A GraphQL body is a query (at most maxBytes) and its variables (a MOC of at most 256 KiB, a
  // small document): a larger body is refused before it is read and parsed, which for several
  // MB would hold the event loop for a hundred ms and more. Large documents go through PUT.
  app.addHook('onRoute', (route) => {
    if (route.url === '/graphql') route.bodyLimit = Math.min(route.bodyLimit ?? Number.POSITIVE_INFINITY, QUERY_LIMITS.maxBodyBytes);
  });
  app.addHook('preValidation', async (request, reply) => {
    if (request.routeOptions.url !== '/graphql') return;
    const params = (request.method === 'GET' ? request.query : request.body) as Record<string, unknown> | null | undefined;
    if (!params || typeof params !== 'object' || Array.isArray(params) || typeof params.query !== 'string') return;
    let variables = params.variables;
    if (typeof variables === 'string') {
      try {
        variables = JSON.parse(variables);
      } catch {
        variables = undefined; // mercurius reports it
      }
    }
    const verdict = judgeQuery(app.graphql.schema, params.query, variables as Record<string, unknown> | undefined, typeof params.operationName === 'string' ? params.operationName : undefined, options.maxDepth);
    if ('excess' in verdict) {
      request.log.info({ measure: verdict.excess.measure, value: verdict.excess.value, limit: verdict.excess.limit }, 'GraphQL query refused: too costly');
      return refuse(reply, refusalBody(verdict.excess), ErrorCodes.QUERY_TOO_COSTLY.status);
    }
    // Answered here, as mercurius would: its own fallback would read an unparseable text as a JSON AST the guard never saw.
    if ('syntaxError' in verdict) return refuse(reply, JSON.stringify({ data: null, errors: [verdict.syntaxError.toJSON()] }), 400);
    request.graphqlOperation = verdict.analysis;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.routeOptions.url !== '/graphql' || typeof payload !== 'string') return payload;
    const max = QUERY_LIMITS.maxResponseBytes;
    // A UTF-16 length at most a third of the limit cannot exceed it in UTF-8.
    if (payload.length * 3 <= max) return payload;
    const bytes = Buffer.byteLength(payload);
    if (bytes <= max) return payload;
    request.log.info({ bytes, limit: max }, 'GraphQL answer refused: too large');
    reply.code(ErrorCodes.QUERY_TOO_COSTLY.status).header('content-type', 'application/json; charset=utf-8');
    return refusalBody({ measure: 'responseBytes', value: bytes, limit: max, message: `the answer has ${bytes} bytes; the limit is ${max}; ask with smaller limits or fewer fields` });
  });
}

/**
 * Guard subscriptions over the WebSocket, which do not pass the HTTP routes: the same counts,
 * depth and cost, refused with QUERY_TOO_COSTLY. Call after mercurius is registered. Also
 * checks that every list field of the schema is bounded, so none escapes the cost analysis.
 */
export function guardSubscriptions(app: FastifyInstance, options: GuardOptions): void {
  const unbounded = unboundedListFields(app.graphql.schema);
  if (unbounded.length > 0) throw new Error(`list fields without a limit in LIST_MAX or LIST_ASSUMED: ${unbounded.join(', ')}`);
  app.graphql.addHook('preSubscriptionExecution', async (schema, document) => {
    const counts = countDocument(document);
    const over =
      counts.aliases > QUERY_LIMITS.maxAliases ? excess('aliases', counts.aliases, QUERY_LIMITS.maxAliases, 'has %s aliases')
        : counts.directives > QUERY_LIMITS.maxDirectives ? excess('directives', counts.directives, QUERY_LIMITS.maxDirectives, 'has %s directives')
          : counts.fields > QUERY_LIMITS.maxFields ? excess('fields', counts.fields, QUERY_LIMITS.maxFields, 'selects %s fields')
            : worstOperation(schema, document, options.maxDepth);
    if ('excess' in over) throw new ConstellationError('QUERY_TOO_COSTLY', over.excess.message);
  });
}
