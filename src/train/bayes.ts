// Bayesian biased matrix factorisation by Gibbs sampling — BPMF (Salakhutdinov & Mnih 2008) with
// libFM's per-dimension Normal–Gamma hyperpriors (Rendle 2012) — optionally with implicit-feedback
// terms on both sides ("SVD++" and its "flipped" twin, as in Rendle's Bayesian timeSVD++ flipped):
//
//   r_ui ~ N(μ + b_u + b_i + ũ_u·q̃_i, 1/α)
//   ũ_u = p_u + |N(u)|^-½ Σ_{j∈N(u)} y_j      N(u): items u rated in training
//   q̃_i = q_i + |N(i)|^-½ Σ_{v∈N(i)} z_v      N(i): users who rated i in training
//   every parameter vector θ has θ_k ~ N(μ_k, 1/λ_k) per dimension and group,
//   λ_k ~ Gamma(1, 1),  μ_k ~ N(0, 1/(γ0 λ_k)),  α ~ Gamma(1, 1).
//
// A sweep draws α, then [b_u, p_u] for every user jointly from its Gaussian conditional (features
// [1, q̃_i]), then each y_j (its conditional is Gaussian given everything else; the per-user sums
// Σ_i e_ui q̃_i are updated incrementally so a sweep costs O(nnz·d²)), then items and z alike.
// The prediction is the average over the samples kept after burn-in.
//
// Export: the mean of S dot-product models is a dot-product model — Σ_s ũ^s·q̃^s / S is the dot
// product of the concatenations [ũ^1 … ũ^S]/√S and [q̃^1 … q̃^S]/√S (biases averaged) — so the
// result is one model of S·d factors, served by the same ONNX graph as any other.
import { backSolve, cholesky, forwardSolve } from '../util/linalg.js';
import { counts, emptyModel, type EpochHook, type MfModel, type TrainInput } from './model.js';
import { gammaAtLeastOne, gaussian, rng } from '../util/random.js';
import { toCsr, transpose, type Csr } from './sparse.js';

export interface BayesParams {
  /** Factors per sample. */
  factors: number;
  /** Sweeps discarded before averaging. */
  burnIn: number;
  /** Sweeps averaged after burn-in. */
  samples: number;
  /** Keep every `thin`-th sample in the exported model (its width is samples/thin · factors). */
  thin?: number;
  /** Implicit-feedback terms: 'none' (plain BPMF), 'user' (SVD++), 'both' (SVD++ and flipped). */
  implicit?: 'none' | 'user' | 'both';
  initStd?: number;
  seed?: number;
  ratingRange?: [number, number];
}

export const BAYES_DEFAULTS: BayesParams = { factors: 10, burnIn: 20, samples: 120, thin: 2, implicit: 'both', initStd: 0.1, seed: 0 };

/** Gamma(shape, rate) draw (Marsaglia & Tsang 2000). */
export function gammaDraw(shape: number, rate: number, uniform: () => number, normal: () => number): number {
  if (shape < 1) {
    const u = uniform();
    return gammaDraw(shape + 1, rate, uniform, normal) * Math.pow(u, 1 / shape);
  }
  return gammaAtLeastOne(shape, uniform, normal) / rate;
}

export interface BayesResult {
  /** The kept samples as one model of kept·factors dimensions. */
  model: MfModel;
  kept: number;
  /**
   * The ridge λ equivalent to the last sample's prior for a user block of the exported model
   * (kept · mean λ^U / α), for servers that fold new users in by ridge regression.
   */
  ridge: number;
}

/** One side of the model (users or items). */
interface Side {
  n: number;
  /** rows × (d+1): [bias, factors]. */
  theta: Float64Array;
  /** rows × d: the implicit aggregate |N(r)|^-½ Σ_{j∈N(r)} w_j (zero without implicit terms). */
  agg: Float64Array;
  /** Implicit factors w_j, indexed by the OTHER side's rows. */
  w: Float64Array | null;
  /** rows × d: the full vector θ_factors + agg that the other side dots with. */
  full: Float64Array;
  /** Ratings by this side's rows (rows → other side), and the transpose. */
  M: Csr;
  Mt: Csr;
  counts: Int32Array;
  hyperMu: Float64Array;
  hyperLam: Float64Array;
  wMu: Float64Array;
  wLam: Float64Array;
}

