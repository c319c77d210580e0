// The data plane: predict, feedback, metadata and health, the only thing the REST and gRPC layers
// call. Everything a caller can observe is decided here once, so the transports cannot disagree.
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/index.js';
import { badData, RecserveError } from '../../errors.js';
import { limitHint } from '../../config/limits.js';
import type { ModelRegistry } from '../../model/registry.js';
import type { Recommender } from '../../model/recommender.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Metrics } from '../../telemetry/metrics.js';
import { checkMeta, coldStartUsers, decodePredict, encodePredict, payloadKeyOf, type PredictInput, type PredictOutput } from './codec.js';
import { boundsOf, validate } from '../contract.js';
import { buildMetadata, type MetadataResult } from './metadata.js';
import type { Feedback, JsonValue, Meta, ModelMetadata, SeldonMessage } from './messages.js';

export interface CallContext {
  transport: 'rest' | 'grpc';
  /** A puid from outside the body (the executor's Seldon-Puid header). */
  puid?: string;
  /** Aborted when the caller goes away or its deadline passes. */
  signal?: AbortSignal;
}

/** What a prediction was: kept so feedback can refer to it by puid alone. */
export interface PredictionRecord {
  puid: string;
  modelVersion: string;
  input: PredictInput;
  output: PredictOutput;
}

/** Learns from feedback (interaction store, bandit, fold-in); installed by the composition root. */
export interface FeedbackHandler {
  onPrediction?(record: PredictionRecord, model: Recommender): void;
  /** Stores and learns from one feedback; returns extra tags for the response. Throws to refuse it. */
  onFeedback(feedback: Feedback, model: Recommender, ctx: CallContext): Promise<Record<string, JsonValue> | void>;
}

export class DataPlane {
  private draining = false;
  private metadataCache: { version: string; result: MetadataResult } | null = null;
  feedbackHandler: FeedbackHandler | null = null;

