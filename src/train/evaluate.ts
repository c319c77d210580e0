// Evaluation of an in-memory factor model against held-out interactions: rating error (RMSE/MAE,
// predictions clamped to the rating range; unknown users/items fall back to μ + known biases as
// Surprise does) and top-k ranking (items seen in training removed; only items the model was trained
// on can be recommended; every test interaction is relevant).
import { aucOne, mae, rankingMetrics, rmse, type RankingMetrics } from './metrics.js';
import { counts, predict, scoreItems, type MfModel } from './model.js';
import { toCsr, type Csr } from './sparse.js';
import { selectTopK } from '../model/topk.js';

export interface RatingReport {
  rmse: number;
  mae: number;
  n: number;
}

/** Row-aligned interactions in the model's index space. */
export interface Pairs {
  users: Int32Array;
  items: Int32Array;
}

export interface Rated extends Pairs {
  ratings: Float32Array;
}

export function ratingReport(m: MfModel, test: Rated): RatingReport {
  const n = test.users.length;
  const pred = new Float64Array(n);
  for (let k = 0; k < n; k++) pred[k] = predict(m, test.users[k], test.items[k]);
  return { rmse: rmse(pred, test.ratings), mae: mae(pred, test.ratings), n };
}

/** Items each user interacted with in training, as a CSR matrix (sorted indices per row). */
export function seenMatrix(nUsers: number, nItems: number, train: Pairs): Csr {
  return toCsr(nUsers, nItems, train.users, train.items, new Float32Array(train.users.length));
}

export interface TopKOptions {
  k: number;
  /** Remove items the user interacted with in training (default true). */
  excludeSeen?: boolean;
  /** Which items may be recommended: those with training rows (default) or every item of the model. */
  candidates?: 'trained' | 'all';
  /** Rank only the users with an entry here (e.g. the users of a test set; default every user). */
  only?: ArrayLike<unknown>;
}

/**
 * Top-k lists for every user with training data (null for the rest), over the items with training
 * data. `seen` is the training matrix.
 */
export function topKLists(m: MfModel, seen: Csr, opts: TopKOptions): (Int32Array | null)[] {
  const itemCounts = new Int32Array(m.nItems);
  for (let q = 0; q < seen.indices.length; q++) itemCounts[seen.indices[q]]++;
  const allow = new Uint8Array(m.nItems);
  for (let i = 0; i < m.nItems; i++) allow[i] = opts.candidates === 'all' || itemCounts[i] > 0 ? 1 : 0;
  const scores = new Float32Array(m.nItems);
  const out: (Int32Array | null)[] = new Array(m.nUsers).fill(null);
  for (let u = 0; u < Math.min(m.nUsers, seen.nRows); u++) {
    const s = seen.indptr[u];
    const e = seen.indptr[u + 1];
    if (e === s && opts.candidates !== 'all') continue;
    if (opts.only && !opts.only[u]) continue;
    scoreItems(m, u, scores);
    const exclude = opts.excludeSeen === false ? null : seen.indices.subarray(s, e);
    out[u] = selectTopK(scores, 0, m.nItems, opts.k, exclude, allow).items;
  }
  return out;
}

/** Relevant test items per user index. */
export function relevantSets(test: Pairs, nUsers: number): (Set<number> | null)[] {
  const rel: (Set<number> | null)[] = new Array(nUsers).fill(null);
  for (let k = 0; k < test.users.length; k++) {
    const u = test.users[k];
    (rel[u] ??= new Set()).add(test.items[k]);
  }
  return rel;
}

/** Microsoft Recommenders protocol: top-k with seen items removed, every test interaction relevant. */
export function rankingReport(m: MfModel, train: Pairs, test: Pairs, k = 10, candidates: 'trained' | 'all' = 'trained'): RankingMetrics {
  const seen = seenMatrix(m.nUsers, m.nItems, train);
  const relevant = relevantSets(test, m.nUsers);
  // Only users with test interactions count, so only they are ranked.
  const lists = topKLists(m, seen, { k, excludeSeen: true, candidates, only: relevant });
  return rankingMetrics(lists, relevant, k);
}

export interface LightfmReport {
  precision: number;
  auc: number;
  users: number;
}

/**
 * LightFM's evaluation (precision_at_k and auc_score with train_interactions): over users with test
 * interactions, train items excluded from ranking; precision = hits in top k / k; AUC per user over
 * (test positive, negative) pairs where negatives are items in neither train nor test.
 */
export function lightfmReport(m: MfModel, train: Pairs, test: Pairs, k = 10): LightfmReport {
  const seen = seenMatrix(m.nUsers, m.nItems, train);
  const rel = relevantSets(test, m.nUsers);
  const scores = new Float32Array(m.nItems);
  const itemCounts = counts(m.nItems, train.items);
  let prec = 0;
  let auc = 0;
  let users = 0;
  const pos: number[] = [];
  const neg: number[] = [];
  const excluded = new Uint8Array(m.nItems);
  for (let u = 0; u < rel.length; u++) {
    const r = rel[u];
    if (!r) continue;
    users++;
    if (u < m.nUsers) scoreItems(m, u, scores);
    else scores.fill(0);
    const s = seen.indptr[u];
    const e = seen.indptr[u + 1];
    for (let q = s; q < e; q++) excluded[seen.indices[q]] = 1;
    // LightFM scores the whole item dimension; items unknown to training score 0 there as here.
    pos.length = 0;
    neg.length = 0;
    for (let i = 0; i < m.nItems; i++) {
      if (excluded[i]) continue;
      const sc = itemCounts[i] > 0 ? scores[i] : 0;
      if (r.has(i)) pos.push(sc);
      else neg.push(sc);
    }
    auc += aucOne(pos, neg);
    const top = selectTopK(scores, 0, m.nItems, k, seen.indices.subarray(s, e), null).items;
    let hits = 0;
    for (let j = 0; j < top.length; j++) if (r.has(top[j])) hits++;
    prec += hits / k;
    for (let q = s; q < e; q++) excluded[seen.indices[q]] = 0;
  }
  return { precision: users ? prec / users : 0, auc: users ? auc / users : 0, users };
}
