// The in-memory factor model every trainer produces, in dense index space, and its conversion to the
// exporter's FactorModel (dropping users and items that had no training interactions).
import type { FactorModel } from '../model-format/export-onnx.js';
import { biasedDot } from '../util/factor-score.js';
import type { Interactions } from './data.js';

export interface MfModel {
  nUsers: number;
  nItems: number;
  factors: number;
  /** nUsers × factors, row-major. */
  P: Float32Array;
  /** nItems × factors, row-major. */
  Q: Float32Array;
  bu: Float32Array;
  bi: Float32Array;
  mu: number;
  kind: 'explicit' | 'implicit';
  /** Predictions are clamped into this range (explicit ratings). */
  ratingRange?: [number, number];
}

/** Training data in index space: one entry per (user, item) triple. */
export interface TrainInput {
  nUsers: number;
  nItems: number;
  users: Int32Array;
  items: Int32Array;
  values: Float32Array;
}

export function inputOf(data: Interactions, values?: Float32Array): TrainInput {
  return { nUsers: data.userIds.size, nItems: data.itemIds.size, users: data.users, items: data.items, values: values ?? data.ratings };
}

export function emptyModel(nUsers: number, nItems: number, factors: number, kind: MfModel['kind']): MfModel {
  return {
    nUsers,
    nItems,
    factors,
    P: new Float32Array(nUsers * factors),
    Q: new Float32Array(nItems * factors),
    bu: new Float32Array(nUsers),
    bi: new Float32Array(nItems),
    mu: 0,
    kind,
  };
}

export function cloneModel(m: MfModel): MfModel {
  return { ...m, P: m.P.slice(), Q: m.Q.slice(), bu: m.bu.slice(), bi: m.bi.slice() };
}

/** Raw score μ + b_u + b_i + p_u·q_i; an index outside the model (or -1) contributes nothing. */
export function predictRaw(m: MfModel, u: number, i: number): number {
  const d = m.factors;
  const uk = u >= 0 && u < m.nUsers;
  const ik = i >= 0 && i < m.nItems;
  const bias = m.mu + (uk ? m.bu[u] : 0) + (ik ? m.bi[i] : 0);
  return uk && ik ? biasedDot(bias, m.P, u * d, m.Q, i * d, d) : bias;
}

export function predict(m: MfModel, u: number, i: number): number {
  const s = predictRaw(m, u, i);
  const rr = m.ratingRange;
  return rr ? Math.min(rr[1], Math.max(rr[0], s)) : s;
}

/** Scores of every item for user u into out (length nItems): b_i + p_u·q_i (user terms are constant for ranking). */
export function scoreItems(m: MfModel, u: number, out: Float32Array): void {
  const d = m.factors;
  const P = m.P;
  const Q = m.Q;
  const bi = m.bi;
  const pu = u * d;
  const d4 = d - (d % 4);
  for (let i = 0, qi = 0; i < m.nItems; i++, qi += d) {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let f = 0;
    for (; f < d4; f += 4) {
      s0 += P[pu + f] * Q[qi + f];
      s1 += P[pu + f + 1] * Q[qi + f + 1];
      s2 += P[pu + f + 2] * Q[qi + f + 2];
      s3 += P[pu + f + 3] * Q[qi + f + 3];
    }
    for (; f < d; f++) s0 += P[pu + f] * Q[qi + f];
    out[i] = bi[i] + s0 + s1 + s2 + s3;
  }
}

/** Zeroes factors and biases of rows without training data, so they predict like unknown ids. */
export function zeroUntrained(m: MfModel, userCounts: Int32Array, itemCounts: Int32Array): void {
  const d = m.factors;
  for (let u = 0; u < m.nUsers; u++) if (userCounts[u] === 0) (m.P.fill(0, u * d, (u + 1) * d), (m.bu[u] = 0));
  for (let i = 0; i < m.nItems; i++) if (itemCounts[i] === 0) (m.Q.fill(0, i * d, (i + 1) * d), (m.bi[i] = 0));
}

export function counts(n: number, idx: Int32Array): Int32Array {
  const c = new Int32Array(n);
  for (let k = 0; k < idx.length; k++) c[idx[k]]++;
  return c;
}

export interface Compacted {
  model: FactorModel;
  /** Dense index of each kept user / item in the original index space. */
  userRows: Int32Array;
  itemRows: Int32Array;
}

/**
 * The exporter's FactorModel holding only users and items seen in training (ids from the maps).
 * Unknown users get the server's cold-start answer instead of a zero vector.
 */
export function toFactorModel(m: MfModel, userIds: string[], itemIds: string[], userCounts: Int32Array, itemCounts: Int32Array): Compacted {
  const d = m.factors;
  const userRows = Int32Array.from(keep(userCounts));
  const itemRows = Int32Array.from(keep(itemCounts));
  const P = new Float32Array(userRows.length * d);
  const Q = new Float32Array(itemRows.length * d);
  const bu = new Float32Array(userRows.length);
  const bi = new Float32Array(itemRows.length);
  userRows.forEach((u, j) => {
    P.set(m.P.subarray(u * d, (u + 1) * d), j * d);
    bu[j] = m.bu[u];
  });
  itemRows.forEach((i, j) => {
    Q.set(m.Q.subarray(i * d, (i + 1) * d), j * d);
    bi[j] = m.bi[i];
  });
  const model: FactorModel = {
    userIds: Array.from(userRows, (u) => userIds[u]),
    itemIds: Array.from(itemRows, (i) => itemIds[i]),
    factors: d,
    userFactors: P,
    itemFactors: Q,
    userBias: bu,
    itemBias: bi,
    globalBias: m.mu,
    kind: m.kind,
  };
  if (m.ratingRange) model.ratingRange = m.ratingRange;
  return { model, userRows, itemRows };
}

function keep(c: Int32Array): number[] {
  const out: number[] = [];
  for (let j = 0; j < c.length; j++) if (c[j] > 0) out.push(j);
  return out;
}

/** What a trainer reports after each epoch. `loss` is the trainer's own objective (e.g. train RMSE). */
export interface EpochReport {
  epoch: number;
  epochs: number;
  loss: number;
  lossName: string;
  seconds: number;
}

/**
 * Called after every epoch; `model()` returns the model as it stands (built on demand: for the
 * Bayesian sampler it is the average of the samples so far). Returning true stops training.
 */
export type EpochHook = (report: EpochReport, model: () => MfModel) => boolean | void;
