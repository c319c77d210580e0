// Small dense linear algebra on row-major Float64Array scratch matrices (no allocation per call).

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

/** Solves A x = b for SPD A (overwritten by its factor); b becomes x. Adds jitter if A is not quite PD. */
export function spdSolve(A: Float64Array, D: number, b: Float64Array): void {
  if (!cholesky(A, D)) throw new Error('matrix is not positive definite (increase regularization)');
  forwardSolve(A, D, b);
  backSolve(A, D, b);
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
