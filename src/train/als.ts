// Alternating least squares.
//
// Explicit (biased ALS): with item parameters fixed, each user solves the ridge problem
//   min Σ_i (r_ui − μ − b_i − b_u − p_u·q_i)² + λ_u‖p_u‖² + λ_b,u b_u²
// in the augmented unknown [p_u, b_u] with features [q_i, 1]; then items symmetrically. With
// `weightedReg` the penalties scale with the row's rating count (ALS-WR, Zhou et al. 2008).
//
// Implicit (weighted ALS, Hu–Koren–Volinsky 2008): preference p_ui = 1 for observed pairs, 0
// otherwise, confidence c_ui = 1 + α·w_ui (observed) or 1 (unobserved):
//   x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ Yᵀ C_u p_u
// solved per user by a few conjugate-gradient steps warm-started from the previous x_u (as the
// `implicit` library does: O(nnz_u·d + d²) per step, never forming the d×d user matrix), or exactly
// by Cholesky. YᵀY is computed once per half-sweep.
import { backSolve, cholesky, forwardSolve, gram } from '../util/linalg.js';
import { counts, emptyModel, predictRaw, type EpochHook, type MfModel, type TrainInput } from './model.js';
import { gaussian, rng } from '../util/random.js';
import { initRows } from './sgd.js';
import { toCsr, transpose, type Csr } from './sparse.js';

export interface AlsParams {
  factors: number;
  epochs: number;
  /** λ for factors. */
  reg: number;
  /** λ for biases (default reg). */
  regBias?: number;
  /** Scale λ by the row's number of ratings (ALS-WR). */
  weightedReg?: boolean;
  biased?: boolean;
  initStd?: number;
  seed?: number;
  ratingRange?: [number, number];
}

export const ALS_DEFAULTS: AlsParams = { factors: 50, epochs: 15, reg: 0.05, weightedReg: true, biased: true, initStd: 0.1, seed: 0 };

