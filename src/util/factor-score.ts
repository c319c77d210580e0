// The score of a biased matrix-factorisation model, μ + b_u + b_i + p_u·q_i, written once for the trainers,
// the exporter's check, retraining and fold-in. Unclamped, as the exported ONNX graph computes it.

/** bias + Σ_k p[pAt + k]·q[qAt + k] over d factors, summed in that order (the bias first). */
export function biasedDot(bias: number, p: Float32Array, pAt: number, q: Float32Array, qAt: number, d: number): number {
  let s = bias;
  for (let k = 0; k < d; k++) s += p[pAt + k] * q[qAt + k];
  return s;
}

/** Factor tables in the artifact's and exporter's layout (row-major, `factors` columns); absent biases are 0. */
export interface FactorTables {
  factors: number;
  /** n_users × factors */
  userFactors: Float32Array;
  /** n_items × factors */
  itemFactors: Float32Array;
  userBias?: Float32Array;
  itemBias?: Float32Array;
  globalBias?: number;
}

/** μ + b_u + b_i + p_u·q_i of user row u and item row i. */
export function factorScore(m: FactorTables, u: number, i: number): number {
  const d = m.factors;
  return biasedDot((m.globalBias ?? 0) + (m.userBias?.[u] ?? 0) + (m.itemBias?.[i] ?? 0), m.userFactors, u * d, m.itemFactors, i * d, d);
}
