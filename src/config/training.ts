// Training run by the CLI (`recserve train`, `tune`, `evaluate`) and by server-side retraining.
import { DEFAULT_THREADS } from './inference.js';
import { defaultsOf, intField, readSection, type Section } from './setting.js';

export interface TrainingSettings {
  /** Worker threads fitting independent folds or trials at once (`--threads` overrides). */
  trainThreads: number;
}

export const TRAINING: Section<TrainingSettings> = {
  trainThreads: intField('RECSERVE_TRAIN_THREADS', DEFAULT_THREADS, 1, 'min(2, cores)'),
};

export const TRAINING_DEFAULTS: TrainingSettings = defaultsOf(TRAINING);

export function loadTrainingSettings(env: NodeJS.ProcessEnv = process.env): TrainingSettings {
  return readSection(TRAINING, env);
}
