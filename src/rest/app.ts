// The express app: routes come from openapi.yaml (each operationId has one handler), bodies are read
// the way Seldon's wrapper reads them, and every error leaves through one funnel in Seldon's format.
import express, { type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import swaggerUi from 'swagger-ui-express';
import type { Config } from '../config.js';
import { badData, RecserveError, seldonErrorBody, translate } from '../errors.js';
import { openapi } from '../protocol/contract.js';
import type { DataPlane } from '../protocol/dataplane.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { seldonV1Handlers, type Handler } from './seldon-v1.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export interface RestDeps {
  config: Config;
  dataplane: DataPlane;
  metrics: Metrics;
  log: Logger;
  /** Extra operationId → handler entries (admin routes). */
  extraHandlers?: Record<string, Handler>;
}

export function createRestApp(deps: RestDeps): express.Express {
  const { config, metrics, log } = deps;
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

  const handlers: Record<string, Handler> = { ...seldonV1Handlers(deps), ...(deps.extraHandlers ?? {}) };
  const bodyReader = readBody(config.bodyLimitBytes);
  for (const [route, item] of Object.entries(doc.paths)) {
    const allowed: string[] = [];
    for (const method of METHODS) {
      const op = item[method] as { operationId?: string } | undefined;
      if (!op) continue;
      const handler = op.operationId ? handlers[op.operationId] : undefined;
      if (!handler) throw new Error(`openapi.yaml ${method.toUpperCase()} ${route}: no handler for operationId ${op.operationId}`);
      allowed.push(method.toUpperCase());
      app[method](route, (req, res, next) => {
        res.locals.route = route;
        next();
      }, bodyReader, async (req: Request, res: Response) => {
        await handler(req, res);
      });
    }
    // The path exists but not for this method: 405 with the methods that do exist.
    app.all(route, (req, res) => {
      res.locals.route = route;
      res.setHeader('Allow', allowed.join(', '));
      sendError(res, new RecserveError('method_not_allowed', `${req.method} is not allowed on ${route}; use ${allowed.join(' or ')}`));
    });
  }

  app.use((req, res) => {
    sendError(res, new RecserveError('not_found', `no route ${req.method} ${req.path}; see /docs for the API`));
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
    sendError(res, e);
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
    metrics.requests.inc({ transport: 'rest', route, code: String(status) });
    metrics.latency.observe({ transport: 'rest', route }, ms / 1000);
    const entry: Record<string, unknown> = { puid, method, route, path, status, duration_ms: Math.round(ms * 1000) / 1000 };
    if (config.logPayloads && payload !== undefined) entry.payload = payload;
    if (status >= 500) log.error(entry, 'request failed');
    else log.info(entry, 'request');
  };
}

export function sendError(res: Response, err: unknown): void {
  const t = translate(err);
  res.status(t.http).json(seldonErrorBody(t.reason, t.message));
}

/** Errors thrown by body parsers, in our catalogue. */
export function bodyError(err: unknown): RecserveError | null {
  const e = err as { type?: string; code?: string; name?: string; status?: number; message?: string; limit?: number };
  if (e?.type === 'entity.too.large' || e?.code === 'LIMIT_FILE_SIZE' || e?.code === 'LIMIT_FIELD_VALUE') {
    return new RecserveError('payload_too_large', `request body is larger than the limit of ${e.limit ?? 'the configured'} bytes (RECSERVE_BODY_LIMIT)`);
  }
  if (e?.code?.startsWith?.('LIMIT_') || e?.name === 'MulterError') return badData(`multipart body rejected: ${e.message}`);
  if (e?.type === 'request.aborted') return badData('the client aborted the request body');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.type) return badData(`cannot read the request body: ${e.message}`);
  return null;
}

/** Reads the raw body (any content type) or multipart fields; parsing into a message happens per route. */
function readBody(limit: number) {
  const raw = express.raw({ type: () => true, limit });
  const multi = multer({ storage: multer.memoryStorage(), limits: { fileSize: limit, fieldSize: limit } }).any();
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET') return next();
    if (req.is('multipart/form-data')) return multi(req, res, next);
    return raw(req, res, next);
  };
}