export function trainAls(data: TrainInput, params: Partial<AlsParams> = {}, onEpoch?: EpochHook): MfModel {
  const p = { ...ALS_DEFAULTS, ...params };
  const d = p.factors;
  const biased = p.biased !== false;
  const D = biased ? d + 1 : d;
  const { nUsers, nItems } = data;
  const R = toCsr(nUsers, nItems, data.users, data.items, data.values);
  const Rt = transpose(R);
  const m = emptyModel(nUsers, nItems, d, 'explicit');
  if (p.ratingRange) m.ratingRange = p.ratingRange;
  const normal = gaussian(rng(p.seed ?? 0));
  const uc = counts(nUsers, data.users);
  const ic = counts(nItems, data.items);
  initRows(m.P, d, uc, p.initStd ?? 0.1, normal);
  initRows(m.Q, d, ic, p.initStd ?? 0.1, normal);
  let mu = 0;
  const n = data.values.length;
  if (biased) {
    for (let k = 0; k < n; k++) mu += data.values[k];
    mu /= Math.max(1, n);
  }
  m.mu = mu;
  const A = new Float64Array(D * D);
  const b = new Float64Array(D);
  const x = new Float64Array(D);
  const reg = p.reg;
  const regB = p.regBias ?? p.reg;

  // Solve every row of X (with its biases bx) against the fixed side Y (biases by).
  const yrow = new Float64Array(d);
  const half = (M: Csr, X: Float32Array, bx: Float32Array, Y: Float32Array, by: Float32Array) => {
    const { indptr, indices, data: vals } = M;
    for (let r = 0; r < M.nRows; r++) {
      const s = indptr[r];
      const e = indptr[r + 1];
      const cnt = e - s;
      if (cnt === 0) continue;
      A.fill(0);
      b.fill(0);
      let ysum = 0;
      for (let q = s; q < e; q++) {
        const c = indices[q];
        const yo = c * d;
        for (let a = 0; a < d; a++) yrow[a] = Y[yo + a];
        const t = vals[q] - mu - (biased ? by[c] : 0);
        for (let a = 0; a < d; a++) {
          const ya = yrow[a];
          b[a] += t * ya;
          const aa = a * D;
          for (let k = 0; k <= a; k++) A[aa + k] += ya * yrow[k];
        }
        if (biased) {
          const aa = d * D;
          for (let k = 0; k < d; k++) A[aa + k] += yrow[k];
          ysum += 1;
          b[d] += t;
        }
      }
      if (biased) A[d * D + d] += ysum;
      const scale = p.weightedReg ? cnt : 1;
      for (let a = 0; a < d; a++) A[a * D + a] += reg * scale;
      if (biased) A[d * D + d] += regB * scale;
      x.set(b);
      if (!cholesky(A, D)) throw new Error('ALS normal equations are not positive definite: increase --reg');
      forwardSolve(A, D, x);
      backSolve(A, D, x);
      const xo = r * d;
      for (let a = 0; a < d; a++) X[xo + a] = x[a];
      if (biased) bx[r] = x[d];
    }
  };

  for (let epoch = 1; epoch <= p.epochs; epoch++) {
    const t0 = performance.now();
    half(R, m.P, m.bu, m.Q, m.bi);
    half(Rt, m.Q, m.bi, m.P, m.bu);
    let sse = 0;
    for (let k = 0; k < n; k++) {
      const err = data.values[k] - predictRaw(m, data.users[k], data.items[k]);
      sse += err * err;
    }
    const stop = onEpoch?.({ epoch, epochs: p.epochs, loss: Math.sqrt(sse / Math.max(1, n)), lossName: 'train_rmse', seconds: (performance.now() - t0) / 1000 }, () => m);
    if (stop === true) break;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------

export interface WalsParams {
  factors: number;
  epochs: number;
  /** λ (L2 on every factor row). */
  reg: number;
  /** Confidence c = 1 + α·w for an observed pair of weight w. */
  alpha: number;
  /** Confidence from weights: 'linear' 1 + α·w, or 'log' 1 + α·ln(1 + w/ε) (Hu et al. §4). */
  confidence?: 'linear' | 'log';
  epsilon?: number;
  /** Scale λ by (n_row)^regExp (frequency-scaled regularisation as in Rendle et al.'s iALS; 0 = plain λ). */
  regExp?: number;
  solver?: 'cg' | 'cholesky';
  cgSteps?: number;
  /** Factors start uniform in [0, initScale) like `implicit` (or N(0, initScale²) with init 'normal'). */
  initScale?: number;
  init?: 'uniform' | 'normal';
  seed?: number;
}

export const WALS_DEFAULTS: WalsParams = {
  factors: 64,
  epochs: 15,
  reg: 0.01,
  alpha: 1,
  confidence: 'linear',
  epsilon: 1,
  regExp: 0,
  solver: 'cg',
  cgSteps: 3,
  initScale: 0.01,
  init: 'uniform',
  seed: 0,
};

export function trainWals(data: TrainInput, params: Partial<WalsParams> = {}, onEpoch?: EpochHook): MfModel {
  const p = { ...WALS_DEFAULTS, ...params };
  const d = p.factors;
  const { nUsers, nItems } = data;
  // Confidence minus one per observed entry; the preference is 1 wherever an entry exists.
  const cm1 = new Float32Array(data.values.length);
  for (let k = 0; k < cm1.length; k++) {
    const w = data.values[k];
    cm1[k] = p.confidence === 'log' ? p.alpha * Math.log(1 + w / (p.epsilon ?? 1)) : p.alpha * w;
  }
  const R = toCsr(nUsers, nItems, data.users, data.items, cm1);
  const Rt = transpose(R);
  const m = emptyModel(nUsers, nItems, d, 'implicit');
  const rand = rng(p.seed ?? 0);
  const uc = counts(nUsers, data.users);
  const ic = counts(nItems, data.items);
  if (p.init === 'normal') {
    const normal = gaussian(rand);
    initRows(m.P, d, uc, p.initScale ?? 0.01, normal);
    initRows(m.Q, d, ic, p.initScale ?? 0.01, normal);
  } else {
    const scale = p.initScale ?? 0.01;
    for (let u = 0; u < nUsers; u++) if (uc[u] > 0) for (let f = 0; f < d; f++) m.P[u * d + f] = rand() * scale;
    for (let i = 0; i < nItems; i++) if (ic[i] > 0) for (let f = 0; f < d; f++) m.Q[i * d + f] = rand() * scale;
  }
  const solver = makeImplicitSolver(d, p);
  for (let epoch = 1; epoch <= p.epochs; epoch++) {
    const t0 = performance.now();
    solver.half(R, m.P, m.Q, nItems);
    solver.half(Rt, m.Q, m.P, nUsers);
    const loss = onEpoch ? implicitLoss(R, m.P, m.Q, d, p.reg) : NaN;
    const stop = onEpoch?.({ epoch, epochs: p.epochs, loss, lossName: 'wals_loss', seconds: (performance.now() - t0) / 1000 }, () => m);
    if (stop === true) break;
  }
  return m;
}

/** The per-row solver for one half-sweep of implicit ALS (also used by the parallel worker). */
export function makeImplicitSolver(d: number, p: Pick<WalsParams, 'reg' | 'regExp' | 'solver' | 'cgSteps'>) {
  const YtY = new Float64Array(d * d);
  const A = new Float64Array(d * d);
  const b = new Float64Array(d);
  const x = new Float64Array(d);
  const r = new Float64Array(d);
  const pv = new Float64Array(d);
  const Ap = new Float64Array(d);
  const cgSteps = p.cgSteps ?? 3;
  const regExp = p.regExp ?? 0;

  /** Solves rows [from, to) of X given Y (which has nY rows); M holds c−1 per observed entry. */
  const rows = (M: Csr, X: Float32Array, Y: Float32Array, from: number, to: number) => {
    for (let row = from; row < to; row++) {
      const s = M.indptr[row];
      const e = M.indptr[row + 1];
      const xo = row * d;
      if (e === s) {
        X.fill(0, xo, xo + d);
        continue;
      }
      const lam = regExp === 0 ? p.reg : p.reg * Math.pow(e - s, regExp);
      if (p.solver === 'cholesky') {
        A.set(YtY);
        b.fill(0);
        for (let q = s; q < e; q++) {
          const yo = M.indices[q] * d;
          const c1 = M.data[q];
          for (let a = 0; a < d; a++) {
            const ya = Y[yo + a];
            b[a] += (1 + c1) * ya;
            const wa = c1 * ya;
            const aa = a * d;
            for (let k = 0; k <= a; k++) A[aa + k] += wa * Y[yo + k];
          }
        }
        for (let a = 0; a < d; a++) A[a * d + a] += lam;
        if (!cholesky(A, d)) throw new Error('implicit ALS system is not positive definite: increase --reg');
        forwardSolve(A, d, b);
        backSolve(A, d, b);
        for (let a = 0; a < d; a++) X[xo + a] = b[a];
        continue;
      }
      // Conjugate gradient on (YᵀY + λI + Σ (c−1) y yᵀ) x = Σ c y, warm-started at the current row.
      for (let a = 0; a < d; a++) x[a] = X[xo + a];
      // r = b − A x
      for (let a = 0; a < d; a++) {
        let t = lam * x[a];
        const aa = a * d;
        for (let k = 0; k < d; k++) t += YtY[aa + k] * x[k];
        r[a] = -t;
      }
      for (let q = s; q < e; q++) {
        const yo = M.indices[q] * d;
        const c1 = M.data[q];
        let yx = 0;
        for (let a = 0; a < d; a++) yx += Y[yo + a] * x[a];
        const coef = 1 + c1 - c1 * yx;
        for (let a = 0; a < d; a++) r[a] += coef * Y[yo + a];
      }
      let rs = 0;
      for (let a = 0; a < d; a++) (pv[a] = r[a]), (rs += r[a] * r[a]);
      for (let it = 0; it < cgSteps && rs > 1e-20; it++) {
        for (let a = 0; a < d; a++) {
          let t = lam * pv[a];
          const aa = a * d;
          for (let k = 0; k < d; k++) t += YtY[aa + k] * pv[k];
          Ap[a] = t;
        }
        for (let q = s; q < e; q++) {
          const yo = M.indices[q] * d;
          const c1 = M.data[q];
          let yp = 0;
          for (let a = 0; a < d; a++) yp += Y[yo + a] * pv[a];
          const coef = c1 * yp;
          for (let a = 0; a < d; a++) Ap[a] += coef * Y[yo + a];
        }
        let pAp = 0;
        for (let a = 0; a < d; a++) pAp += pv[a] * Ap[a];
        if (!(pAp > 0)) break;
        const step = rs / pAp;
        let rsNew = 0;
        for (let a = 0; a < d; a++) {
          x[a] += step * pv[a];
          r[a] -= step * Ap[a];
          rsNew += r[a] * r[a];
        }
        const beta = rsNew / rs;
        for (let a = 0; a < d; a++) pv[a] = r[a] + beta * pv[a];
        rs = rsNew;
      }
      for (let a = 0; a < d; a++) X[xo + a] = x[a];
    }
  };

  return {
    YtY,
    gram(Y: Float32Array, nY: number) {
      gram(Y, nY, d, YtY);
    },
    rows,
    half(M: Csr, X: Float32Array, Y: Float32Array, nY: number) {
      gram(Y, nY, d, YtY);
      rows(M, X, Y, 0, M.nRows);
    },
  };
}

/** Σ_observed c(1 − x·y)² + Σ_unobserved (x·y)² + λ(‖X‖² + ‖Y‖²), computed via the Gram trick; per observed entry. */
function implicitLoss(R: Csr, X: Float32Array, Y: Float32Array, d: number, reg: number): number {
  const G = new Float64Array(d * d);
  gram(Y, R.nCols, d, G);
  let loss = 0;
  let reg2 = 0;
  for (let u = 0; u < R.nRows; u++) {
    const xo = u * d;
    // xᵀ G x = Σ_all items (x·y)²
    let quad = 0;
    for (let a = 0; a < d; a++) {
      let t = 0;
      for (let k = 0; k < d; k++) t += G[a * d + k] * X[xo + k];
      quad += X[xo + a] * t;
      reg2 += X[xo + a] * X[xo + a];
    }
    loss += quad;
    for (let q = R.indptr[u]; q < R.indptr[u + 1]; q++) {
      const yo = R.indices[q] * d;
      let s = 0;
      for (let a = 0; a < d; a++) s += X[xo + a] * Y[yo + a];
      const c = 1 + R.data[q];
      loss += c * (1 - s) * (1 - s) - s * s;
    }
  }
  for (let k = 0; k < Y.length; k++) reg2 += Y[k] * Y[k];
  return (loss + reg * reg2) / Math.max(1, R.indices.length);
}