  constructor(
    readonly registry: ModelRegistry,
    private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Ready once a model is loaded and warmed, and until shutdown starts. */
  isReady(): boolean {
    return !this.draining && this.registry.current !== null;
  }

  startDraining(): void {
    this.draining = true;
  }

  private model(): Recommender {
    const m = this.registry.current;
    if (!m) throw new RecserveError('unavailable', 'no model is loaded yet');
    return m;
  }

  async predict(msg: SeldonMessage, ctx: CallContext): Promise<SeldonMessage> {
    const model = this.model();
    this.checkHeaderPuid(ctx);
    const decoded = decodePredict(msg, this.config.params, this.config.limits);
    if (decoded.input.op === 'recommend') this.checkResultSize(decoded.input.request.users.length, decoded.input.request.k, model.nItems);
    const output: PredictOutput =
      decoded.input.op === 'recommend'
        ? { op: 'recommend', recommendations: await model.recommend(decoded.input.request) }
        : { op: 'pairs', scores: await model.scorePairs(decoded.input.pairs) };
    if (ctx.signal?.aborted) throw new RecserveError('unavailable', 'the caller cancelled the request');
    const payload = encodePredict(decoded.kind, output);
    const extra: Record<string, JsonValue> = {};
    if (output.op === 'recommend') {
      let cold = 0;
      for (const r of output.recommendations) if (r.strategy === 'cold_start') cold++;
      if (cold > 0) this.metrics.recommendations.inc({ strategy: 'cold_start' }, cold);
      if (output.recommendations.length > cold) this.metrics.recommendations.inc({ strategy: 'personalized' }, output.recommendations.length - cold);
      // Table answers have no column for the strategy; name the cold-start users in the tags.
      if (decoded.kind === 'ndarray' || decoded.kind === 'tensor') {
        const users = coldStartUsers(output);
        if (users.length > 0) extra.cold_start_users = users;
      }
    }
    const meta = this.responseMeta(msg.meta, ctx, model, extra);
    this.feedbackHandler?.onPrediction?.({ puid: meta.puid!, modelVersion: model.version, input: decoded.input, output }, model);
    return { ...payload, meta };
  }

  async feedback(fb: Feedback, ctx: CallContext): Promise<SeldonMessage> {
    if (typeof fb !== 'object' || fb === null || Array.isArray(fb)) throw badData('feedback must be a Feedback object {request, response, reward, truth}');
    validate('Feedback', fb, '', boundsOf(this.config));
    const reward = fb.reward ?? 0;
    if (typeof reward !== 'number' || !Number.isFinite(reward) || reward < 0 || reward > 1) throw badData(`reward must be a number in [0, 1], got ${String(reward).slice(0, 40)}`);
    for (const part of ['request', 'response', 'truth'] as const) {
      if (fb[part]) {
        payloadKeyOf(fb[part]!); // at most one payload in each
        checkEchoable(() => checkMeta(fb[part]!.meta, this.config.limits, `${part}.meta`));
      }
    }
    const model = this.model();
    // The answer is built (and proved serialisable) before the handler stores anything: once a
    // feedback is committed nothing may fail the call, or a retrying client would store it twice.
    const meta = this.responseMeta(fb.response?.meta ?? fb.request?.meta, ctx, model, {});
    delete meta.metrics;
    checkEchoable(() => JSON.stringify(meta));
    // As the wrapper answers: an empty array in the request's data form.
    const data = fb.request?.data?.tensor ? { tensor: { shape: [0], values: [] } } : { ndarray: [] };
    const extra = (await this.feedbackHandler?.onFeedback(fb, model, ctx)) ?? {};
    if (extra.feedback_duplicate !== true) {
      const labels = { method: 'feedback', model_name: model.name, model_version: model.version };
      this.metrics.feedback.inc(labels);
      this.metrics.feedbackReward.inc(labels, reward);
    }
    // The handler's tags are flat numbers, booleans and short strings; the model's own tags stay last.
    meta.tags = { ...meta.tags, ...extra, model_name: model.name, model_version: model.version };
    return { data, meta };
  }

  /** The executor's Seldon-Puid header is echoed like meta.puid, so it has the same length limit. */
  private checkHeaderPuid(ctx: CallContext): void {
    const { limits } = this.config;
    if (ctx.puid !== undefined && ctx.puid.length > limits.maxIdLength) {
      throw badData(`the Seldon-Puid header is ${ctx.puid.length} characters; at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
    }
  }

  /** An answer's size is bounded before any work: users × k (k capped by the catalog). */
  private checkResultSize(users: number, k: number, nItems: number): void {
    const { limits } = this.config;
    const items = users * Math.min(k, nItems);
    if (items > limits.maxResultItems) {
      throw badData(`${users} users × k=${Math.min(k, nItems)} would answer ${items} items; at most ${limits.maxResultItems} per request: ask for fewer users or a smaller k${limitHint(limits, 'maxResultItems')}`);
    }
  }

  /** transform-input / transform-output without a hook: the message back, with response meta. */
  passThrough(msg: SeldonMessage, ctx: CallContext): SeldonMessage {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw badData('Invalid request data type: expected a SeldonMessage object');
    if (payloadKeyOf(msg) === null) throw badData('Invalid request data type: the message needs one of data, jsonData, strData, binData');
    checkMeta(msg.meta, this.config.limits);
    this.checkHeaderPuid(ctx);
    const { meta: reqMeta, status: _status, ...payload } = msg;
    const meta = this.responseMeta(reqMeta, ctx, this.registry.current, {});
    return { ...payload, meta };
  }

  metadata(): ModelMetadata {
    const model = this.model();
    if (this.metadataCache?.version !== model.version) {
      const result = buildMetadata(model, this.config.modelMetadata);
      if (!result.ok) this.log.error({ problem: result.problem }, 'model metadata failed validation');
      this.metadataCache = { version: model.version, result };
    }
    const r = this.metadataCache.result;
    if (!r.ok) throw new RecserveError('bad_metadata', 'Model metadata unavailable');
    return r.metadata;
  }

  healthStatus(): SeldonMessage {
    const model = this.model();
    if (this.draining) throw new RecserveError('unavailable', 'shutting down');
    return { strData: 'healthy', meta: { tags: { model_name: model.name, model_version: model.version } } };
  }

  private responseMeta(req: Meta | undefined, ctx: CallContext, model: Recommender | null, extra: Record<string, JsonValue>): Meta {
    const meta: Meta = { puid: req?.puid || ctx.puid || randomUUID() };
    const tags: Record<string, JsonValue> = { ...(req?.tags ?? {}), ...extra };
    if (model) Object.assign(tags, { model_name: model.name, model_version: model.version });
    if (Object.keys(tags).length > 0) meta.tags = tags;
    if (this.config.includeMetricsInResponse && req?.metrics?.length) meta.metrics = req.metrics;
    const path = { ...(this.config.unitId ? { [this.config.unitId]: this.config.unitImage } : {}), ...(req?.requestPath ?? {}) };
    if (Object.keys(path).length > 0) meta.requestPath = path;
    return meta;
  }
}

/** Runs a check that serialises client meta: meta too deep to serialise is refused, not a 500. */
function checkEchoable(check: () => unknown): void {
  try {
    check();
  } catch (e) {
    if (e instanceof RangeError) throw badData('meta cannot be echoed in the answer (nested too deep); send flat meta.tags');
    throw e;
  }
}
