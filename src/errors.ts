// One error catalogue for every layer. A failure is raised with a stable kind; each transport only
// translates the kind (HTTP status + Seldon reason for REST, a status code for gRPC).
export type ErrorKind =
  | 'bad_data' // the request is malformed or asks for something invalid
  | 'not_found' // a route or a resource (model version, puid) that does not exist
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unauthorized'
  | 'unavailable' // not ready yet, draining, or the store cannot take writes
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
  bad_metadata: { http: 500, reason: 'MICROSERVICE_BAD_METADATA', grpc: 13 /* INTERNAL */ },
  internal: { http: 500, reason: 'MICROSERVICE_INTERNAL_ERROR', grpc: 13 /* INTERNAL */ },
};

export function translate(err: unknown): Translation & { message: string; kind: ErrorKind } {
  if (err instanceof RecserveError) return { ...table[err.kind], message: err.message, kind: err.kind };
  return { ...table.internal, message: 'internal error', kind: 'internal' };
}

/** Seldon's error body: status 1 (FAILURE), code always -1, as the reference wrapper writes it. */
export function seldonErrorBody(reason: string, info: string) {
  return { status: { code: -1, info, reason, status: 1 } };
}
