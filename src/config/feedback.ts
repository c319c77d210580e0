// Settings of the feedback loop, one typed object (config.feedback) assembled from the sections of its
// concerns: prediction memory, bandit, fold-in, store, shared predictions, retraining.
import { BANDIT, type BanditPrior } from './bandit.js';
import { FOLD_IN, type FoldInSettings } from './fold-in.js';
import { PREDICTION_MEMORY, SHARED_PREDICTIONS, type PredictionMemorySettings, type SharedPredictionSettings } from './predictions.js';
import { RETRAIN, type RetrainSettings } from './retrain.js';
import { defaultsOf, intField, readSection, type Section } from './setting.js';
import { STORE, type StoreSettings } from './store.js';

export interface FeedbackLoopSettings {
  /** Users re-folded when a model version is prepared (those with feedback after its training data). */
  warmUsers: number;
  /** Most interaction rows one feedback may create (a 400 beyond). */
  maxRowsPerFeedback: number;
}

export const FEEDBACK_LOOP: Section<FeedbackLoopSettings> = {
  warmUsers: intField('RECSERVE_FOLDIN_WARM_USERS', 10_000),
  maxRowsPerFeedback: intField('RECSERVE_FEEDBACK_MAX_ROWS', 10_000),
};

export const FEEDBACK_LOOP_DEFAULTS: FeedbackLoopSettings = defaultsOf(FEEDBACK_LOOP);

export interface FeedbackSettings extends FeedbackLoopSettings, StoreSettings, RetrainSettings {
  /** Recent predictions remembered for feedback by puid; their byte budget is a limit (config.limits.predictionMemoryBytes). */
  memory: PredictionMemorySettings;
  bandit: BanditPrior;
  foldIn: FoldInSettings;
  /** The prediction memory shared through PostgreSQL; unused with SQLite. */
  sharedPredictions: SharedPredictionSettings;
}

export function feedbackSettings(env: NodeJS.ProcessEnv = process.env): FeedbackSettings {
  return {
    ...readSection(FEEDBACK_LOOP, env),
    ...readSection(STORE, env),
    ...readSection(RETRAIN, env),
    memory: readSection(PREDICTION_MEMORY, env),
    bandit: readSection(BANDIT, env),
    foldIn: readSection(FOLD_IN, env),
    sharedPredictions: readSection(SHARED_PREDICTIONS, env),
  };
}

/** Every section of the feedback loop (for the settings table and the unknown-variable check). */
export const FEEDBACK_SECTIONS = [FEEDBACK_LOOP, STORE, RETRAIN, PREDICTION_MEMORY, BANDIT, FOLD_IN, SHARED_PREDICTIONS] as const;
