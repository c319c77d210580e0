// The protocol-neutral recommender service: recommend, score pairs, learn from a feedback, readiness.
// Every protocol module (Seldon v1, Open Inference Protocol V2) decodes its messages into core types
// and calls this, so a size limit, a metric or a refusal is decided once whatever the protocol.
import { badData, RecserveError } from '../errors.js';
import { limitHint, type Limits } from '../config/limits.js';
import { filterValueCount } from './request-options.js';
import type { ModelRegistry } from '../model/registry.js';
import type { Recommender } from '../model/recommender.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { StartupGate } from './startup-gate.js';
import type { CallContext, FeedbackEvent, FeedbackTags, Learner, PredictInput, PredictOutput } from './types.js';

export interface ServiceDeps {
  registry: ModelRegistry;
  limits: Limits;
  metrics: Metrics;
  /** Null when nothing learns (feedback is then acknowledged and counted only). */
  learner: Learner | null;
  startup: StartupGate;
}

export interface Readiness {
  ready: boolean;
  /** Why not, when not ready. */
  reason: string | null;
  model: { name: string; version: string } | null;
}

export class RecommenderService {
  private draining = false;

  constructor(private readonly deps: ServiceDeps) {}

  get limits(): Limits {
    return this.deps.limits;
  }

  /** The serving model, or null before the first one is warm. */
  get current(): Recommender | null {
    return this.deps.registry.current;
  }

  /** The serving model; 503 when none serves yet. */
  model(): Recommender {
    const m = this.deps.registry.current;
    if (!m) throw new RecserveError('unavailable', 'no model is loaded yet');
    return m;
  }

  /** Resolves once a model serves; 503 after the start-up wait, or at once when start-up gave up. */
  whenServing(): Promise<void> {
    return this.deps.startup.waitForModel();
  }

  /** Ready once a model is loaded and warmed, and until shutdown starts. */
  isReady(): boolean {
    return !this.draining && this.deps.registry.current !== null;
  }

