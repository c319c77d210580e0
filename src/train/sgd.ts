// Biased matrix factorisation by stochastic gradient descent (Funk / Surprise `SVD` style):
//   r̂_ui = μ + b_u + b_i + p_u·q_i,  loss = Σ (r_ui − r̂_ui)² + λ(b_u² + b_i² + ‖p_u‖² + ‖q_i‖²)
// one update per rating:  e = r − r̂;  b_u += γ_b(e − λ_b b_u);  b_i += γ_b(e − λ_b b_i);
//                          p_u += γ(e q_i − λ p_u);  q_i += γ(e p_u − λ q_i)   (old p_u in the q_i step)
import { counts, emptyModel, type EpochHook, type MfModel, type TrainInput } from './model.js';
import { gaussian, rng } from '../util/random.js';

export interface SgdParams {
  factors: number;
  epochs: number;
  /** Learning rate γ for factors. */
  lr: number;
  /** L2 weight λ for factors. */
  reg: number;
  /** Learning rate for biases (default lr). */
  lrBias?: number;
  /** L2 weight for biases (default reg). */
  regBias?: number;
  /** Factors start as N(0, initStd²) (Surprise: 0.1). */
  initStd?: number;
  /** Multiply the learning rates by this after each epoch (1 = constant, Surprise's behaviour). */
  lrDecay?: number;
  /** 'shuffle' visits ratings in a new seeded order each epoch; 'fixed' keeps user-major order like Surprise. */
  order?: 'shuffle' | 'fixed';
  /** false: PMF without μ and biases. */
  biased?: boolean;
  seed?: number;
  ratingRange?: [number, number];
}

export const SGD_DEFAULTS: SgdParams = { factors: 100, epochs: 20, lr: 0.005, reg: 0.02, initStd: 0.1, order: 'shuffle', biased: true, seed: 0 };

export function trainSgd(data: TrainInput, params: Partial<SgdParams> = {}, onEpoch?: EpochHook): MfModel {
  const p = { ...SGD_DEFAULTS, ...params };
  const d = p.factors;
  const { nUsers, nItems, users, items, values } = data;
  const n = users.length;
  const m = emptyModel(nUsers, nItems, d, 'explicit');
  if (p.ratingRange) m.ratingRange = p.ratingRange;
  const rand = rng(p.seed ?? 0);
  const normal = gaussian(rand);
  const std = p.initStd ?? 0.1;
  // Only rows with training data get random factors: the others stay zero and predict like unknown ids.
  initRows(m.P, d, counts(nUsers, users), std, normal);
  initRows(m.Q, d, counts(nItems, items), std, normal);
  const biased = p.biased !== false;
  let mu = 0;
  if (biased) {
    for (let k = 0; k < n; k++) mu += values[k];
    mu /= Math.max(1, n);
  }
  m.mu = mu;

  // Visit order: user-major (stable) for 'fixed', reshuffled per epoch otherwise.
  const order = Int32Array.from({ length: n }, (_, k) => k);
  order.sort((a, b) => users[a] - users[b] || a - b);
  const P = m.P;
  const Q = m.Q;
  const bu = m.bu;
  const bi = m.bi;
  let lr = p.lr;
  let lrB = p.lrBias ?? p.lr;
  const reg = p.reg;
  const regB = p.regBias ?? p.reg;
  const decay = p.lrDecay ?? 1;

  for (let epoch = 1; epoch <= p.epochs; epoch++) {
    const t0 = performance.now();
    if (p.order !== 'fixed') {
      for (let k = n - 1; k > 0; k--) {
        const j = Math.floor(rand() * (k + 1));
        const t = order[k];
        order[k] = order[j];
        order[j] = t;
      }
    }
    let sse = 0;
    for (let s = 0; s < n; s++) {
      const k = order[s];
      const u = users[k];
      const i = items[k];
      const pu = u * d;
      const qi = i * d;
      let dot = 0;
      for (let f = 0; f < d; f++) dot += P[pu + f] * Q[qi + f];
      const e = values[k] - (mu + bu[u] + bi[i] + dot);
      sse += e * e;
      if (biased) {
        bu[u] += lrB * (e - regB * bu[u]);
        bi[i] += lrB * (e - regB * bi[i]);
      }
      for (let f = 0; f < d; f++) {
        const puf = P[pu + f];
        const qif = Q[qi + f];
        P[pu + f] = puf + lr * (e * qif - reg * puf);
        Q[qi + f] = qif + lr * (e * puf - reg * qif);
      }
    }
    lr *= decay;
    lrB *= decay;
    const stop = onEpoch?.({ epoch, epochs: p.epochs, loss: Math.sqrt(sse / Math.max(1, n)), lossName: 'train_rmse', seconds: (performance.now() - t0) / 1000 }, () => m);
    if (stop === true) break;
  }
  return m;
}

export function initRows(M: Float32Array, d: number, rowCounts: Int32Array, std: number, normal: () => number): void {
  for (let r = 0; r < rowCounts.length; r++) {
    if (rowCounts[r] === 0) continue;
    for (let f = 0; f < d; f++) M[r * d + f] = std * normal();
  }
}
