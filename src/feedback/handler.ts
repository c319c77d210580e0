// The learner the core calls for every protocol: remember each prediction by its id; for each feedback
// find what was shown (memory, else what the caller says), turn it into interaction rows, store them
// durably (503 if the store cannot take them), then update the bandit and fold the users in.
import { badData, RecserveError } from '../errors.js';
import { limitHint, type Limits } from '../config/limits.js';
import type { LearningState, Recommender } from '../model/recommender.js';
import type { CallContext, FeedbackEvent, FeedbackTags, Learner, PredictionRecord, ShownList } from '../core/types.js';
import type { Logger } from '../telemetry/logger.js';
import type { ThompsonBandit } from './bandit.js';
import { FoldInModel } from './fold-in.js';
import { buildRows, keepCatalogItems } from './rows.js';
import { PredictionMemory, unpackLists, type PackedPrediction } from './predictions.js';
import { SharedPredictionMemory, sharedPredictionMetrics, type SharedPredictionObserver } from './shared-predictions.js';
import type { FeedbackSettings } from '../config/feedback.js';
import { StoreUnavailableError, type ArmDelta, type InteractionStore } from './store/index.js';
import type client from 'prom-client';

import type { StoreHolder } from './store/holder.js';
import { KeyedQueue } from '../util/keyed-queue.js';

export interface FeedbackServiceDeps {
  stores: StoreHolder;
  bandit: ThompsonBandit;
  settings: FeedbackSettings;
  /** Client-controlled sizes (ids, truth, the prediction memory's byte budget). */
  limits: Limits;
  log: Logger;
  /** Models whose fold-in state must follow feedback: the serving one and the rollback target. */
  liveModels: () => Recommender[];
  /** Counts for metrics. */
  observer?: { stored(rows: number): void; storeError(): void };
  /**
   * The shared prediction memory (shared-predictions.ts): its RECSERVE_SHARED_PREDICTIONS* settings
   * (default: process.env) and the store's backend when known before the store opens (default: the
   * backend of the store once open). It runs only on PostgreSQL.
   */
  sharedPredictions?: { backend?: 'sqlite' | 'postgres' };
}

const REUSED_ID_NOTE = 'this id named more than one recent prediction, so it cannot say which was meant: stored as a reward event, nothing learned (use a new id per request, or send user_id and items)';

/** Where the shown lists of a feedback came from. */
type ShownSource = 'memory' | 'payloads' | 'none';

interface Target {
  puid: string | null;
  modelVersion: string;
  lists: ShownList[];
  source: ShownSource;
  /** The id named more than one recent prediction, so it was not used to find what was shown. */
  reused?: boolean;
}

export class FeedbackService implements Learner {
  readonly memory: PredictionMemory;
  /** Predictions every replica can see (PostgreSQL store only; null on SQLite or when turned off). */
  shared: SharedPredictionMemory | null = null;
  private sharedMetrics: SharedPredictionObserver | null = null;
  private readonly foldIns = new WeakMap<Recommender, FoldInModel | null>();
  private readonly queue = new KeyedQueue();
  private readonly noFoldInLogged = new WeakSet<Recommender>();

  constructor(private readonly deps: FeedbackServiceDeps) {
    this.memory = new PredictionMemory({ ...deps.settings.memory, maxBytes: deps.limits.predictionMemoryBytes });
    const sharedSettings = deps.settings.sharedPredictions;
    if (sharedSettings.enabled && deps.settings.memory.capacity > 0) {
      const startShared = (backend: string | undefined) => {
        if (backend !== 'postgres' || this.shared) return;
        const m = () => this.sharedMetrics;
        const observer: SharedPredictionObserver = {
          written: (n) => m()?.written(n),
          flushed: (ok) => m()?.flushed(ok),
          dropped: (n) => m()?.dropped(n),
          lookup: (r) => m()?.lookup(r),
          swept: (e, v) => m()?.swept(e, v),
          buffered: (b) => m()?.buffered(b),
        };
        this.shared = new SharedPredictionMemory(() => deps.stores.peek(), sharedSettings, deps.settings.memory.ttlMs, deps.log, observer);
        deps.log.info({ flushMs: sharedSettings.flushMs, bufferBytes: sharedSettings.bufferBytes, maxTableBytes: sharedSettings.maxTableBytes }, 'shared prediction memory on: feedback by puid works on every replica');
      };
      const known = deps.sharedPredictions?.backend ?? deps.stores.peek()?.backend;
      if (known) startShared(known);
      // SQLite is one replica: nothing is shared and the predict path does no new work.
      else deps.stores.onOpen((s) => startShared(s.backend));
    }
  }

  /** Registers the shared prediction memory's series (writes, flushes, drops, lookups) on the server's registry. */
  registerMetrics(registry: client.Registry): void {
    this.sharedMetrics ??= sharedPredictionMetrics(registry);
  }

  /** Stops the shared memory's timers and writes what it still buffers; call before the store closes. */
  async close(): Promise<void> {
    await this.shared?.close();
  }

