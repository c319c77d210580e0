// Online fold-in: after feedback, re-solve that user's vector against the model's fixed item factors
// (the ALS closed form), so the user's next predict reflects it without a retrain.
//
// Explicit models (biased MF with a rating range [lo, hi]): unknowns x = [p_u, b_u], features
// x_i = [q_i, 1], target t_i = y_i − μ − b_i with y_i = lo + r·(hi − lo) (a reward is a normalised
// rating), weight w_i = 1 (w = skippedWeight for an item shown but not chosen):
//
//   A = A0 + Σ_F w_i x_i x_iᵀ,   b = A0·x0 + Σ_F w_i t_i x_i,   x = A⁻¹ b
//   A0 = Σ_{i∈S} x_i x_iᵀ + Λ     (S: the user's training items, from the artifact's `seen`)
//
// For a user solved by ALS on S this is exactly the closed form over S ∪ F: A0·x0 equals Σ_S t_i x_i
// (the normal equations of the training solve), so the training ratings, which the artifact does not
// carry, are not needed. A new user has x0 = 0, A0 = Λ: plain ridge on its feedback. A known user whose
// training items are not listed is anchored with `anchorObservations` average items instead of S.
//
// Implicit models (Hu–Koren–Volinsky): x = p_u, preference 1 for a positive reward, confidence
// c = 1 + α·r (α from the training record, default 1), base items S observed with c_S = 1 + α:
//
//   A = QᵀQ + λI + Σ_obs (c_i − 1) q_i q_iᵀ,   b = Σ_obs c_i q_i
//
// applied as the same update from (A0, x0): a zero reward on a base item removes it (weighted by
// skippedWeight when it was a skip), a zero reward elsewhere changes nothing (it equals "unobserved").
//
// Models without readable factors (bare PyTorch exports) cannot be folded in: feedback is still stored
// and drives the bandit and retraining, and the server logs once that fold-in is off for that model.
import { FOLD_IN_DEFAULTS, type FoldInSettings } from '../config/fold-in.js';
import type { Recommender, SessionItem, SessionSolver, UserState, UserStateSource } from '../model/recommender.js';
import { biasedDot } from '../util/factor-score.js';
import { gram, solveSpd, symmetrize } from '../util/linalg.js';
import type { Interaction } from './store/index.js';

export { solveSpd }; // test/feedback/fold-in.test.ts checks solves against it from here


/** Items of one Gram slice (≈ 10 ms at 64 factors). */
const GRAM_SLICE_ITEMS = 10_000;

/** Stands for "no user" in a session solve: ids are never empty, so no model user can be named so. */
const ANONYMOUS = '';

interface Folded {
  /** [p_u (d), b_u], or null while a new user has too few positives. */
  x: Float32Array | null;
  seen: Int32Array;
}

/** Folded users of one model version; it is the Recommender's UserStateSource. */
export class FoldInModel implements UserStateSource, SessionSolver {
  readonly kind: 'explicit' | 'implicit';
  readonly d: number;
  /** Interactions up to this id were in the model's training data (0 when none were). */
  readonly watermark: number;
  private readonly D: number;
  private readonly lambda: number;
  private readonly weightedReg: boolean;
  private readonly alpha: number;
  private readonly users = new Map<string, Folded>();
  private itemMoment: Float64Array | null = null;
  private gramQ: Float64Array | null = null;
  /**
   * One catalog-sized buffer for every folded user's scores. A per-user copy would cost
   * users × items × 4 bytes (100,000 users × 50,000 items = 20 GB); callers rank it before they yield.
   */
  private scratch: Float32Array | null = null;

  private constructor(
    readonly model: Recommender,
    readonly settings: FoldInSettings,
  ) {
    const a = model.artifact;
    const f = a.factors!;
    this.d = f.factors;
    this.kind = (a.metadata['recserve.kind'] ?? (a.ratingRange ? 'explicit' : 'implicit')) === 'implicit' ? 'implicit' : 'explicit';
    this.D = this.kind === 'explicit' ? this.d + 1 : this.d;
    this.lambda = f.regularization !== undefined && f.regularization > 0 ? f.regularization : 0.1;
    const training = parseJson(a.metadata['recserve.training']);
    this.weightedReg = training.weightedReg === true || training.weighted_reg === true;
    this.alpha = typeof training.alpha === 'number' && training.alpha > 0 ? training.alpha : 1;
    this.watermark = typeof training.interactions_through === 'number' ? training.interactions_through : 0;
  }

