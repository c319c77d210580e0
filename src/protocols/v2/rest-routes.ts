// Open Inference Protocol V2 REST handlers, keyed by the operationIds of openapi.yaml: health,
// server and model metadata, model readiness, inference (JSON or the binary tensor extension) and
// our feedback extension. Every failure under /v2 answers V2's body {"error": "…"} with the status
// of the one error table (v2ErrorWriter, mounted by the REST transport for the /v2 prefix).
import { modelReadiness, serverReadiness, servingModel } from './serving.js';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Config } from '../../config/index.js';
import { limitHint, type Limits } from '../../config/limits.js';
import type { ModelHub } from '../../core/models.js';
import type { RecommenderService } from '../../core/service.js';
import type { CallContext, FeedbackEvent } from '../../core/types.js';
import { badData, quote, RecserveError, translate } from '../../errors.js';
import type { Recommender } from '../../model/recommender.js';
import { abortOnClose, readJsonObject } from '../http.js';
import { parseJsonText } from '../json.js';
import type { Handler } from '../seldon-v1/rest-routes.js';
import { attachBinaryInputs, binaryResponse, HEADER_LENGTH, splitBody } from './binary.js';
import { decodeInfer, encodeInfer, readInferRequest, unknownKeys } from './codec.js';
import { modelMetadata, serverMetadata } from './metadata.js';
import type { InferResponse } from './tensors.js';

export const V2_PREFIX = '/v2';

/**
 * V2's error body with the one table's status, but for an unsupported call: 501 (Triton's UNSUPPORTED)
 * where Seldon's wrapper answers 400. Not ready stays 503 (as KServe and recserve's /ready): probes read
 * only the status, and Seldon Core 2's agent reloads and retries on 404/400, which a model that is still
 * loading does not need.
 */
export function v2ErrorWriter(err: unknown): { status: number; body: { error: string } } {
  const t = translate(err);
  return { status: t.kind === 'not_implemented' ? 501 : t.http, body: { error: t.message } };
}

export interface V2RestDeps {
  models: ModelHub;
  config: Config;
  /** Whether the model repository extension is served (a models root to load from). */
  repository?: boolean;
}

const FEEDBACK_KEYS = new Set(['id', 'user_id', 'items', 'truth', 'reward']);

/** What an inference call has read so far, for the access log (the payload, the prediction id). */
export interface InferSeen {
  payload?: unknown;
  id?: string;
}

export interface InferCall {
  name: string;
  version: string | undefined;
  /** The whole body: the JSON request, then binary tensors when `headerLength` (Inference-Header-Content-Length) says so. */
  body: Buffer;
  headerLength: string | undefined;
  ctx: CallContext;
  seen: InferSeen;
}

export type InferAnswer = { json: InferResponse; binary: null } | { json: null; binary: { headerLength: number; body: Buffer } };

/**
 * One V2 inference, transport-free: the express route and the REST fast path (which skips express for a
 * plain JSON infer) both call it, so both answer alike.
 */
export function v2Infer({ models, config }: Pick<V2RestDeps, 'models' | 'config'>): (call: InferCall) => Promise<InferAnswer> {
  const { params, limits } = config;
  return async ({ name, version, body, headerLength, ctx, seen }) => {
    const { service } = await servingModel(models, name, version);
    const parts = splitBody(body, headerLength);
    if (parts.json.length === 0) throw badData('the body is empty; send an inference request {"inputs": [...]}');
    const value = parseJsonText(parts.json.toString('utf8'), 'inference request', limits.maxJsonDepth, '', limits.maxJsonValues);
    seen.payload = value;
    const request = readInferRequest(value, limits);
    attachBinaryInputs(request, parts.binary);
    const decoded = decodeInfer(request, params, limits);
    const binaryDefault = boolParam(request.parameters?.binary_data_output, 'parameters.binary_data_output') ?? false;
    const binaryAsked = decoded.outputs.map((o, i) => boolParam(o.parameters?.binary_data, `outputs/${i}/parameters/binary_data`) ?? binaryDefault);
    // The request id is the prediction's id: feedback names it (MLServer generates one when absent).
    const id = request.id || randomUUID();
    seen.id = id;
    const { model, output } = await service.predict(decoded.input, ctx, id);
    // An id given is echoed as given, even empty (then nothing can name the prediction for feedback).
    const response: InferResponse = { model_name: name, model_version: model.version, id: request.id ?? id, outputs: encodeInfer(output, decoded.outputs) };
    const binary = binaryResponse(response, (_t, i) => binaryAsked[i]);
    return binary === null ? { json: response, binary: null } : { json: null, binary };
  };
}

