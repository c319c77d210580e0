// The express app: routes come from openapi.yaml (each operationId has one handler), bodies are read
// the way Seldon's wrapper reads them, and every error leaves through one funnel in Seldon's format.
import type http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import swaggerUi from 'swagger-ui-express';
import type { Config } from '../../config/index.js';
import { badData, RecserveError, seldonErrorBody, translate } from '../../errors.js';
import { limitHint, type Limits } from '../../config/limits.js';
import { openapi } from '../../protocols/contract.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Metrics } from '../../telemetry/metrics.js';
import type { Handler } from '../../protocols/seldon-v1/rest-routes.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export interface RestDeps {
  config: Config;
  metrics: Metrics;
  log: Logger;
  /** operationId → handler, from the protocols (Seldon v1, admin); every operation in openapi.yaml has one. */
  handlers: Record<string, Handler>;
  /** operationIds that need the model: before it is warm they wait for `whenServing` (bounded). */
  needsModel?: ReadonlySet<string>;
  whenServing?: () => Promise<void>;
  /**
   * Error bodies by path prefix, for protocols whose errors are not Seldon's (V2's {"error"} under /v2);
   * every other path answers in Seldon's format.
   */
  errorWriters?: { prefix: string; write: ErrorWriter }[];
}

/** How a protocol answers a failure: the status and the body. */
export type ErrorWriter = (err: unknown) => { status: number; body: unknown };

/** Seldon's error body, with the status of the one error table. */
export const seldonErrorWriter: ErrorWriter = (err) => {
  const t = translate(err);
  return { status: t.http, body: seldonErrorBody(t.reason, t.message) };
};

export function createRestApp(deps: RestDeps): express.Express {
  const { config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('etag', false);

  // Access log and request metrics for every request, matched or not.
  const record = requestRecorder(deps); // shared with the predict fast path
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      record(req.method, req.path, (res.locals.route as string | undefined) ?? 'unmatched', res.statusCode, started, res.locals.puid, res.locals.payload);
    });
    next();
  });

  // CORS for every origin, as the Python wrapper's flask_cors default does.
  app.use((req, res, next) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? 'Content-Type');
      res.status(204).end();
      return;
    }
    next();
  });

  const { doc } = openapi();
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(doc, { customSiteTitle: 'recserve — Swagger UI', swaggerOptions: { tryItOutEnabled: false, displayRequestDuration: true } }));

  const { handlers, whenServing } = deps;
  const writers = deps.errorWriters ?? [];
  const sendError = (req: Request, res: Response, err: unknown) => {
    // express routes ignore case (/V2/… reaches the V2 handlers), so the prefix does too.
    const p = req.path.toLowerCase();
    const writer = writers.find((w) => p === w.prefix || p.startsWith(`${w.prefix}/`))?.write ?? seldonErrorWriter;
    writeError(res, err, writer);
  };
  const needsModel = deps.needsModel ?? new Set<string>();
  const bodyReader = readBody(config.bodyLimitBytes, config.limits);
  const waitForModel = (_req: Request, _res: Response, next: NextFunction) => {
    whenServing!().then(() => next(), next);
  };
  const noWait = (_req: Request, _res: Response, next: NextFunction) => next();
  for (const [route, item] of Object.entries(doc.paths)) {
    const allowed: string[] = [];
    // openapi's {name} is express's :name (express 5 reads braces as an optional part).
    const expressPath = route.replace(/\{(\w+)\}/g, ':$1');
    for (const method of METHODS) {
      const op = item[method] as { operationId?: string } | undefined;
      if (!op) continue;
      const handler = op.operationId ? handlers[op.operationId] : undefined;
      if (!handler) throw new Error(`openapi.yaml ${method.toUpperCase()} ${route}: no handler for operationId ${op.operationId}`);
      allowed.push(method.toUpperCase());
      app[method](expressPath, (req, res, next) => {
        res.locals.route = route;
        next();
      }, bodyReader, whenServing && needsModel.has(op.operationId!) ? waitForModel : noWait, async (req: Request, res: Response) => {
        await handler(req, res);
      });
    }
    // The path exists but not for this method: 405 with the methods that do exist.
    app.all(expressPath, (req, res) => {
      res.locals.route = route;
      res.setHeader('Allow', allowed.join(', '));
      sendError(req, res, new RecserveError('method_not_allowed', `${req.method} is not allowed on ${route}; use ${allowed.join(' or ')}`));
    });
  }

  app.use((req, res) => {
    sendError(req, res, new RecserveError('not_found', `no route ${req.method} ${req.path}; see /docs for the API`));
  });

  // The one error funnel: express 5 routes rejected promises here too.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = bodyError(err) ?? err;
    const t = translate(e);
    if (t.kind === 'internal') log.error({ err, path: req.path }, 'unhandled error');
    if (res.headersSent) {
      res.end();
      return;
    }
    sendError(req, res, e);
  });
  return app;
}

