// Bayesian personalised ranking (Rendle et al. 2009) by SGD with uniform sampling: for an observed
// pair (u, i) and an item j the user has not interacted with,
//   x = b_i − b_j + p_u·(q_i − q_j),  maximise ln σ(x) − λ(‖p_u‖² + ‖q_i‖² + ‖q_j‖²) − λ_b(b_i² + b_j²)
// one step per sample; an epoch draws as many samples as there are interactions.
import { counts, emptyModel, type EpochHook, type MfModel, type TrainInput } from './model.js';
import { gaussian, rng } from '../util/random.js';
import { initRows } from './sgd.js';
import { toCsr } from './sparse.js';

export interface BprParams {
  factors: number;
  epochs: number;
  lr: number;
  reg: number;
  regBias?: number;
  initStd?: number;
  seed?: number;
}

export const BPR_DEFAULTS: BprParams = { factors: 64, epochs: 50, lr: 0.05, reg: 0.01, regBias: 0.01, initStd: 0.1, seed: 0 };

export function trainBpr(data: TrainInput, params: Partial<BprParams> = {}, onEpoch?: EpochHook): MfModel {
  const p = { ...BPR_DEFAULTS, ...params };
  const d = p.factors;
  const { nUsers, nItems, users, items } = data;
  const n = users.length;
  const R = toCsr(nUsers, nItems, users, items, data.values);
  const m = emptyModel(nUsers, nItems, d, 'implicit');
  const rand = rng(p.seed ?? 0);
  const normal = gaussian(rand);
  const ic = counts(nItems, items);
  initRows(m.P, d, counts(nUsers, users), p.initStd ?? 0.1, normal);
  initRows(m.Q, d, ic, p.initStd ?? 0.1, normal);
  // Negatives are drawn among items with training data.
  const candidates = Int32Array.from(Array.from(ic.keys()).filter((i) => ic[i] > 0));
  const P = m.P;
  const Q = m.Q;
  const bi = m.bi;
  const lr = p.lr;
  const reg = p.reg;
  const regB = p.regBias ?? p.reg;
  const has = (u: number, j: number) => {
    let lo = R.indptr[u];
    let hi = R.indptr[u + 1] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = R.indices[mid];
      if (c === j) return true;
      if (c < j) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  };
  for (let epoch = 1; epoch <= p.epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0;
    for (let s = 0; s < n; s++) {
      const k = Math.floor(rand() * n);
      const u = users[k];
      const i = items[k];
      const userItems = R.indptr[u + 1] - R.indptr[u];
      if (userItems >= candidates.length) continue;
      let j: number;
      do j = candidates[Math.floor(rand() * candidates.length)];
      while (has(u, j));
      const pu = u * d;
      const qi = i * d;
      const qj = j * d;
      let x = bi[i] - bi[j];
      for (let f = 0; f < d; f++) x += P[pu + f] * (Q[qi + f] - Q[qj + f]);
      // g = σ(−x) = 1 − σ(x)
      const g = x > 0 ? Math.exp(-x) / (1 + Math.exp(-x)) : 1 / (1 + Math.exp(x));
      lossSum += x > 0 ? Math.log1p(Math.exp(-x)) : -x + Math.log1p(Math.exp(x));
      bi[i] += lr * (g - regB * bi[i]);
      bi[j] += lr * (-g - regB * bi[j]);
      for (let f = 0; f < d; f++) {
        const puf = P[pu + f];
        const qif = Q[qi + f];
        const qjf = Q[qj + f];
        P[pu + f] = puf + lr * (g * (qif - qjf) - reg * puf);
        Q[qi + f] = qif + lr * (g * puf - reg * qif);
        Q[qj + f] = qjf + lr * (-g * puf - reg * qjf);
      }
    }
    const stop = onEpoch?.({ epoch, epochs: p.epochs, loss: lossSum / Math.max(1, n), lossName: 'bpr_loss', seconds: (performance.now() - t0) / 1000 }, () => m);
    if (stop === true) break;
  }
  return m;
}