  readiness(): Readiness {
    const m = this.deps.registry.current;
    const ready = this.isReady();
    const reason = ready ? null : this.draining ? 'shutting down' : (this.deps.startup.reason ?? 'the model is loading');
    return { ready, reason, model: m ? { name: m.name, version: m.version } : null };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  startDraining(): void {
    this.draining = true;
  }

  /**
   * One prediction: bounded before any work, answered by the serving model, remembered under
   * `predictionId` for feedback by id alone.
   */
  async predict(input: PredictInput, ctx: CallContext, predictionId: string | null): Promise<{ model: Recommender; output: PredictOutput }> {
    const model = this.model();
    if (input.op !== 'pairs') this.checkRequest(input, model);
    const bounds = { explainHistory: this.deps.limits.maxExplainHistory, explainWork: this.deps.limits.maxExplainWork, rerankPool: this.deps.limits.rerankPool };
    let output: PredictOutput;
    if (input.op === 'recommend') output = { op: 'recommend', ...(await model.answer(input.request, bounds)), offset: input.request.offset ?? 0 };
    else if (input.op === 'similar') output = { op: 'similar', ...(await model.similar(input.request, bounds)) };
    else output = { op: 'pairs', scores: await model.scorePairs(input.pairs) };
    if (ctx.signal?.aborted) throw new RecserveError('unavailable', 'the caller cancelled the request');
    if (output.op === 'recommend') {
      let cold = 0;
      for (const r of output.recommendations) if (r.strategy === 'cold_start') cold++;
      const { recommendations } = this.deps.metrics;
      const protocol = ctx.protocol ?? 'seldon-v1';
      if (cold > 0) recommendations.inc({ strategy: 'cold_start', protocol }, cold);
      if (output.recommendations.length > cold) recommendations.inc({ strategy: 'personalized', protocol }, output.recommendations.length - cold);
    }
    // Feedback is about a user: similar items and an anonymous session name none, so they are not remembered.
    const aboutUsers = input.op === 'pairs' || (input.op === 'recommend' && input.request.users.length > 0);
    if (predictionId !== null && aboutUsers) this.deps.learner?.remember?.({ puid: predictionId, modelVersion: model.version, input, output }, model);
    return { model, output };
  }

  /** Checks a feedback's reward: a number in [0, 1] (absent is 0). */
  checkReward(reward: unknown): number {
    const r = reward ?? 0;
    if (typeof r !== 'number' || !Number.isFinite(r) || r < 0 || r > 1) throw badData(`reward must be a number in [0, 1], got ${String(r).slice(0, 40)}`);
    return r;
  }

  /**
   * Stores and learns from one feedback (through the learner). Callers build their answer before this
   * call: once the feedback is committed nothing may fail, or a retrying client would store it twice.
   */
  async feedback(event: FeedbackEvent, ctx: CallContext, model: Recommender = this.model()): Promise<FeedbackTags> {
    const tags = (await this.deps.learner?.learn(event, model, ctx)) ?? {};
    if (tags.feedback_duplicate !== true) {
      const labels = { method: 'feedback', model_name: model.name, model_version: model.version };
      this.deps.metrics.feedback.inc(labels);
      this.deps.metrics.feedbackReward.inc(labels, event.reward);
    }
    return tags;
  }

  /**
   * A request's sizes, bounded before any work whatever the protocol: the answer (users × k, k capped by
   * the catalog), the ranked prefix of a page, the items all its lists rank, the values its filter and
   * rules name, and the item lists it names.
   */
  private checkRequest(input: Exclude<PredictInput, { op: 'pairs' }>, model: Recommender): void {
    const { limits } = this.deps;
    const { nItems } = model;
    const req = input.request;
    const users = input.op === 'recommend' ? Math.max(1, input.request.users.length) : 1;
    const items = users * Math.min(req.k, nItems);
    if (items > limits.maxResultItems) {
      throw badData(`${users} users × k=${Math.min(req.k, nItems)} would answer ${items} items; at most ${limits.maxResultItems} per request: ask for fewer users or a smaller k${limitHint(limits, 'maxResultItems')}`);
    }
    const offset = req.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw badData(`offset must be a whole number ≥ 0, got ${offset}`);
    if (offset + req.k > limits.maxPageEnd) {
      throw badData(`offset=${offset} + k=${req.k} reaches rank ${offset + req.k}; pages end at rank ${limits.maxPageEnd} at most${limitHint(limits, 'maxPageEnd')}`);
    }
    const depth = model.rankDepth(req, limits.rerankPool);
    if (users * depth > limits.maxRankedItems) {
      const each = model.reranks(req) ? `the rerank pool of ${depth} (diversify, rules or pins apply)` : `offset + k = ${depth}`;
      throw badData(`${users} lists × ${each} would rank ${users * depth} items; at most ${limits.maxRankedItems} per request: ask for fewer users or a shallower page${limitHint(limits, 'maxRankedItems')}`);
    }
    const ruleValues = (req.rerank?.rules ?? []).reduce<number>((n, rule) => n + filterValueCount(rule.value), 0);
    if (ruleValues > 0) {
      const values = ruleValues + (req.filter ? Object.values(req.filter).reduce<number>((n, v) => n + filterValueCount(v), 0) : 0);
      if (values > limits.maxFilterValues) {
        throw badData(`the filter and rules name ${values} values in all (rules ${ruleValues}); at most ${limits.maxFilterValues} together${limitHint(limits, 'maxFilterValues')}`);
      }
    }
    this.checkList(req.excludeItems, 'exclude_items', 'maxItemList');
    this.checkList(req.allowItems, 'allow_items', 'maxItemList');
    if (input.op === 'similar') {
      if (input.request.items.length === 0) throw badData('similar_to names no item');
      this.checkList(input.request.items, 'similar_to', 'maxQueryItems');
      return;
    }
    const session = input.request.session;
    if (!session) return;
    if (input.request.users.length > 1) throw badData(`items (a session) are folded in for one user or for none, not for ${input.request.users.length} users`);
    if (session.items.length === 0) throw badData('items names no item; a session needs at least one');
    this.checkList(session.items, 'items', 'maxQueryItems');
    const { weights } = session;
    if (weights === null) return;
    if (weights.length !== session.items.length) throw badData(`weights has ${weights.length} entries but items has ${session.items.length}; give one weight per item`);
    weights.forEach((w, r) => {
      if (!Number.isFinite(w) || w < 0 || w > 1) throw badData(`weights/${r} must be a number in [0, 1] (the reward a feedback on that item would carry), got ${w}`);
    });
    if (weights.every((w) => w === 0)) throw badData('weights are all 0: a session needs at least one item with a positive weight');
  }

  private checkList(list: string[] | undefined, name: string, key: 'maxItemList' | 'maxQueryItems'): void {
    const { limits } = this.deps;
    if (list && list.length > limits[key]) throw badData(`${name} lists ${list.length} items; at most ${limits[key]}${limitHint(limits, key)}`);
  }
}