  /** Null when the model carries no readable factors (fold-in is unavailable for it). */
  static for(model: Recommender, settings: Partial<FoldInSettings> = {}): FoldInModel | null {
    if (!model.artifact.factors) return null;
    return new FoldInModel(model, { ...FOLD_IN_DEFAULTS, ...settings });
  }

  get size(): number {
    return this.users.size;
  }

  get(userId: string): UserState | undefined {
    const f = this.users.get(userId);
    if (!f) return undefined;
    if (!f.x) return { seen: f.seen };
    const x = f.x;
    return { seen: f.seen, scores: () => this.scoreAll(x, (this.scratch ??= new Float32Array(this.model.nItems))), score: (i) => this.scoreOne(x, i) };
  }

  /** The folded vector [p_u, b_u] of a user (undefined when not folded). */
  vector(userId: string): Float32Array | undefined {
    return this.users.get(userId)?.x ?? undefined;
  }

  /**
   * Re-solves one user from its stored interactions and installs the result. Rows up to the model's
   * watermark were in its training data (they are in x0 and `seen` already) and are not counted again.
   */
  update(userId: string, rows: Interaction[]): Float32Array | null {
    const latest = latestPerItem(this.watermark > 0 ? rows.filter((r) => r.id > this.watermark) : rows);
    const seen: number[] = [];
    let positives = 0;
    for (const r of latest.values()) {
      const i = this.model.itemIdx(r.itemId);
      if (i === undefined) continue;
      if (r.reward > 0) positives++;
      if (r.kind === 'chosen') seen.push(i); // consumed (named in truth); a list-level reward marks nothing as seen
    }
    const known = this.model.userIdx(userId) !== undefined;
    const x = known || positives >= this.settings.minPositives ? this.solve(userId, latest) : null;
    this.users.delete(userId); // re-insert at the end: the map's order is least recently updated first
    this.users.set(userId, { x, seen: Int32Array.from(new Set(seen)).sort() });
    if (this.users.size > this.settings.maxUsers) this.users.delete(this.users.keys().next().value!);
    return x;
  }

