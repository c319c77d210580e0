// Session recommendations: items a caller names (with optional weights) folded in for one request,
// nothing stored. The vector is solved exactly as stored feedback is (feedback/fold-in.ts): each session
// item counts as a chosen item with reward = its weight, on top of the user's training history when
// the model knows the user, else from nothing (ridge on the session items alone).
import type { FoldInModel } from '../feedback/fold-in.js';
import type { Interaction } from '../feedback/store/index.js';

export interface SessionItem {
  item: number;
  itemId: string;
  /** In [0, 1]: the reward a feedback on this item would carry (1: liked / chosen). */
  weight: number;
}

/** Stands for "no user": ids are never empty, so no model user can be named so. */
const ANONYMOUS = '';

/** Scores of every item (index space) from the session's vector. */
export function sessionScores(solver: FoldInModel, userId: string | null, items: SessionItem[]): Float32Array {
  const latest = new Map<string, Interaction>();
  items.forEach((it, r) => {
    // A repeated item counts once, its last weight (as the newest feedback on an item wins).
    latest.delete(it.itemId);
    latest.set(it.itemId, { id: r + 1, feedbackId: 0, ts: 0, puid: null, modelVersion: null, userId: userId ?? ANONYMOUS, itemId: it.itemId, reward: it.weight, kind: 'chosen', servedBy: 'not_shown' });
  });
  return solver.scoreAll(solver.solve(userId ?? ANONYMOUS, latest));
}
