// Settings of the feedback loop, one typed object from the environment with a doc line per field and
// named defaults; part of Config (config.feedback), beside the store URL, data directory and admin token.
import { BANDIT_DEFAULTS, type BanditSettings } from '../feedback/bandit.js';
import { FOLD_IN_DEFAULTS, type FoldInSettings } from '../feedback/fold-in.js';
import { PREDICTION_MEMORY_DEFAULTS, type PredictionMemoryOptions } from '../feedback/predictions.js';
import { sharedPredictionSettings, type SharedPredictionSettings } from '../feedback/shared-predictions.js';
import { STORE_SAFETY_DEFAULTS } from '../feedback/store/index.js';
import { frac, int, num } from './env.js';

export interface FeedbackSettings {
  /**
   * Recent predictions remembered for feedback by puid: RECSERVE_PREDICTION_MEMORY (count),
   * RECSERVE_PREDICTION_TTL_S; their byte budget is a limit (config.limits.predictionMemoryBytes).
   */
  memory: Omit<PredictionMemoryOptions, 'maxBytes'>;
  /** RECSERVE_BANDIT_PRIOR_MEAN (μ̄), RECSERVE_BANDIT_PRIOR_STRENGTH (κ), RECSERVE_BANDIT_SPREAD (s), RECSERVE_BANDIT_SEED. */
  bandit: BanditSettings;
  /** RECSERVE_FOLDIN_MIN_POSITIVES, RECSERVE_FOLDIN_SKIPPED_WEIGHT, RECSERVE_FOLDIN_MAX_ROWS. */
  foldIn: FoldInSettings;
  /** Users re-folded when a model version is prepared (those with feedback after its training data): RECSERVE_FOLDIN_WARM_USERS. */
  warmUsers: number;
  /** Most interaction rows one feedback may create (a 400 beyond): RECSERVE_FEEDBACK_MAX_ROWS. */
  maxRowsPerFeedback: number;
  /** Wait between attempts to reopen an unavailable store (ms): RECSERVE_STORE_RETRY_MS. */
  storeRetryMs: number;
  /** Longest a request waits on one store operation, connection wait included, before a 503: RECSERVE_STORE_TIMEOUT_MS. */
  storeTimeoutMs: number;
  /** Most store operations waiting for a PostgreSQL connection; beyond, 503 at once: RECSERVE_STORE_MAX_WAITING. */
  storeMaxWaiting: number;
  /** The prediction memory shared through PostgreSQL (RECSERVE_SHARED_PREDICTIONS_*); unused with SQLite. */
  sharedPredictions: SharedPredictionSettings;
  /** Retrain every N seconds (0 = only on demand): RECSERVE_RETRAIN_INTERVAL_S. */
  retrainIntervalS: number;
  /** Base interaction log for retraining (CSV/MovieLens); default: the current model's own knowledge: RECSERVE_RETRAIN_BASE. */
  retrainBase: string | null;
  /** Fewest held-out interactions a retrain needs before it may publish: RECSERVE_RETRAIN_MIN_HOLDOUT. */
  retrainMinHoldout: number;
}

export function feedbackSettings(env: NodeJS.ProcessEnv = process.env): FeedbackSettings {
  return {
    memory: {
      capacity: int(env.RECSERVE_PREDICTION_MEMORY, PREDICTION_MEMORY_DEFAULTS.capacity, 'RECSERVE_PREDICTION_MEMORY'),
      ttlMs: 1000 * num(env.RECSERVE_PREDICTION_TTL_S, PREDICTION_MEMORY_DEFAULTS.ttlMs / 1000, 'RECSERVE_PREDICTION_TTL_S'),
    },
    bandit: {
      priorMean: frac(env.RECSERVE_BANDIT_PRIOR_MEAN, BANDIT_DEFAULTS.priorMean, 'RECSERVE_BANDIT_PRIOR_MEAN'),
      priorStrength: num(env.RECSERVE_BANDIT_PRIOR_STRENGTH, BANDIT_DEFAULTS.priorStrength, 'RECSERVE_BANDIT_PRIOR_STRENGTH'),
      popularitySpread: Math.max(1, num(env.RECSERVE_BANDIT_SPREAD, BANDIT_DEFAULTS.popularitySpread, 'RECSERVE_BANDIT_SPREAD')),
      ...(env.RECSERVE_BANDIT_SEED ? { seed: int(env.RECSERVE_BANDIT_SEED, 0, 'RECSERVE_BANDIT_SEED') } : {}),
    },
    foldIn: {
      ...FOLD_IN_DEFAULTS,
      minPositives: int(env.RECSERVE_FOLDIN_MIN_POSITIVES, FOLD_IN_DEFAULTS.minPositives, 'RECSERVE_FOLDIN_MIN_POSITIVES'),
      skippedWeight: num(env.RECSERVE_FOLDIN_SKIPPED_WEIGHT, FOLD_IN_DEFAULTS.skippedWeight, 'RECSERVE_FOLDIN_SKIPPED_WEIGHT'),
      maxRows: int(env.RECSERVE_FOLDIN_MAX_ROWS, FOLD_IN_DEFAULTS.maxRows, 'RECSERVE_FOLDIN_MAX_ROWS', 1),
    },
    warmUsers: int(env.RECSERVE_FOLDIN_WARM_USERS, 10_000, 'RECSERVE_FOLDIN_WARM_USERS'),
    maxRowsPerFeedback: int(env.RECSERVE_FEEDBACK_MAX_ROWS, 10_000, 'RECSERVE_FEEDBACK_MAX_ROWS'),
    storeRetryMs: int(env.RECSERVE_STORE_RETRY_MS, 2000, 'RECSERVE_STORE_RETRY_MS'),
    storeTimeoutMs: int(env.RECSERVE_STORE_TIMEOUT_MS, STORE_SAFETY_DEFAULTS.timeoutMs, 'RECSERVE_STORE_TIMEOUT_MS', 1),
    sharedPredictions: sharedPredictionSettings(env),
    storeMaxWaiting: int(env.RECSERVE_STORE_MAX_WAITING, STORE_SAFETY_DEFAULTS.maxWaiting, 'RECSERVE_STORE_MAX_WAITING'),
    retrainIntervalS: num(env.RECSERVE_RETRAIN_INTERVAL_S, 0, 'RECSERVE_RETRAIN_INTERVAL_S'),
    retrainBase: env.RECSERVE_RETRAIN_BASE || null,
    retrainMinHoldout: int(env.RECSERVE_RETRAIN_MIN_HOLDOUT, 20, 'RECSERVE_RETRAIN_MIN_HOLDOUT'),
  };
}
