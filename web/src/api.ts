/** GraphQL over HTTP against this origin's /graphql: the console reads everything through the public API. */

/** One error of a GraphQL answer, with the broker's stable code when it has one. */
export interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string; violations?: { path: string; message: string }[] };
}

/** A failed request: the broker's coded errors, or the HTTP status when the answer was not GraphQL. */
export class ApiError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/** POST a query with the browser's session cookie; resolves with `data`, rejects with the first error (code and message). */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch('/graphql', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  let body: { data?: T; errors?: GraphQLErrorBody[]; code?: string; message?: string };
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`the broker answered HTTP ${res.status} without JSON`);
  }
  if (body.errors?.length) {
    const [first] = body.errors;
    const detail = first.extensions?.violations?.map((v) => `${v.path}: ${v.message}`).join('; ');
    throw new ApiError(detail ? `${first.message} (${detail})` : first.message, first.extensions?.code);
  }
  if (!res.ok || body.data === undefined) throw new ApiError(body.message ?? `the broker answered HTTP ${res.status}`, body.code);
  return body.data;
}

/** A message for any failure, with its code first when there is one. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError && err.code) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
