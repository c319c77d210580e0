// Retraining on base data plus stored feedback (src/train/retrain.ts), by schedule or on demand.
import { defaultsOf, intField, numField, optionalTextField, type Section } from './setting.js';

export interface RetrainSettings {
  /** Retrain every N seconds (0 = only on demand). */
  retrainIntervalS: number;
  /** Base interaction log for retraining (CSV/MovieLens); unset: the current model's own knowledge. */
  retrainBase: string | null;
  /** Fewest held-out feedback interactions a retrain needs before it may publish. */
  retrainMinHoldout: number;
}

export const RETRAIN: Section<RetrainSettings> = {
  retrainIntervalS: numField('RECSERVE_RETRAIN_INTERVAL_S', 0),
  retrainBase: optionalTextField('RECSERVE_RETRAIN_BASE', 'the current model'),
  retrainMinHoldout: intField('RECSERVE_RETRAIN_MIN_HOLDOUT', 20),
};

export const RETRAIN_DEFAULTS: RetrainSettings = defaultsOf(RETRAIN);