  remember(record: PredictionRecord): void {
    const kept = this.memory.remember(record);
    // The only work the shared memory adds to a prediction: an append to its write buffer.
    if (kept && this.shared) this.shared.add(kept);
  }

  /**
   * Everything that can refuse a feedback (parsing, limits, attribution) runs before the store write;
   * after the commit nothing may fail the call, so a stored feedback is always acknowledged.
   */
  async learn(event: FeedbackEvent, model: Recommender, ctx: CallContext): Promise<FeedbackTags> {
    const { settings } = this.deps;
    const reward = event.reward;
    const target = await this.resolve(event, model);
    const kept = keepCatalogItems(target.lists, event.chosen(), (id) => model.itemIdx(id) !== undefined);
    const tags: FeedbackTags = {};
    let truth = kept.truth;
    let note: string | null = target.source === 'none' && target.reused ? REUSED_ID_NOTE : null;
    if (target.lists.length === 0 && truth !== null && truth.length > 0) {
      note ??= 'truth names items but the feedback names no user (no known puid, no request or response payload): stored as a reward event, nothing learned';
      truth = null;
    }
    let rows = buildRows(kept.lists, truth, reward);
    if (target.source !== 'memory') {
      // Only impressions this server remembers serving move the bandit (see ServedBy 'claimed').
      for (const r of rows) if (r.servedBy === 'cold_start' || r.servedBy === 'exploration') r.servedBy = 'claimed';
    }
    if (rows.length > settings.maxRowsPerFeedback) {
      throw badData(`this feedback would store ${rows.length} interactions; at most ${settings.maxRowsPerFeedback} per feedback (limit RECSERVE_FEEDBACK_MAX_ROWS=${settings.maxRowsPerFeedback})`);
    }
    // Bandit-served rows (catalog items only, strategy derived by the server) are each one Bernoulli
    // trial with a fractional outcome: α += r, β += 1 − r.
    let arms: ArmDelta[] = rows
      .filter((r) => r.servedBy === 'cold_start' || r.servedBy === 'exploration')
      .map((r) => ({ itemId: r.itemId, successes: r.reward, failures: 1 - r.reward }));
    if (rows.length === 0) {
      note ??=
        target.source === 'none'
          ? target.puid
            ? 'no recent prediction has this puid and the feedback carries no payloads: stored as a reward event, nothing learned'
            : 'the feedback names no prediction and no items: stored as a reward event, nothing learned'
          : 'the feedback names no catalog items: stored as a reward event, nothing learned';
    }

    // A retry of a feedback already stored for this prediction (same reward, same truth) is acknowledged, not stored again.
    const claim = target.source === 'memory' && target.puid ? await this.memory.claimFeedback(target.puid, fingerprint(reward, truth)) : null;
    if (claim?.duplicate) return { feedback_interactions: 0, feedback_duplicate: true };
    if (claim?.followUp && rows.length > 0) {
      rows = [];
      arms = [];
      note = 'this prediction already has a stored feedback; a prediction is learnt from once, so this one is stored as a reward event and learns nothing';
    }
    let stored = false;
    let store: InteractionStore;
    try {
      try {
        store = await this.deps.stores.get();
      } catch (e) {
        this.deps.observer?.storeError();
        throw e;
      }
      try {
        await store.record({ puid: target.puid, modelVersion: target.modelVersion, reward, transport: ctx.transport, createdAt: Date.now() }, rows, arms);
        stored = true;
      } catch (e) {
        if (e instanceof StoreUnavailableError) {
          this.deps.observer?.storeError();
          this.deps.log.error({ err: e.message, puid: target.puid, rows: rows.length }, 'feedback NOT stored: the interaction store refused the write');
          throw new RecserveError('unavailable', `feedback was not stored: ${e.message}`);
        }
        throw e;
      }
    } finally {
      claim?.settle(stored);
    }

    // Committed: from here on nothing may fail the call (the feedback is stored whatever happens).
    tags.feedback_interactions = rows.length;
    if (kept.ignored > 0) tags.feedback_ignored_items = kept.ignored;
    if (target.source === 'none' && target.puid) tags.feedback_puid_found = false;
    if (note !== null) {
      tags.feedback_learned = false;
      tags.feedback_note = note;
    }
    try {
      this.deps.observer?.stored(rows.length);
      this.deps.bandit.update(arms);
      const users = [...new Set(rows.map((r) => r.userId))];
      const folded = users.length > 0 ? await this.foldIn(users, store) : [];
      if (folded.length > 0) tags.folded_in_users = folded;
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message, puid: target.puid }, 'learning from a stored feedback failed; it is stored and retraining will use it');
    }
    return tags;
  }

  /** The bandit's policy and the fold-in of a model version, given to it as it is constructed. */
  learning(model: Recommender): LearningState {
    const policy = this.deps.bandit.policyFor(model);
    const fold = this.foldInOf(model);
    return { coldStart: policy, explorer: policy, users: fold, session: fold };
  }

  /** Before a version serves (a registry prepare hook): users with feedback newer than its training data are folded in. */
  async prepare(model: Recommender): Promise<void> {
    const fold = this.foldInOf(model);
    if (!fold) return;
    const store = this.deps.stores.peek();
    if (!store || this.deps.settings.warmUsers <= 0) return;
    // Users with feedback newer than this version's training data get their fold-in now, not at their
    // next feedback. Read failures only cost freshness: the version still loads.
    try {
      const users = await store.usersSince(fold.watermark, this.deps.settings.warmUsers);
      for (const u of users.reverse()) fold.update(u, await store.userInteractions(u, fold.settings.maxRows));
      if (users.length > 0) this.deps.log.info({ version: model.version, users: users.length }, 'folded in users with feedback newer than the model');
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message, version: model.version }, 'could not re-fold users for the new model version');
    }
  }

  foldInOf(model: Recommender): FoldInModel | null {
    if (!this.foldIns.has(model)) {
      const f = FoldInModel.for(model, this.deps.settings.foldIn);
      this.foldIns.set(model, f);
      if (!f && !this.noFoldInLogged.has(model)) {
        this.noFoldInLogged.add(model);
        this.deps.log.warn(
          { version: model.version },
          'online fold-in is unavailable for this model: it carries no readable factors (e.g. a bare PyTorch export); feedback is still stored and used by the bandit and retraining',
        );
      }
    }
    return this.foldIns.get(model) ?? null;
  }

  private async foldIn(users: string[], store: InteractionStore): Promise<string[]> {
    const models = this.deps.liveModels();
    const folded: string[] = [];
    for (const userId of users) {
      try {
        const did = await this.queue.run(userId, async () => {
          const fits = models.map((m) => this.foldInOf(m)).filter((f): f is FoldInModel => f !== null);
          if (fits.length === 0) return false;
          const rows = await store.userInteractions(userId, Math.max(...fits.map((f) => f.settings.maxRows)));
          let any = false;
          for (const f of fits) any = f.update(userId, rows) !== null || any;
          return any;
        });
        if (did) folded.push(userId);
      } catch (e) {
        this.deps.log.warn({ err: (e as Error).message, user: userId }, 'fold-in failed; the feedback is stored and the next one retries');
      }
    }
    return folded;
  }

  /**
   * What was shown: the server's own memory when it has the puid (the client's payloads are then
   * ignored) — this replica's, else the shared one every replica writes — else the payloads.
   */
  private async resolve(event: FeedbackEvent, model: Recommender): Promise<Target> {
    const { limits } = this.deps;
    const candidates: string[] = [];
    let reused = false;
    for (const { id: p, where } of event.predictionIds) {
      if (p.length > limits.maxIdLength) throw badData(`${where} is ${p.length} characters; at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
      if (this.memory.isReused(p)) {
        reused = true; // neither this replica's memory nor the shared one may pick one of its predictions
        continue;
      }
      const m = this.memory.get(p);
      if (m) return { puid: m.puid, modelVersion: m.modelVersion, lists: m.lists, source: 'memory' };
      if (!candidates.includes(p)) candidates.push(p);
    }
    // Another replica may have served it. Its row was written by a replica, never by a client, so it
    // is trusted as this replica's memory is: the bandit learns from it. Adopted into the local memory,
    // so a retry of this feedback on this replica is recognised as a duplicate; a retry that lands on
    // another replica is stored again there (duplicate suppression is per replica: suppressing across
    // replicas needs the claim in the feedback's own transaction, or a crash between the two would
    // acknowledge a retry whose original was never stored).
    for (const p of this.shared ? candidates : []) {
      const row = await this.shared!.lookup(p);
      const lists = row && unpackShared(row);
      if (row && lists) {
        this.memory.adopt(row);
        return { puid: row.puid, modelVersion: row.modelVersion, lists, source: 'memory' };
      }
    }
    const puid = event.predictionIds[0]?.id ?? null;
    const lists = event.shown(model, this.deps.settings.maxRowsPerFeedback);
    if (lists) {
      const v = event.claimedVersion;
      return { puid, modelVersion: v !== undefined && v.length > 0 && v.length <= limits.maxIdLength ? v : model.version, lists, source: 'payloads' };
    }
    // Nothing says what was shown: a reward event (a router's or a client's outcome report), stored, learnt from by nothing.
    return { puid, modelVersion: model.version, lists: [], source: 'none', reused };
  }
}

/** The lists of a shared row; null if it cannot be read (then the feedback goes on as for an unknown puid). */
function unpackShared(row: PackedPrediction): ShownList[] | null {
  try {
    const lists = unpackLists(row.packed);
    return lists.every((l) => typeof l.userId === 'string' && l.strategy !== undefined && Array.isArray(l.items)) ? lists : null;
  } catch {
    return null;
  }
}

/** Identifies what a feedback about a remembered prediction says: its reward and its (catalog) truth. */
function fingerprint(reward: number, truth: string[] | null): string {
  return `${reward}|${truth === null ? '*' : [...new Set(truth)].sort().join('\u0000')}`;
}
