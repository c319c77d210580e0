// Fold-in (src/feedback/fold-in.ts): a user's vector re-solved from their stored feedback against the
// fixed item factors of the serving model.
import { defaultsOf, intField, numField, type Section } from './setting.js';

export interface FoldInSettings {
  /** Weight of a row for an item that was shown but not chosen, relative to a chosen/rated one. */
  skippedWeight: number;
  /** A user the model does not know is ranked from its folded vector once it has this many positive items. */
  minPositives: number;
  /**
   * Most stored interactions read per user (the newest). Each feedback re-solves its user over these, so
   * the cap bounds the cost per feedback: at 1,000 the soak's feedback rate halved as users filled up.
   */
  maxRows: number;
  /** Pseudo-observations anchoring a known user whose training items the artifact does not list. */
  anchorObservations: number;
  /** Most folded users kept per model version (least recently updated dropped first). */
  maxUsers: number;
}

export const FOLD_IN: Section<FoldInSettings> = {
  skippedWeight: numField('RECSERVE_FOLDIN_SKIPPED_WEIGHT', 0.2),
  minPositives: intField('RECSERVE_FOLDIN_MIN_POSITIVES', 3),
  maxRows: intField('RECSERVE_FOLDIN_MAX_ROWS', 200, 1),
  anchorObservations: intField('RECSERVE_FOLDIN_ANCHOR_OBSERVATIONS', 10),
  maxUsers: intField('RECSERVE_FOLDIN_MAX_USERS', 100_000, 1),
};

export const FOLD_IN_DEFAULTS: FoldInSettings = defaultsOf(FOLD_IN);
