// Compressed sparse rows over interaction triples: the layout every trainer iterates.

export interface Csr {
  nRows: number;
  nCols: number;
  /** Row r spans [indptr[r], indptr[r+1]). */
  indptr: Int32Array;
  /** Column index of each entry, ascending within a row. */
  indices: Int32Array;
  data: Float32Array;
}

/** Builds a CSR matrix from COO triples (duplicates kept as separate entries). */
export function toCsr(nRows: number, nCols: number, rows: Int32Array, cols: Int32Array, vals: Float32Array): Csr {
  const nnz = rows.length;
  const indptr = new Int32Array(nRows + 1);
  for (let k = 0; k < nnz; k++) indptr[rows[k] + 1]++;
  for (let r = 0; r < nRows; r++) indptr[r + 1] += indptr[r];
  const fill = indptr.slice(0, nRows);
  const indices = new Int32Array(nnz);
  const data = new Float32Array(nnz);
  for (let k = 0; k < nnz; k++) {
    const p = fill[rows[k]]++;
    indices[p] = cols[k];
    data[p] = vals[k];
  }
  // Sort each row by column (insertion sort: rows are short and often nearly sorted).
  for (let r = 0; r < nRows; r++) {
    for (let p = indptr[r] + 1; p < indptr[r + 1]; p++) {
      const c = indices[p];
      const v = data[p];
      let q = p - 1;
      while (q >= indptr[r] && indices[q] > c) {
        indices[q + 1] = indices[q];
        data[q + 1] = data[q];
        q--;
      }
      indices[q + 1] = c;
      data[q + 1] = v;
    }
  }
  return { nRows, nCols, indptr, indices, data };
}

export function transpose(m: Csr): Csr {
  const nnz = m.indices.length;
  const rows = new Int32Array(nnz);
  for (let r = 0; r < m.nRows; r++) for (let p = m.indptr[r]; p < m.indptr[r + 1]; p++) rows[p] = r;
  return toCsr(m.nCols, m.nRows, m.indices, rows, m.data);
}

/** Column indices of row r (a view, no copy). */
export function rowIndices(m: Csr, r: number): Int32Array {
  return m.indices.subarray(m.indptr[r], m.indptr[r + 1]);
}

export function rowCounts(m: Csr): Int32Array {
  const c = new Int32Array(m.nRows);
  for (let r = 0; r < m.nRows; r++) c[r] = m.indptr[r + 1] - m.indptr[r];
  return c;
}
