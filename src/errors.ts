// One error catalogue for every layer. A failure is raised with a stable kind; each transport only
// translates the kind (HTTP status + Seldon reason for REST, a status code for gRPC).
export type ErrorKind =
  | 'bad_data' // the request is malformed or asks for something invalid
  | 'not_found' // a route or a resource (model version, puid) that does not exist
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unauthorized'
  | 'unavailable' // not ready yet, draining, or the store cannot take writes
  | 'conflict' // the resource is busy or in a state that refuses the call (a retrain runs, nothing to roll back to)
  | 'forbidden' // authenticated but not allowed (an admin route that is turned off)
  | 'not_implemented' // a call this server does not take (Seldon Route/Aggregate: recserve is a MODEL node)
  | 'bad_metadata'
  | 'internal';

export class RecserveError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'RecserveError';
  }
}

export const badData = (message: string) => new RecserveError('bad_data', message);

/**
 * Base of the named domain errors (ModelNotFoundError, StoreUnavailableError, …): each carries its kind
 * from the table below, so the funnels translate it without knowing the class.
 */
export class DomainError extends RecserveError {
  /** What an answer may say instead of `message` when the message is for operators only (paths, hosts). */
  readonly publicMessage: string | undefined;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; publicMessage?: string }) {
    super(kind, message);
    this.name = new.target.name;
    this.publicMessage = options?.publicMessage;
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** Most characters of client input an error message may quote. */
export const QUOTE_LIMIT = 200;
/** Longest message any answer carries (REST info, gRPC details): no answer can grow with its request. */
export const MESSAGE_LIMIT = 1000;

/** A short prefix of client-supplied text for an error message: at most `max` characters, then "…". */
export function clip(text: string, max = QUOTE_LIMIT): string {
  if (text.length <= max) return text;
  // Never split a surrogate pair: a lone surrogate is not valid UTF-8 in a header or body.
  let end = max;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** A client value quoted for an error message: its JSON text, clipped. */
export function quote(value: unknown): string {
  let text: string | undefined;
  try {
    text = typeof value === 'string' ? JSON.stringify(value.length > QUOTE_LIMIT * 2 ? value.slice(0, QUOTE_LIMIT * 2) : value) : JSON.stringify(value);
  } catch {
    text = undefined; // cyclic or too deep to print
  }
  return clip(text ?? String(typeof value));
}

interface Translation {
  http: number;
  reason: string;
  /** gRPC status code number (@grpc/grpc-js `status`). */
  grpc: number;
}

const table: Record<ErrorKind, Translation> = {
  bad_data: { http: 400, reason: 'MICROSERVICE_BAD_DATA', grpc: 3 /* INVALID_ARGUMENT */ },
  not_found: { http: 404, reason: 'MICROSERVICE_NOT_FOUND', grpc: 5 /* NOT_FOUND */ },
  method_not_allowed: { http: 405, reason: 'MICROSERVICE_METHOD_NOT_ALLOWED', grpc: 12 /* UNIMPLEMENTED */ },
  payload_too_large: { http: 413, reason: 'MICROSERVICE_BAD_DATA', grpc: 8 /* RESOURCE_EXHAUSTED */ },
  unauthorized: { http: 401, reason: 'MICROSERVICE_UNAUTHORIZED', grpc: 16 /* UNAUTHENTICATED */ },
  unavailable: { http: 503, reason: 'MICROSERVICE_UNAVAILABLE', grpc: 14 /* UNAVAILABLE */ },
  conflict: { http: 409, reason: 'MICROSERVICE_CONFLICT', grpc: 9 /* FAILED_PRECONDITION */ },
  forbidden: { http: 403, reason: 'MICROSERVICE_FORBIDDEN', grpc: 7 /* PERMISSION_DENIED */ },
  // Deliberately different per transport: the reference wrapper answers an undefined Route/Aggregate with
  // a 400, while gRPC has a code for exactly this.
  not_implemented: { http: 400, reason: 'MICROSERVICE_BAD_DATA', grpc: 12 /* UNIMPLEMENTED */ },
  bad_metadata: { http: 500, reason: 'MICROSERVICE_BAD_METADATA', grpc: 13 /* INTERNAL */ },
  internal: { http: 500, reason: 'MICROSERVICE_INTERNAL_ERROR', grpc: 13 /* INTERNAL */ },
};

export function translate(err: unknown): Translation & { message: string; kind: ErrorKind } {
  if (err instanceof DomainError && err.publicMessage !== undefined) return { ...table[err.kind], message: safeMessage(err.publicMessage), kind: err.kind };
  if (err instanceof RecserveError) return { ...table[err.kind], message: safeMessage(err.message), kind: err.kind };
  return { ...table.internal, message: 'internal error', kind: 'internal' };
}

/** Clipped, with lone surrogates replaced, so the text is always valid UTF-8 for a body or a gRPC trailer. */
function safeMessage(message: string): string {
  const clipped = clip(message, MESSAGE_LIMIT) as string & { toWellFormed?: () => string };
  return clipped.toWellFormed?.() ?? clipped;
}

/** Seldon's error body: status 1 (FAILURE), code always -1, as the reference wrapper writes it. */
export function seldonErrorBody(reason: string, info: string) {
  return { status: { code: -1, info, reason, status: 1 } };
}
