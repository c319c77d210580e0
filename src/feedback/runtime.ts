// The feedback loop, built by the composition root (src/server.ts): the interaction store (opened
// lazily, 503 while it is not available), the bandit (counts loaded from the store), the learner the
// core calls for every protocol (src/feedback/handler.ts), and on PostgreSQL the propagation of the
// other replicas' feedback. The model registry's prepare hook (src/server.ts) gives every model version
// its bandit policy and fold-in before it serves.
import client from 'prom-client';
import type { Config } from '../config/index.js';
import type { Recommender } from '../model/recommender.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { ThompsonBandit } from './bandit.js';
import { FeedbackService } from './handler.js';
import { feedbackWatermark, Propagation } from './propagation.js';
import type { FeedbackSettings } from '../config/feedback.js';
import { describeStoreUrl, openStore, type StoreSafetySettings } from './store/index.js';
import { StoreHolder } from './store/holder.js';

export interface FeedbackLoop {
  service: FeedbackService;
  stores: StoreHolder;
  bandit: ThompsonBandit;
  settings: FeedbackSettings;
  /** Live propagation from the other replicas (PostgreSQL store only; null with SQLite). */
  propagation: Propagation | null;
  /** Whether the store is shared by replicas (PostgreSQL). */
  shared: boolean;
  close(): Promise<void>;
}

export interface FeedbackDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** Models whose fold-in state follows feedback: the serving one and the rollback target. */
  liveModels: () => Recommender[];
  settings?: FeedbackSettings;
  /**
   * Where the loop's own series go (default: the server's registry). A repository model's loop keeps
   * them apart: these series carry no model label, so only the default model's are exported.
   */
  metricsRegistry?: client.Registry;
}

/** RECSERVE_STORE_TIMEOUT_MS / RECSERVE_STORE_MAX_WAITING, from the feedback settings. */
function storeSafety(settings: FeedbackSettings): StoreSafetySettings {
  return { timeoutMs: settings.storeTimeoutMs, maxWaiting: settings.storeMaxWaiting, poolSize: settings.storePoolSize };
}

/** Opens the store (503s until it opens), loads the bandit's posterior from it, builds the learner. */
export async function startFeedbackLoop(deps: FeedbackDeps): Promise<FeedbackLoop> {
  const { config, log, metrics, liveModels } = deps;
  const settings = deps.settings ?? config.feedback;
  const reg = deps.metricsRegistry ?? metrics.registry;
  const stored = new client.Counter({ name: 'recserve_feedback_interactions_total', help: 'Interaction rows stored from feedback', registers: [reg] });
  const storeErrors = new client.Counter({ name: 'recserve_feedback_store_errors_total', help: 'Feedback refused because the interaction store could not take it (503)', registers: [reg] });

  const safety = storeSafety(settings);
  const stores = new StoreHolder(() => openStore({ url: config.storeUrl, dataDir: config.dataDir, safety }), settings.storeRetryMs, log, safety.timeoutMs);
  const bandit = new ThompsonBandit(settings.bandit, log);
  const backend = describeStoreUrl({ url: config.storeUrl, dataDir: config.dataDir }).backend;
  const shared = config.storeUrl !== null && backend === 'postgres';
  const service = new FeedbackService({
    stores,
    bandit,
    settings,
    limits: config.limits,
    log,
    liveModels,
    observer: { stored: (n) => stored.inc(n), storeError: () => storeErrors.inc() },
    // With PostgreSQL, predictions are also remembered in the store, so feedback by puid works on any replica.
    sharedPredictions: { backend },
  });
  service.registerMetrics(reg);
  // Replicas sharing PostgreSQL hear each other's feedback (src/feedback/propagation.ts).
  const propagation =
    shared && config.storeUrl
      ? new Propagation({
          url: config.storeUrl,
          bandit,
          openStore: () => stores.get(),
          liveModels,
          foldInOf: (m) => service.foldInOf(m),
          log,
          registry: reg,
        })
      : null;
  stores.onOpen(async (s) => {
    // Read before the arms: a feedback committed in between is then read again by propagation, never missed.
    const mark = propagation ? await feedbackWatermark(s) : null;
    const arms = await s.arms();
    // Arms for ids no loaded catalog lists (e.g. written before ids were checked) are not kept.
    const { kept, ignored, deferred } = bandit.load(arms);
    log.info({ store: s.location, backend: s.backend, schema: await s.schemaVersion(), arms: arms.length, kept, ignored, deferred }, 'interaction store open; bandit posterior loaded');
    propagation?.loaded(mark);
  });
  await stores.get().catch(() => undefined); // logged; feedback answers 503 until it opens
  propagation?.start();

  return {
    service,
    stores,
    bandit,
    settings,
    propagation,
    shared,
    async close() {
      await propagation?.stop();
      await service.close(); // writes the shared prediction rows still buffered
      await stores.close();
      await bandit.close();
    },
  };
}