/**
 * The access log line and request metrics of one finished request. One function for the express app
 * and the predict fast path (fast-path.ts), so both log and count alike.
 */
export function requestRecorder({ config, metrics, log }: Pick<RestDeps, 'config' | 'metrics' | 'log'>) {
  return (method: string, path: string, route: string, status: number, started: bigint, puid: unknown, payload: unknown): void => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    metrics.recordRequest('rest', route, status, ms / 1000);
    const entry: Record<string, unknown> = { puid, method, route, path, status, duration_ms: Math.round(ms * 1000) / 1000 };
    if (config.logPayloads && payload !== undefined) entry.payload = payload;
    if (status >= 500) log.error(entry, 'request failed');
    else log.info(entry, 'request');
  };
}

function writeError(res: Response, err: unknown, writer: ErrorWriter): void {
  // The rest of an oversized body is not worth reading: answer, then close the connection.
  if (translate(err).kind === 'payload_too_large') res.setHeader('Connection', 'close');
  const { status, body } = writer(err);
  res.status(status).json(body);
}

/** An Expect header other than 100-continue (http.Server 'checkExpectation'): 417 in Seldon's format. */
export function expectationFailed(req: http.IncomingMessage, res: http.ServerResponse): void {
  const expect = String(req.headers.expect ?? '');
  const shown = expect.length > 64 ? `${expect.slice(0, 64)}…` : expect;
  const text = JSON.stringify(seldonErrorBody('MICROSERVICE_BAD_DATA', `Expect: ${JSON.stringify(shown)} is not supported; only 100-continue is`));
  res.writeHead(417, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Access-Control-Allow-Origin': '*', Connection: 'close' });
  res.end(text);
}

/**
 * Requests Node's HTTP parser refuses before any handler runs (a URL or headers past the 16 KB header
 * limit, malformed framing). Node would answer a bare 400/431 with no body; answer in Seldon's format.
 */
export function clientError(err: NodeJS.ErrnoException & { code?: string }, socket: import('node:stream').Duplex): void {
  // An answer already under way on this socket cannot be followed by another status line.
  const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (err.code === 'ECONNRESET' || !socket.writable || answering) {
    socket.destroy();
    return;
  }
  const [status, phrase, info] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'the request line and headers are larger than 16384 bytes; send the message as a POST body']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'the request was not received in time (RECSERVE_HEADERS_TIMEOUT_MS, RECSERVE_REQUEST_TIMEOUT_MS)']
        : [400, 'Bad Request', 'the request is not valid HTTP/1.1'];
  const text = JSON.stringify(seldonErrorBody('MICROSERVICE_BAD_DATA', info));
  socket.end(`HTTP/1.1 ${status} ${phrase}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}

/** Errors thrown by body parsers, in our catalogue. */
export function bodyError(err: unknown): RecserveError | null {
  const e = err as { type?: string; code?: string; name?: string; status?: number; message?: string; limit?: number };
  if (err instanceof RecserveError) return err;
  // express decodes path parameters: a %-sequence that is not UTF-8 is the client's.
  if (err instanceof URIError) return badData('the path is not valid percent-encoded UTF-8');
  if (e?.type === 'entity.too.large' || e?.code === 'LIMIT_FILE_SIZE' || e?.code === 'LIMIT_FIELD_VALUE') return tooLarge(e.limit);
  if (e?.type === 'request.aborted') return badData('the client aborted the request body');
  return null;
}

function tooLarge(limit: number | undefined): RecserveError {
  return new RecserveError('payload_too_large', `request body is larger than the limit of ${limit ?? 'the configured'} bytes (RECSERVE_BODY_LIMIT)`);
}

/** What went wrong reading a raw body (express.raw / body-parser): always the client's body, never a 500. */
function rawBodyError(err: unknown): RecserveError {
  const e = err as { type?: string; code?: string; message?: string; encoding?: string; charset?: string };
  const known = bodyError(err);
  if (known) return known;
  if (e?.type === 'encoding.unsupported') return badData(`Content-Encoding ${JSON.stringify(short(e.encoding ?? ''))} is not supported; send gzip, deflate, br or identity`);
  if (e?.type === 'charset.unsupported') return badData(`charset ${JSON.stringify(short(e.charset ?? ''))} is not supported; send utf-8`);
  // zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR, brotli's ERR_*): the body is not what Content-Encoding says.
  if (typeof e?.code === 'string' && /^(Z_|ERR_)/.test(e.code)) return badData(`the body is not valid data for its Content-Encoding (${short(e.message ?? e.code)})`);
  return badData(`cannot read the request body: ${short(e?.message ?? 'unreadable')}`);
}

/** Parser messages may quote client bytes: keep them short. */
function short(text: string): string {
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

/** Content-Length as a number; -1 when absent (chunked) or not a plain decimal (Node rejects those). */
/** The declared Content-Length, or -1 when there is none (or it is not a plain number). */
export function contentLength(headers: http.IncomingHttpHeaders): number {
  const len = headers['content-length'];
  return len !== undefined && /^\d{1,15}$/.test(len) ? Number(len) : -1;
}

/**
 * Reads the raw body (any content type) or multipart fields; parsing into a message happens per route.
 * The body limit holds for the whole body on every path: a declared Content-Length over it is refused
 * before a byte is read, a chunked body is counted as it streams (express.raw counts after inflating,
 * so a gzip bomb stops at the limit too), and a multipart body is counted over all its parts.
 */
function readBody(limit: number, limits: Limits) {
  const raw = express.raw({ type: () => true, limit });
  const parts = limits.maxMultipartParts;
  const multi = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: limit, fieldSize: limit, parts, fields: parts, files: parts, headerPairs: 64 },
  }).any();
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET') return next();
    if (contentLength(req.headers) > limit) return next(tooLarge(limit));
    if (req.is('multipart/form-data')) return readMultipart(multi, limit, parts, limits, req, res, next);
    raw(req, res, (err?: unknown) => next(err ? rawBodyError(err) : undefined));
  };
}

function readMultipart(
  multi: (req: Request, res: Response, next: (err?: unknown) => void) => void,
  limit: number,
  parts: number,
  limits: Limits,
  req: Request,
  res: Response,
  next: NextFunction,
): void {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return next(badData('a multipart/form-data body cannot have a Content-Encoding; send it uncompressed'));
  }
  let settled = false;
  const settle = (err?: unknown) => {
    if (settled) return;
    settled = true;
    req.off('data', count);
    next(err);
  };
  let received = 0;
  // multer limits each part; the whole body is bounded here, before busboy buffers past the limit.
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received > limit) {
      req.unpipe(); // busboy gets nothing more; the 413 closes the connection
      settle(tooLarge(limit));
    }
  };
  multi(req, res, (err?: unknown) => settle(err === undefined ? undefined : multipartError(err, parts, limits)));
  req.on('data', count);
}

/** multer's limit codes and busboy's parse errors (bad boundary, truncated body) as 4xx. */
function multipartError(err: unknown, parts: number, limits: Limits): RecserveError {
  const known = bodyError(err);
  if (known) return known;
  const e = err as { code?: string; name?: string; message?: string };
  if (e?.code === 'LIMIT_PART_COUNT' || e?.code === 'LIMIT_FIELD_COUNT' || e?.code === 'LIMIT_FILE_COUNT') {
    return badData(`the multipart body has more than ${parts} parts${limitHint(limits, 'maxMultipartParts')}`);
  }
  if (e?.name === 'MulterError') return badData(`multipart body rejected: ${short(e.message ?? String(e.code))}`);
  return badData(`the multipart body is malformed: ${short(e?.message ?? 'unreadable')}`);
}