export function v2Handlers({ models, config, repository = false }: V2RestDeps): Record<string, Handler> {
  const { params, limits } = config;
  const runInfer = v2Infer({ models, config });

  const context = (res: Response): CallContext => ({ transport: 'rest', protocol: 'v2', signal: abortOnClose(res) });

  /**
   * The model a route names, once it serves (waiting, bounded, while the server's first model loads:
   * its name is known only then), at the version asked if one is.
   */
  const serving = async (req: Request): Promise<{ name: string; service: RecommenderService; model: Recommender }> => {
    const name = pathParam(req, 'name') ?? '';
    return { name, ...(await servingModel(models, name, pathParam(req, 'version'))) };
  };

  const metadata: Handler = async (req, res) => {
    const { name, model } = await serving(req);
    res.json(modelMetadata(name, model, params, limits));
  };

  // Readiness answers now, never waits: 200 with no body, else 503 with the reason.
  const modelReady: Handler = (req, res) => {
    const r = modelReadiness(models, pathParam(req, 'name') ?? '', pathParam(req, 'version'));
    if (!r.ready) throw new RecserveError('unavailable', r.reason!);
    res.status(200).end();
  };

  const infer: Handler = async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : null;
    if (body === null) throw badData('an inference request is a JSON body (optionally followed by binary tensors), not a form');
    const seen: InferSeen = {};
    let answer: InferAnswer;
    try {
      answer = await runInfer({ name: pathParam(req, 'name') ?? '', version: pathParam(req, 'version'), body, headerLength: req.get(HEADER_LENGTH), ctx: context(res), seen });
    } finally {
      res.locals.payload = seen.payload; // for the access log, refusals included
      res.locals.puid = seen.id;
    }
    if (answer.binary === null) {
      res.json(answer.json);
      return;
    }
    res.status(200).set('Content-Type', 'application/octet-stream').set('Inference-Header-Content-Length', String(answer.binary.headerLength)).send(answer.binary.body);
  };

  const feedback: Handler = async (req, res) => {
    const { name, service, model } = await serving(req);
    const body = readJsonObject(req, limits, 'feedback');
    unknownKeys(body, FEEDBACK_KEYS, 'the feedback');
    const reward = service.checkReward(body.reward);
    const id = body.id === undefined ? null : idField(body.id, 'id', limits);
    const user = body.user_id === undefined ? null : idField(body.user_id, 'user_id', limits);
    const items = body.items === undefined ? null : idList(body.items, 'items', limits);
    if (Array.isArray(body.truth) && body.truth.length > limits.maxTruthItems) throw badData(`truth names ${body.truth.length} items; at most ${limits.maxTruthItems}${limitHint(limits, 'maxTruthItems')}`);
    const truth = body.truth === undefined ? null : idList(body.truth, 'truth', limits);
    if (items && user === null) throw badData('items were shown to a user: give user_id with them');
    res.locals.puid = id ?? undefined;
    const event: FeedbackEvent = {
      reward,
      predictionIds: id ? [{ id, where: 'the feedback id' }] : [],
      // Read only when the server does not remember the prediction: what the client says it showed.
      shown: (m, maxRows) => {
        if (user === null) return null;
        if (items && items.length > maxRows) throw badData(`items lists ${items.length} shown items; at most ${maxRows} (limit RECSERVE_FEEDBACK_MAX_ROWS=${maxRows})`);
        return [{ userId: user, strategy: m.strategyFor(user), items: items ?? [], explored: null }];
      },
      chosen: () => truth,
    };
    const tags = await service.feedback(event, context(res), model);
    res.json({ id, model_name: name, model_version: model.version, parameters: tags });
  };

  return {
    v2ServerMetadata: (_req, res) => {
      res.json(serverMetadata({ repository }));
    },
    v2ServerLive: (_req, res) => {
      res.status(200).end();
    },
    // Ready when every served model is (the default one still loading is not ready); a server with no
    // model at all (Seldon Core 2 starts it so) is ready to be given one.
    v2ServerReady: (_req, res) => {
      const r = serverReadiness(models);
      if (!r.ready) throw new RecserveError('unavailable', r.reason!);
      res.status(200).end();
    },
    v2ModelMetadata: metadata,
    v2ModelVersionMetadata: metadata,
    v2ModelReady: modelReady,
    v2ModelVersionReady: modelReady,
    v2ModelInfer: infer,
    v2ModelVersionInfer: infer,
    v2ModelFeedback: feedback,
  };
}

function pathParam(req: Request, key: string): string | undefined {
  const v = (req.params as Record<string, string | string[] | undefined>)[key];
  return Array.isArray(v) ? v.join('/') : v;
}

function boolParam(v: unknown, where: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw badData(`${where} must be true or false, got ${quote(v)}`);
  return v;
}

function idField(v: unknown, where: string, limits: Limits): string {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v !== 'string' || v.length === 0) throw badData(`${where} must be a non-empty string (or a whole number), got ${quote(v)}`);
  if (v.length > limits.maxIdLength) throw badData(`${where} is ${v.length} characters; at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
  return v;
}

function idList(v: unknown, where: string, limits: Limits): string[] {
  if (!Array.isArray(v)) throw badData(`${where} must be a list of item ids, got ${quote(v)}`);
  return v.map((x, i) => idField(x, `${where}/${i}`, limits));
}