export function trainBayes(data: TrainInput, params: Partial<BayesParams> = {}, onEpoch?: EpochHook): BayesResult {
  const p = { ...BAYES_DEFAULTS, ...params };
  const d = p.factors;
  const D = d + 1;
  const { nUsers, nItems } = data;
  const n = data.values.length;
  const R = toCsr(nUsers, nItems, data.users, data.items, data.values);
  const Rt = transpose(R);
  const uniform = rng(p.seed ?? 0);
  const normal = gaussian(uniform);
  let mu = 0;
  for (let k = 0; k < n; k++) mu += data.values[k];
  mu /= Math.max(1, n);
  const implicitUser = p.implicit === 'user' || p.implicit === 'both';
  const implicitItem = p.implicit === 'both';
  const std = p.initStd ?? 0.1;

  const makeSide = (rows: number, M: Csr, Mt: Csr, implicit: boolean, otherRows: number): Side => {
    const c = counts(rows, M === R ? data.users : data.items);
    const theta = new Float64Array(rows * D);
    for (let r = 0; r < rows; r++) if (c[r] > 0) for (let k = 1; k < D; k++) theta[r * D + k] = std * normal();
    return {
      n: rows,
      theta,
      agg: new Float64Array(rows * d),
      w: implicit ? new Float64Array(otherRows * d) : null,
      full: new Float64Array(rows * d),
      M,
      Mt,
      counts: c,
      hyperMu: new Float64Array(D),
      hyperLam: new Float64Array(D).fill(1),
      wMu: new Float64Array(d),
      wLam: new Float64Array(d).fill(1),
    };
  };
  const users = makeSide(nUsers, R, Rt, implicitUser, nItems);
  const items = makeSide(nItems, Rt, R, implicitItem, nUsers);

  let alpha = 1;
  const A = new Float64Array(D * D);
  const bvec = new Float64Array(D);
  const Ad = new Float64Array(d * d);
  const bd = new Float64Array(d);
  const tmp = new Float64Array(d);
  const gamma0 = 1;

  const refreshFull = (s: Side) => {
    for (let r = 0; r < s.n; r++) for (let a = 0; a < d; a++) s.full[r * d + a] = s.theta[r * D + 1 + a] + s.agg[r * d + a];
  };
  const recomputeAgg = (s: Side) => {
    if (!s.w) return;
    s.agg.fill(0);
    for (let r = 0; r < s.n; r++) {
      const st = s.M.indptr[r];
      const en = s.M.indptr[r + 1];
      if (en === st) continue;
      const sc = 1 / Math.sqrt(en - st);
      for (let q = st; q < en; q++) {
        const wo = s.M.indices[q] * d;
        for (let a = 0; a < d; a++) s.agg[r * d + a] += sc * s.w[wo + a];
      }
    }
  };

  // Normal–Gamma hyperparameters of a block of vectors (rows with data only).
  const sampleHyper = (X: Float64Array, width: number, offset: number, stride: number, active: (r: number) => boolean, rows: number, m: Float64Array, lam: Float64Array) => {
    let nRows = 0;
    for (let r = 0; r < rows; r++) if (active(r)) nRows++;
    for (let k = 0; k < width; k++) {
      let sum = 0;
      let ss = 0;
      for (let r = 0; r < rows; r++) {
        if (!active(r)) continue;
        const x = X[r * stride + offset + k];
        sum += x;
        const t = x - m[k];
        ss += t * t;
      }
      ss += gamma0 * m[k] * m[k];
      lam[k] = gammaDraw(1 + (nRows + 1) / 2, 1 + ss / 2, uniform, normal);
      m[k] = sum / (nRows + gamma0) + normal() / Math.sqrt((nRows + gamma0) * lam[k]);
    }
  };

  // Draws [b_r, p_r] for every row of side s given the other side o (features [1, o.full]).
  const frow = new Float64Array(d);
  const sampleTheta = (s: Side, o: Side) => {
    const { indptr, indices, data: vals } = s.M;
    const X = s.theta;
    const agg = s.agg;
    const hasW = s.w !== null;
    const ofull = o.full;
    const otheta = o.theta;
    const lam = s.hyperLam;
    const hmu = s.hyperMu;
    for (let r = 0; r < s.n; r++) {
      const st = indptr[r];
      const en = indptr[r + 1];
      if (en === st) continue;
      A.fill(0);
      for (let k = 0; k < D; k++) {
        A[k * D + k] = lam[k];
        bvec[k] = lam[k] * hmu[k];
      }
      const ao = r * d;
      let a00 = 0;
      for (let q = st; q < en; q++) {
        const c = indices[q];
        const fo = c * d;
        for (let a = 0; a < d; a++) frow[a] = ofull[fo + a];
        let extra = 0;
        if (hasW) for (let a = 0; a < d; a++) extra += agg[ao + a] * frow[a];
        const t = alpha * (vals[q] - mu - otheta[c * D] - extra);
        bvec[0] += t;
        a00 += alpha;
        for (let a = 1; a < D; a++) {
          const fa = frow[a - 1];
          bvec[a] += t * fa;
          const aa = a * D;
          const wa = alpha * fa;
          A[aa] += wa;
          for (let k = 1; k <= a; k++) A[aa + k] += wa * frow[k - 1];
        }
      }
      A[0] += a00;
      if (!cholesky(A, D)) throw new Error('Bayesian MF: conditional precision is not positive definite');
      forwardSolve(A, D, bvec);
      for (let k = 0; k < D; k++) bvec[k] += normal();
      backSolve(A, D, bvec);
      X.set(bvec, r * D);
    }
  };

  // Draws the implicit factors w_j owned by side s (s.agg_r = |N(r)|^-½ Σ_{j∈N(r)} w_j), given o.full.
  const Sbuf = new Map<Side, Float64Array>();
  const Hbuf = new Map<Side, Float64Array>();
  const sampleImplicit = (s: Side, o: Side) => {
    const w = s.w!;
    const { indptr, indices, data: vals } = s.M;
    const theta = s.theta;
    const agg = s.agg;
    const ofull = o.full;
    const otheta = o.theta;
    const wLam = s.wLam;
    const wMu = s.wMu;
    let S = Sbuf.get(s);
    if (!S) Sbuf.set(s, (S = new Float64Array(s.n * d * d)));
    let H = Hbuf.get(s);
    if (!H) Hbuf.set(s, (H = new Float64Array(s.n * d)));
    recomputeAgg(s);
    // Per owner r: S_r = Σ_c f_c f_cᵀ and h_r = Σ_c e_rc f_c with f = o.full.
    S.fill(0);
    H.fill(0);
    for (let r = 0; r < s.n; r++) {
      const st = indptr[r];
      const en = indptr[r + 1];
      const so = r * d * d;
      const ho = r * d;
      const to = r * D;
      for (let q = st; q < en; q++) {
        const c = indices[q];
        const fo = c * d;
        let dot = 0;
        for (let a = 0; a < d; a++) {
          const fa = ofull[fo + a];
          frow[a] = fa;
          dot += (theta[to + 1 + a] + agg[ho + a]) * fa;
        }
        const e = vals[q] - mu - theta[to] - otheta[c * D] - dot;
        for (let a = 0; a < d; a++) {
          const fa = frow[a];
          H[ho + a] += e * fa;
          const aa = so + a * d;
          for (let k = 0; k <= a; k++) S[aa + k] += fa * frow[k];
        }
      }
      for (let a = 0; a < d; a++) for (let k = 0; k < a; k++) S[so + k * d + a] = S[so + a * d + k];
    }
    const { indptr: op, indices: oi } = s.Mt; // implicit factor j → owners r with j ∈ N(r)
    for (let j = 0; j < s.Mt.nRows; j++) {
      const st = op[j];
      const en = op[j + 1];
      const wo = j * d;
      if (en === st) continue;
      Ad.fill(0);
      for (let a = 0; a < d; a++) {
        Ad[a * d + a] = wLam[a];
        bd[a] = wLam[a] * wMu[a];
        frow[a] = w[wo + a];
      }
      for (let q = st; q < en; q++) {
        const r = oi[q];
        const sc = 1 / Math.sqrt(indptr[r + 1] - indptr[r]);
        const so = r * d * d;
        const ho = r * d;
        const as = alpha * sc;
        const wa = as * sc;
        // b += α sc (h_r + sc S_r w_j);  A += α sc² S_r
        for (let a = 0; a < d; a++) {
          let t = 0;
          const aa = so + a * d;
          for (let k = 0; k < d; k++) t += S[aa + k] * frow[k];
          bd[a] += as * (H[ho + a] + sc * t);
          const ad = a * d;
          for (let k = 0; k <= a; k++) Ad[ad + k] += wa * S[aa + k];
        }
      }
      if (!cholesky(Ad, d)) throw new Error('Bayesian MF: implicit-factor precision is not positive definite');
      forwardSolve(Ad, d, bd);
      for (let a = 0; a < d; a++) bd[a] += normal();
      backSolve(Ad, d, bd);
      for (let a = 0; a < d; a++) {
        tmp[a] = bd[a] - frow[a];
        w[wo + a] = bd[a];
      }
      // Owners' residual sums and aggregates follow the change.
      for (let q = st; q < en; q++) {
        const r = oi[q];
        const sc = 1 / Math.sqrt(indptr[r + 1] - indptr[r]);
        const so = r * d * d;
        const ho = r * d;
        for (let a = 0; a < d; a++) {
          let t = 0;
          const aa = so + a * d;
          for (let k = 0; k < d; k++) t += S[aa + k] * tmp[k];
          H[ho + a] -= sc * t;
          agg[ho + a] += sc * tmp[a];
        }
      }
    }
  };

  const thin = Math.max(1, p.thin ?? 1);
  const kept = Math.max(1, Math.floor(p.samples / thin));
  const Dout = kept * d;
  const out = emptyModel(nUsers, nItems, Dout, 'explicit');
  out.mu = mu;
  if (p.ratingRange) out.ratingRange = p.ratingRange;
  let keptSoFar = 0;
  const sweeps = p.burnIn + p.samples;
  const predSum = onEpoch ? new Float64Array(n) : null;

  refreshFull(users);
  refreshFull(items);
  for (let sweep = 1; sweep <= sweeps; sweep++) {
    const t0 = performance.now();
    let sse = 0;
    for (let k = 0; k < n; k++) {
      const u = data.users[k];
      const i = data.items[k];
      let s = mu + users.theta[u * D] + items.theta[i * D];
      for (let a = 0; a < d; a++) s += users.full[u * d + a] * items.full[i * d + a];
      const e = data.values[k] - s;
      sse += e * e;
    }
    alpha = gammaDraw(1 + n / 2, 1 + sse / 2, uniform, normal);

    // users: θ, then implicit y (owned by users, indexed by items)
    sampleHyper(users.theta, D, 0, D, (r) => users.counts[r] > 0, nUsers, users.hyperMu, users.hyperLam);
    sampleTheta(users, items);
    refreshFull(users);
    if (users.w) {
      sampleHyper(users.w, d, 0, d, (j) => items.counts[j] > 0, nItems, users.wMu, users.wLam);
      sampleImplicit(users, items);
      refreshFull(users);
    }
    sampleHyper(items.theta, D, 0, D, (r) => items.counts[r] > 0, nItems, items.hyperMu, items.hyperLam);
    sampleTheta(items, users);
    refreshFull(items);
    if (items.w) {
      sampleHyper(items.w, d, 0, d, (v) => users.counts[v] > 0, nUsers, items.wMu, items.wLam);
      sampleImplicit(items, users);
      refreshFull(items);
    }

    let loss = Math.sqrt(sse / Math.max(1, n));
    let lossName = 'train_rmse';
    if (sweep > p.burnIn) {
      const j = sweep - p.burnIn;
      for (let u = 0; u < nUsers; u++) out.bu[u] += (users.theta[u * D] - out.bu[u]) / j;
      for (let i = 0; i < nItems; i++) out.bi[i] += (items.theta[i * D] - out.bi[i]) / j;
      if (j % thin === 0 && keptSoFar < kept) {
        const scale = 1 / Math.sqrt(kept);
        const off = keptSoFar * d;
        for (let u = 0; u < nUsers; u++) for (let a = 0; a < d; a++) out.P[u * Dout + off + a] = users.full[u * d + a] * scale;
        for (let i = 0; i < nItems; i++) for (let a = 0; a < d; a++) out.Q[i * Dout + off + a] = items.full[i * d + a] * scale;
        keptSoFar++;
      }
      if (predSum) {
        let se = 0;
        for (let k = 0; k < n; k++) {
          const u = data.users[k];
          const i = data.items[k];
          let s = mu + users.theta[u * D] + items.theta[i * D];
          for (let a = 0; a < d; a++) s += users.full[u * d + a] * items.full[i * d + a];
          predSum[k] += s;
          const e = data.values[k] - predSum[k] / j;
          se += e * e;
        }
        loss = Math.sqrt(se / Math.max(1, n));
        lossName = 'train_rmse_avg';
      }
    }
    if (onEpoch) {
      const have = keptSoFar;
      const view = () => (have > 0 ? scaledView(out, kept, have, d) : out);
      const stop = onEpoch({ epoch: sweep, epochs: sweeps, loss, lossName, seconds: (performance.now() - t0) / 1000 }, view);
      if (stop === true) break;
    }
  }
  let lamMean = 0;
  for (let k = 1; k < D; k++) lamMean += users.hyperLam[k] / d;
  const have = Math.max(1, keptSoFar);
  const ridge = (have * lamMean) / alpha;
  if (keptSoFar < kept) return { model: scaledView(out, kept, have, d), kept: keptSoFar, ridge };
  return { model: out, kept, ridge };
}

/** The first `have` sample blocks of a model built for `planned` samples, rescaled to average over `have`. */
function scaledView(m: MfModel, planned: number, have: number, d: number): MfModel {
  if (have === planned) return m;
  const Dn = have * d;
  const Dold = m.factors;
  const f = Math.sqrt(planned / have);
  const v = emptyModel(m.nUsers, m.nItems, Dn, m.kind);
  v.mu = m.mu;
  v.ratingRange = m.ratingRange;
  v.bu.set(m.bu);
  v.bi.set(m.bi);
  for (let u = 0; u < m.nUsers; u++) for (let a = 0; a < Dn; a++) v.P[u * Dn + a] = m.P[u * Dold + a] * f;
  for (let i = 0; i < m.nItems; i++) for (let a = 0; a < Dn; a++) v.Q[i * Dn + a] = m.Q[i * Dold + a] * f;
  return v;
}
