// Seldon v1 REST handlers, keyed by the operationIds of openapi.yaml. Each reads the message the way
// the Python wrapper does (multipart fields, form field `json`, query `json`, then a JSON body) and
// hands it to the data plane.
import type { Request, Response } from 'express';
import { badData, clip, RecserveError } from '../../errors.js';
import { boundsOf, openapi, servedDocument } from '../contract.js';
import type { Config } from '../../config/index.js';
import type { CallContext, DataPlane } from './dataplane.js';
import type { Feedback, SeldonMessage } from './messages.js';
import { LIMIT_DEFAULTS, type Limits } from '../../config/limits.js';
import { abortOnClose } from '../http.js';
import { parseJsonText } from '../json.js';

export type Handler = (req: Request, res: Response) => void | Promise<void>;

/** operationIds that need the model: before it is warm they wait for it (bounded by RECSERVE_STARTUP_WAIT_MS). */
export const SELDON_NEEDS_MODEL: ReadonlySet<string> = new Set(['predictV1', 'predictV01', 'predictGet', 'predictPost', 'feedbackV1', 'feedbackV01', 'feedbackGet', 'feedbackPost']);

const NO_JSON = "Can't find JSON in data";

// recserve is a MODEL node: the table answers these 400 on REST (as the reference wrapper) and UNIMPLEMENTED on gRPC.
const ROUTE_UNDEFINED = new RecserveError('not_implemented', 'Route not defined');
const AGGREGATE_UNDEFINED = new RecserveError('not_implemented', 'Aggregate not defined');

export function seldonV1Handlers({ dataplane, config }: { dataplane: DataPlane; config: Config }): Record<string, Handler> {
  const { service } = dataplane;
  const bounds = boundsOf(config);
  const context = (req: Request, res: Response): CallContext => {
    const puid = req.get('seldon-puid');
    return { transport: 'rest', puid: puid || undefined, signal: abortOnClose(res) };
  };

  const predict: Handler = async (req, res) => {
    const msg = readMessage(req, config.limits);
    res.locals.payload = msg;
    const out = await dataplane.predict(msg as SeldonMessage, context(req, res));
    res.locals.puid = out.meta?.puid;
    res.json(out);
  };

  const feedback: Handler = async (req, res) => {
    const fb = readMessage(req, config.limits) as Feedback;
    res.locals.payload = fb;
    res.locals.puid = fb?.response?.meta?.puid ?? fb?.request?.meta?.puid;
    res.json(await dataplane.feedback(fb, context(req, res)));
  };

  const metadata: Handler = (_req, res) => {
    res.json(dataplane.metadata());
  };

  const status: Handler = (_req, res) => {
    res.json(dataplane.healthStatus());
  };


  const passThrough: Handler = (req, res) => {
    const msg = readMessage(req, config.limits);
    const out = dataplane.passThrough(msg as SeldonMessage, context(req, res));
    res.locals.puid = out.meta?.puid;
    res.json(out);
  };

  return {
    predictV1: predict,
    predictV01: predict,
    predictGet: predict,
    predictPost: predict,
    feedbackV1: feedback,
    feedbackV01: feedback,
    feedbackGet: feedback,
    feedbackPost: feedback,
    metadataV1: metadata,
    metadata,
    healthStatus: status,
    healthStatusV1: status,
    ping: (_req, res) => {
      res.type('text/html; charset=utf-8').send('pong');
    },
    live: (_req, res) => {
      res.json({ status: 'alive', ready: service.isReady(), model_version: service.current?.version ?? null });
    },
    // With the reason when not ready (loading, no model and why, or shutting down).
    ready: (_req, res) => {
      const r = service.readiness();
      const body: Record<string, unknown> = { status: r.ready ? 'ready' : 'not ready', ready: r.ready, model_version: r.model?.version ?? null };
      if (!r.ready) body.reason = r.reason;
      res.status(r.ready ? 200 : 503).json(body);
    },
    transformInput: passThrough,
    transformInputGet: passThrough,
    transformOutput: passThrough,
    transformOutputGet: passThrough,
    route: () => {
      throw ROUTE_UNDEFINED;
    },
    routeGet: () => {
      throw ROUTE_UNDEFINED;
    },
    aggregate: () => {
      throw AGGREGATE_UNDEFINED;
    },
    aggregateGet: () => {
      throw AGGREGATE_UNDEFINED;
    },
    seldonJson: (_req, res) => {
      res.json(servedDocument(bounds));
    },
    openapiYaml: (_req, res) => {
      res.type('application/yaml; charset=utf-8').send(openapi().text);
    },
  };
}

/** The message of a request, in the Python wrapper's order of places to look. */
export function readMessage(req: Request, limits: JsonLimits): unknown {
  if (req.is('multipart/form-data')) return fromMultipart(req, limits);
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (req.is('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(body.toString('utf8'));
    const json = form.get('json');
    if (json !== null) return parseJson(json, 'form field json', limits);
  }
  const q = req.query.json;
  if (typeof q === 'string') return parseJson(q, 'query parameter json', limits);
  if (Array.isArray(q)) throw badData('query parameter json is given more than once');
  if (body.length === 0) throw badData(`${NO_JSON}: the request has no body and no json parameter`);
  if (!req.is('application/json') && !req.is('+json')) {
    throw badData(`${NO_JSON}: Content-Type is ${JSON.stringify(req.get('content-type') ?? 'missing')}; send application/json`);
  }
  return parseJson(body.toString('utf8'), 'body', limits);
}

/** The limits a message's JSON text is checked against before it is parsed. */
export type JsonLimits = Pick<Limits, 'maxJsonDepth' | 'maxJsonValues'>;

/** A message's JSON text, depth- and size-checked before it is parsed (see protocol/json.ts). */
export function parseJson(text: string, where: string, limits: JsonLimits = LIMIT_DEFAULTS): unknown {
  return parseJsonText(text, where, limits.maxJsonDepth, NO_JSON, limits.maxJsonValues);
}

function fromMultipart(req: Request, limits: JsonLimits): Record<string, unknown> {
  const msg: Record<string, unknown> = {};
  for (const [key, value] of Object.entries((req.body ?? {}) as Record<string, string | string[]>)) {
    // A repeated field arrives as a list: which copy would be the message? (The same rule as ?json=.)
    if (typeof value !== 'string') throw badData(`multipart field ${clip(key, 64)} is given more than once`);
    msg[key] = key === 'strData' ? value : parseJson(value, `multipart field ${clip(key, 64)}`, limits);
  }
  for (const file of (req.files as Express.Multer.File[] | undefined) ?? []) {
    if (file.fieldname in msg) throw badData(`multipart field ${clip(file.fieldname, 64)} is given more than once`);
    msg[file.fieldname] = file.fieldname === 'binData' ? file.buffer.toString('base64') : file.buffer.toString('utf8');
  }
  if (Object.keys(msg).length === 0) throw badData(`${NO_JSON}: the multipart body has no fields`);
  return msg;
}
