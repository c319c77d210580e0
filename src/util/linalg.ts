// Small dense linear algebra on row-major Float64Array matrices, shared by the trainers (in place, on scratch
// buffers: no allocation per call) and by serving's fold-in (solveSpd, which copies).

/** In-place Cholesky A = L Lᵀ of a symmetric positive-definite D×D matrix (lower triangle used and overwritten). */
export function cholesky(A: Float64Array, D: number): boolean {
  for (let j = 0; j < D; j++) {
    const jj = j * D;
    let s = A[jj + j];
    for (let k = 0; k < j; k++) s -= A[jj + k] * A[jj + k];
    if (!(s > 0)) return false;
    const ljj = Math.sqrt(s);
    A[jj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < D; i++) {
      const ii = i * D;
      let t = A[ii + j];
      for (let k = 0; k < j; k++) t -= A[ii + k] * A[jj + k];
      A[ii + j] = t * inv;
    }
  }
  return true;
}

/** Solves L y = b in place (forward substitution). */
export function forwardSolve(L: Float64Array, D: number, b: Float64Array): void {
  for (let i = 0; i < D; i++) {
    const ii = i * D;
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[ii + k] * b[k];
    b[i] = s / L[ii + i];
  }
}

/** Solves Lᵀ x = y in place (back substitution). */
export function backSolve(L: Float64Array, D: number, y: Float64Array): void {
  for (let i = D - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < D; k++) s -= L[k * D + i] * y[k];
    y[i] = s / L[i * D + i];
  }
}

/**
 * Solves A x = b for symmetric positive-definite A (full, row-major) by Cholesky; A and b are not modified.
 * `what` names the system in the error, so a caller's message says which regularization to raise.
 */
export function solveSpd(A: Float64Array, b: Float64Array, D: number, what = 'the normal matrix'): Float64Array {
  const L = A.slice();
  if (!cholesky(L, D)) throw new Error(`${what} is not positive definite (regularization too small?)`);
  const x = b.slice();
  forwardSolve(L, D, x);
  backSolve(L, D, x);
  return x;
}

/** Copies the lower triangle into the upper one. */
export function symmetrize(A: Float64Array, D: number): void {
  for (let i = 0; i < D; i++) for (let j = 0; j < i; j++) A[j * D + i] = A[i * D + j];
}

/** G = Xᵀ X (D×D, full) over the first `rows` rows of row-major X with D columns. */
export function gram(X: Float32Array, rows: number, D: number, G: Float64Array): void {
  G.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    for (let a = 0; a < D; a++) {
      const xa = X[o + a];
      if (xa === 0) continue;
      const ga = a * D;
      for (let b = 0; b <= a; b++) G[ga + b] += xa * X[o + b];
    }
  }
  symmetrize(G, D);
}
