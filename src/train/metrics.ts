// Rating and ranking metrics, defined exactly as Microsoft Recommenders' python_evaluation computes
// them (relevancy_method="top_k"), so numbers compare with its benchmark table:
//
// - users: precision, recall and MAP average over the users present in both the truth and the
//   predictions ("common users"); a common user with no hit contributes 0. nDCG averages over every
//   user of the truth (a user without predictions scores 0).
// - precision@k = hits in the top k / k (k, not the list length: a short list cannot reach 1).
// - recall@k    = hits in the top k / number of relevant items.
// - nDCG@k      binary gain, discount 1/ln(1 + rank); ideal DCG over min(#relevant, k) items.
// - MAP ("map") = Σ_{hits in top k} (hits so far / rank) / #relevant  (Spark MLlib's meanAveragePrecision);
//   map@k divides by min(#relevant, k) instead.
//
// LightFM's AUC (auc_score with train_interactions) is here too: per user, the fraction of (test
// positive, negative) pairs ranked correctly, negatives being items in neither train nor test.

export function rmse(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (pred.length !== truth.length) throw new Error(`rmse: ${pred.length} predictions for ${truth.length} ratings`);
  if (truth.length === 0) return NaN;
  let s = 0;
  for (let k = 0; k < truth.length; k++) {
    const e = pred[k] - truth[k];
    s += e * e;
  }
  return Math.sqrt(s / truth.length);
}

export function mae(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (pred.length !== truth.length) throw new Error(`mae: ${pred.length} predictions for ${truth.length} ratings`);
  if (truth.length === 0) return NaN;
  let s = 0;
  for (let k = 0; k < truth.length; k++) s += Math.abs(pred[k] - truth[k]);
  return s / truth.length;
}

export interface RankingMetrics {
  k: number;
  precision: number;
  recall: number;
  ndcg: number;
  /** Microsoft Recommenders `map` (normalised by #relevant). */
  map: number;
  /** Microsoft Recommenders `map_at_k` (normalised by min(#relevant, k)). */
  mapAtK: number;
  /** Users precision/recall/MAP average over. */
  users: number;
  /** Users nDCG averages over. */
  ndcgUsers: number;
}

/**
 * recommended[u]: user u's ranked list (best first; only the first k are used) or null when the
 * model made no prediction for u. relevant[u]: u's relevant test items (empty or null: not a test user).
 */
export function rankingMetrics(
  recommended: ArrayLike<(ArrayLike<number> | null) | undefined>,
  relevant: ArrayLike<(ReadonlySet<number> | null) | undefined>,
  k: number,
): RankingMetrics {
  let prec = 0, rec = 0, ndcg = 0, map = 0, mapK = 0;
  let users = 0;
  let ndcgUsers = 0;
  const n = Math.max(recommended.length, relevant.length);
  for (let u = 0; u < n; u++) {
    const rel = relevant[u];
    if (!rel || rel.size === 0) continue;
    ndcgUsers++;
    let idcg = 0;
    const m = Math.min(rel.size, k);
    for (let r = 1; r <= m; r++) idcg += 1 / Math.log(1 + r);
    const list = recommended[u];
    if (!list) continue;
    users++;
    let hits = 0;
    let dcg = 0;
    let ap = 0;
    const top = Math.min(k, list.length);
    for (let r = 0; r < top; r++) {
      if (rel.has(list[r])) {
        hits++;
        dcg += 1 / Math.log(2 + r);
        ap += hits / (r + 1);
      }
    }
    prec += hits / k;
    rec += hits / rel.size;
    ndcg += dcg / idcg;
    map += ap / rel.size;
    mapK += ap / Math.min(rel.size, k);
  }
  return {
    k,
    precision: users ? prec / users : 0,
    recall: users ? rec / users : 0,
    ndcg: ndcgUsers ? ndcg / ndcgUsers : 0,
    map: users ? map / users : 0,
    mapAtK: users ? mapK / users : 0,
    users,
    ndcgUsers,
  };
}

/**
 * AUC for one user: the share of (positive, negative) score pairs ranked correctly. A tie earns
 * `tieCredit`: 1 is LightFM's auc_score (its rank counts strictly greater scores only, so ties count as
 * correct), ½ the Mann–Whitney statistic. LightFM returns 0.5 without positives and 1 without negatives.
 */
export function aucOne(posScores: ArrayLike<number>, negScores: ArrayLike<number>, tieCredit = 1): number {
  const np = posScores.length;
  const nn = negScores.length;
  if (np === 0) return 0.5;
  if (nn === 0) return 1;
  const neg = Float64Array.from(negScores).sort();
  let correct = 0;
  for (let j = 0; j < np; j++) {
    const s = posScores[j];
    const notAbove = countBelow(neg, s, true);
    const below = tieCredit === 1 ? notAbove : countBelow(neg, s, false); // with full credit a tie is as good as below
    correct += below + tieCredit * (notAbove - below);
  }
  return correct / (np * nn);
}

/**
 * Mean per-user AUC with half credit for ties, over the users with both positives and negatives;
 * null when no user has both.
 */
export function meanAuc(users: Iterable<{ pos: ArrayLike<number>; neg: ArrayLike<number> }>): number | null {
  let total = 0;
  let n = 0;
  for (const { pos, neg } of users) {
    if (pos.length === 0 || neg.length === 0) continue;
    total += aucOne(pos, neg, 0.5);
    n++;
  }
  return n > 0 ? total / n : null;
}

/** How many of the sorted values are below s (orEqual: at most s), by binary search. */
function countBelow(sorted: Float64Array, s: number, orEqual: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (orEqual ? sorted[mid] <= s : sorted[mid] < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