  /** The closed-form solve (see the file comment); rows are the latest per item. */
  solve(userId: string, latest: Map<string, Interaction>): Float32Array {
    const a = this.model.artifact;
    const f = a.factors!;
    const { d, D } = this;
    const Q = f.itemFactors;
    const u = this.model.userIdx(userId);
    const S = u !== undefined ? (a.seen?.[u] ?? null) : null;
    const A = new Float64Array(D * D);
    const x0 = new Float64Array(D);
    if (u !== undefined) {
      for (let k = 0; k < d; k++) x0[k] = f.userFactors[u * d + k];
      if (this.kind === 'explicit') x0[d] = f.userBias[u];
    }
    const feat = new Float64Array(D);
    const setFeat = (i: number) => {
      for (let k = 0; k < d; k++) feat[k] = Q[i * d + k];
      if (this.kind === 'explicit') feat[d] = 1;
    };
    const addOuter = (w: number) => {
      for (let r = 0; r < D; r++) {
        const fr = w * feat[r];
        if (fr === 0) continue;
        for (let c = 0; c <= r; c++) A[r * D + c] += fr * feat[c];
      }
    };
    let nBase = 0;
    const baseSet = new Set<number>();
    const b = new Float64Array(D);

    if (this.kind === 'explicit') {
      // A0 = Σ_S x_i x_iᵀ + Λ_base (or the anchor for a known user without a seen list)
      if (S) {
        for (const i of S) {
          setFeat(i);
          addOuter(1);
          baseSet.add(i);
        }
        nBase = S.length;
      } else if (u !== undefined) {
        const M = this.meanItemMoment();
        const n0 = this.settings.anchorObservations;
        for (let q = 0; q < D * D; q++) A[q] += n0 * M[q];
        nBase = n0;
      }
      const lamBase = this.lambda * (this.weightedReg ? Math.max(1, nBase) : 1);
      for (let k = 0; k < D; k++) A[k * D + k] += lamBase;
      symmetrize(A, D);
      matVec(A, x0, b, D); // b = A0·x0
      // Feedback observations, then swap the base regularisation for the total one (ALS-WR scales by n).
      const lo = a.ratingRange?.[0] ?? 0;
      const hi = a.ratingRange?.[1] ?? 1;
      let nNew = 0;
      const obs = new Float64Array(D * D);
      for (const r of latest.values()) {
        const i = this.model.itemIdx(r.itemId);
        if (i === undefined) continue;
        const w = r.kind === 'skipped' ? this.settings.skippedWeight : 1;
        const t = lo + r.reward * (hi - lo) - f.globalBias - f.itemBias[i];
        setFeat(i);
        for (let k = 0; k < D; k++) b[k] += w * t * feat[k];
        for (let p = 0; p < D; p++) for (let c = 0; c < D; c++) obs[p * D + c] += w * feat[p] * feat[c];
        nNew += 1;
      }
      for (let q = 0; q < D * D; q++) A[q] += obs[q];
      if (this.weightedReg) {
        const extra = this.lambda * (Math.max(1, nBase + nNew) - Math.max(1, nBase));
        for (let k = 0; k < D; k++) A[k * D + k] += extra;
      }
    } else {
      // A0 = QᵀQ + λI + Σ_S (c_S − 1) q qᵀ
      A.set(this.itemGram());
      const cS = 1 + this.alpha;
      if (S) {
        for (const i of S) {
          setFeat(i);
          addOuter(cS - 1);
          baseSet.add(i);
        }
      } else if (u !== undefined) {
        const M = this.meanItemMoment();
        for (let q = 0; q < D * D; q++) A[q] += this.settings.anchorObservations * (cS - 1) * M[q];
      }
      for (let k = 0; k < D; k++) A[k * D + k] += this.lambda;
      symmetrize(A, D);
      matVec(A, x0, b, D);
      for (const r of latest.values()) {
        const i = this.model.itemIdx(r.itemId);
        if (i === undefined) continue;
        setFeat(i);
        const w = r.kind === 'skipped' ? this.settings.skippedWeight : 1;
        let dc: number; // change of confidence − 1 (A) …
        let db: number; // … and of c·preference (b)
        if (r.reward > 0) {
          dc = this.alpha * r.reward; // c − 1 grows by α·r (from 0 for an unobserved item)
          db = baseSet.has(i) ? this.alpha * r.reward : 1 + this.alpha * r.reward;
        } else if (baseSet.has(i)) {
          dc = -w * (cS - 1);
          db = -w * cS;
        } else continue;
        for (let p = 0; p < D; p++) {
          b[p] += db * feat[p];
          for (let c = 0; c < D; c++) A[p * D + c] += dc * feat[p] * feat[c];
        }
      }
    }
    const x = solveSpd(A, b, D, 'fold-in: the normal matrix');
    return Float32Array.from(x);
  }

  /**
   * A session's items folded in for one request, nothing stored: each counts as a chosen item with
   * reward = its weight, over the user's training history when the model knows the user, else from
   * nothing (ridge on the session items alone).
   */
  sessionScores(userId: string | null, items: SessionItem[]): Float32Array {
    const latest = new Map<string, Interaction>();
    items.forEach((it, r) => {
      // A repeated item counts once, its last weight (as the newest feedback on an item wins).
      latest.delete(it.itemId);
      latest.set(it.itemId, { id: r + 1, feedbackId: 0, ts: 0, puid: null, modelVersion: null, userId: userId ?? ANONYMOUS, itemId: it.itemId, reward: it.weight, kind: 'chosen', servedBy: 'not_shown' });
    });
    return this.scoreAll(this.solve(userId ?? ANONYMOUS, latest));
  }

  /** μ + b_u + b_i + p·q_i for every item. */
  scoreAll(x: Float32Array, out: Float32Array = new Float32Array(this.model.nItems)): Float32Array {
    const f = this.model.artifact.factors!;
    const { d } = this;
    const n = this.model.nItems;
    const bu = this.kind === 'explicit' ? x[d] : 0;
    const base = f.globalBias + bu;
    const Q = f.itemFactors;
    for (let i = 0, o = 0; i < n; i++, o += d) out[i] = biasedDot(base + f.itemBias[i], x, 0, Q, o, d);
    return out;
  }

