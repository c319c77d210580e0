// The Seldon v1 data plane: SeldonMessage in, SeldonMessage out, over the protocol-neutral core
// (src/core/service.ts). Seldon's meta (puid, tags, requestPath, metrics), its payload forms and its
// feedback message live here; REST and gRPC both call it, so the transports cannot disagree.
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/index.js';
import { badData, RecserveError } from '../../errors.js';
import { limitHint } from '../../config/limits.js';
import type { RecommenderService } from '../../core/service.js';
import type { CallContext, FeedbackEvent } from '../../core/types.js';
import type { Recommender } from '../../model/recommender.js';
import type { Logger } from '../../telemetry/logger.js';
import { checkMeta, coldStartUsers, decodePredict, encodePredict, nothingMatched, payloadKeyOf } from './codec.js';
import { boundsOf, precompile, validate } from '../contract.js';
import { hasPayload, listsFromPayloads, parseTruth } from './feedback-codec.js';
import { buildMetadata, type MetadataResult } from './metadata.js';
import type { Feedback, JsonValue, Meta, ModelMetadata, SeldonMessage } from './messages.js';

export type { CallContext } from '../../core/types.js';

export class DataPlane {
  private metadataCache: { version: string; result: MetadataResult } | null = null;

  constructor(
    readonly service: RecommenderService,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    // The contract's validators are compiled at start-up, not by the first request.
    precompile(boundsOf(config));
  }

  isReady(): boolean {
    return this.service.isReady();
  }

  /** A SeldonMessage as it arrived (any transport): checked against the contract here, once. */
  async predict(msg: SeldonMessage, ctx: CallContext): Promise<SeldonMessage> {
    validate('SeldonMessage', msg, '', boundsOf(this.config));
    this.service.model(); // 503 before any decoding when no model serves
    this.checkHeaderPuid(ctx);
    const decoded = decodePredict(msg, this.config.params, this.config.limits);
    const puid = msg.meta?.puid || ctx.puid || randomUUID();
    const { model, output } = await this.service.predict(decoded.input, ctx, puid);
    const payload = encodePredict(decoded.kind, output);
    const extra: Record<string, JsonValue> = { ...nothingMatched(output) };
    // Table answers have no column for the strategy; name the cold-start users in the tags.
    if (output.op === 'recommend' && (decoded.kind === 'ndarray' || decoded.kind === 'tensor')) {
      const users = coldStartUsers(output);
      if (users.length > 0) extra.cold_start_users = users;
    }
    const meta = this.responseMeta(msg.meta, ctx, model, extra, puid);
    return { ...payload, meta };
  }

  async feedback(fb: Feedback, ctx: CallContext): Promise<SeldonMessage> {
    if (typeof fb !== 'object' || fb === null || Array.isArray(fb)) throw badData('feedback must be a Feedback object {request, response, reward, truth}');
    validate('Feedback', fb, '', boundsOf(this.config));
    const reward = this.service.checkReward(fb.reward);
    for (const part of ['request', 'response', 'truth'] as const) {
      if (fb[part]) {
        payloadKeyOf(fb[part]!); // at most one payload in each
        checkEchoable(() => checkMeta(fb[part]!.meta, this.config.limits, `${part}.meta`));
      }
    }
    const model = this.service.model();
    // The answer is built (and proved serialisable) before anything is stored: once a feedback is
    // committed nothing may fail the call, or a retrying client would store it twice.
    const meta = this.responseMeta(fb.response?.meta ?? fb.request?.meta, ctx, model, {});
    delete meta.metrics;
    checkEchoable(() => JSON.stringify(meta));
    // As the wrapper answers: an empty array in the request's data form.
    const data = fb.request?.data?.tensor ? { tensor: { shape: [0], values: [] } } : { ndarray: [] };
    const extra = await this.service.feedback(this.feedbackEvent(fb, reward, ctx), ctx, model);
    // The learner's tags are flat numbers, booleans and short strings; the model's own tags stay last.
    meta.tags = { ...meta.tags, ...extra, model_name: model.name, model_version: model.version };
    return { data, meta };
  }

  /** A Seldon Feedback as the core's neutral event: its puids, and its payloads decoded on demand. */
  private feedbackEvent(fb: Feedback, reward: number, ctx: CallContext): FeedbackEvent {
    const { params, limits } = this.config;
    const claimed = fb.response?.meta?.puid || fb.request?.meta?.puid || null;
    const predictionIds: FeedbackEvent['predictionIds'] = [];
    if (claimed) predictionIds.push({ id: claimed, where: 'the feedback puid' });
    if (ctx.puid) predictionIds.push({ id: ctx.puid, where: 'the Seldon-Puid header' });
    const version = fb.response?.meta?.tags?.model_version;
    return {
      reward,
      predictionIds,
      shown: (model, maxRows) => listsFromPayloads(fb.request, fb.response, model, params, limits, maxRows),
      chosen: () => (fb.truth && hasPayload(fb.truth) ? parseTruth(fb.truth, limits) : null),
      claimedVersion: typeof version === 'string' ? version : undefined,
    };
  }

  /** The executor's Seldon-Puid header is echoed like meta.puid, so it has the same length limit. */
  private checkHeaderPuid(ctx: CallContext): void {
    const { limits } = this.config;
    if (ctx.puid !== undefined && ctx.puid.length > limits.maxIdLength) {
      throw badData(`the Seldon-Puid header is ${ctx.puid.length} characters; at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
    }
  }

  /** transform-input / transform-output without a hook: the message back, with response meta. */
  passThrough(msg: SeldonMessage, ctx: CallContext): SeldonMessage {
    validate('SeldonMessage', msg, '', boundsOf(this.config));
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw badData('Invalid request data type: expected a SeldonMessage object');
    if (payloadKeyOf(msg) === null) throw badData('Invalid request data type: the message needs one of data, jsonData, strData, binData');
    checkMeta(msg.meta, this.config.limits);
    this.checkHeaderPuid(ctx);
    const { meta: reqMeta, status: _status, ...payload } = msg;
    const meta = this.responseMeta(reqMeta, ctx, this.service.current, {});
    return { ...payload, meta };
  }

  metadata(): ModelMetadata {
    const model = this.service.model();
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
    const model = this.service.model();
    if (this.service.isDraining) throw new RecserveError('unavailable', 'shutting down');
    return { strData: 'healthy', meta: { tags: { model_name: model.name, model_version: model.version } } };
  }

  private responseMeta(req: Meta | undefined, ctx: CallContext, model: Recommender | null, extra: Record<string, JsonValue>, puid?: string): Meta {
    const meta: Meta = { puid: puid ?? (req?.puid || ctx.puid || randomUUID()) };
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