  /** The score of one item: O(factors), for pair scoring. */
  scoreOne(x: Float32Array, i: number): number {
    const f = this.model.artifact.factors!;
    const { d } = this;
    return Math.fround(biasedDot(f.globalBias + (this.kind === 'explicit' ? x[d] : 0) + f.itemBias[i], x, 0, f.itemFactors, i * d, d));
  }

  /** (1/n) Σ_i x_i x_iᵀ over the catalog (the anchor when a user's training items are unknown). */
  private meanItemMoment(): Float64Array {
    if (this.itemMoment) return this.itemMoment;
    const M = new Float64Array(this.D * this.D);
    this.addMoments(M, 0, this.model.nItems);
    return (this.itemMoment = this.meanOf(M));
  }

  /** Σ x_i x_iᵀ over items [from, to) into M. */
  private addMoments(M: Float64Array, from: number, to: number): void {
    const { d, D } = this;
    const Q = this.model.artifact.factors!.itemFactors;
    const feat = new Float64Array(D);
    for (let i = from; i < to; i++) {
      for (let k = 0; k < d; k++) feat[k] = Q[i * d + k];
      if (this.kind === 'explicit') feat[d] = 1;
      for (let r = 0; r < D; r++) for (let c = 0; c < D; c++) M[r * D + c] += feat[r] * feat[c];
    }
  }

  private meanOf(M: Float64Array): Float64Array {
    const n = Math.max(1, this.model.nItems);
    for (let q = 0; q < M.length; q++) M[q] /= n;
    return M;
  }

  /** QᵀQ, once per model version (prepare() computes it before the version serves). */
  private itemGram(): Float64Array {
    if (this.gramQ) return this.gramQ;
    const G = new Float64Array(this.d * this.d);
    gram(this.model.artifact.factors!.itemFactors, this.model.nItems, this.d, G);
    return (this.gramQ = G);
  }

  /** Whether what every solve shares is computed: the item Gram (implicit models) and the anchor moment (a model without seen lists). */
  get prepared(): boolean {
    return (this.kind !== 'implicit' || this.gramQ !== null) && (this.model.artifact.seen !== null || this.itemMoment !== null);
  }

  /**
   * Computes what every solve shares before the version serves (the first session or feedback would
   * pay O(items × factors²) on the event loop): the Gram and (for a model without seen lists) the anchor
   * moment, in slices of GRAM_SLICE_ITEMS with a turn for the event loop before each.
   */
  async prepare(): Promise<void> {
    if (this.kind === 'implicit' && !this.gramQ) {
      const { d } = this;
      const Q = this.model.artifact.factors!.itemFactors;
      const n = this.model.nItems;
      const G = new Float64Array(d * d);
      const part = new Float64Array(d * d);
      for (let from = 0; from < n; from += GRAM_SLICE_ITEMS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const to = Math.min(n, from + GRAM_SLICE_ITEMS);
        gram(Q.subarray(from * d, to * d), to - from, d, part);
        for (let q = 0; q < d * d; q++) G[q] += part[q];
      }
      this.gramQ ??= G;
    }
    if (this.model.artifact.seen === null && !this.itemMoment) {
      const M = new Float64Array(this.D * this.D);
      for (let from = 0; from < this.model.nItems; from += GRAM_SLICE_ITEMS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.addMoments(M, from, Math.min(this.model.nItems, from + GRAM_SLICE_ITEMS));
      }
      this.itemMoment ??= this.meanOf(M);
    }
  }
}

/** The newest row per item (rows come oldest first). */
export function latestPerItem(rows: Interaction[]): Map<string, Interaction> {
  const m = new Map<string, Interaction>();
  for (const r of rows) {
    m.delete(r.itemId);
    m.set(r.itemId, r);
  }
  return m;
}

function matVec(A: Float64Array, x: Float64Array, out: Float64Array, D: number): void {
  for (let r = 0; r < D; r++) {
    let s = 0;
    for (let c = 0; c < D; c++) s += A[r * D + c] * x[c];
    out[r] = s;
  }
}

function parseJson(text: string | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const v = JSON.parse(text);
    return typeof v === 'object' && v !== null ? v : {};
  } catch {
    return {};
  }
}
