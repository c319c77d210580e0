// Partial selection of the k best scores: a size-k min-heap, O(n log k), never sorting the catalog.
import type { Ranked } from './scorer.js';

/**
 * Best k entries of scores[offset .. offset+n), skipping excluded indices (sorted ascending) and
 * those the allow mask zeroes. NaN scores are never returned.
 */
export function selectTopK(
  scores: Float32Array,
  offset: number,
  n: number,
  k: number,
  exclude: Int32Array | null,
  allow: Uint8Array | null,
): Ranked {
  const cap = Math.max(0, Math.min(k, n));
  const heapItems = new Int32Array(cap);
  const heapScores = new Float32Array(cap);
  let size = 0;
  let ex = 0;
  const exLen = exclude === null ? 0 : exclude.length;
  // Hot path: once the heap is full, most items cannot beat its root, so they are rejected
  // by one comparison with a local copy of the root's score, before the exclusion and mask checks.
  // Items arrive in ascending index order, so an item equal to the root never displaces it (the root
  // has the lower index), and the comparison also drops NaN.
  let worst = -Infinity;
  const end = offset + n;
  for (let at = offset; at < end; at++) {
    const s = scores[at];
    if (size === cap) {
      if (!(s > worst)) continue;
    } else if (!(s === s)) continue; // NaN
    const i = at - offset;
    if (exclude !== null) {
      // ex only moves forward, so the items skipped above cost nothing here.
      while (ex < exLen && exclude[ex] < i) ex++;
      if (ex < exLen && exclude[ex] === i) continue;
    }
    if (allow !== null && allow[i] === 0) continue;
    // The root is the worst kept entry: lowest score, and among equal scores the highest index,
    // so ties resolve to the lower index whatever order they arrive in.
    if (size < cap) {
      // sift up
      let c = size++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (heapScores[p] < s || (heapScores[p] === s && heapItems[p] > i)) break;
        heapScores[c] = heapScores[p];
        heapItems[c] = heapItems[p];
        c = p;
      }
      heapScores[c] = s;
      heapItems[c] = i;
    } else if (cap > 0 && (s > heapScores[0] || (s === heapScores[0] && i < heapItems[0]))) {
      // replace the minimum, sift down
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= size) break;
        const r = l + 1;
        const m = r < size && (heapScores[r] < heapScores[l] || (heapScores[r] === heapScores[l] && heapItems[r] > heapItems[l])) ? r : l;
        if (heapScores[m] > s || (heapScores[m] === s && heapItems[m] < i)) break;
        heapScores[c] = heapScores[m];
        heapItems[c] = heapItems[m];
        c = m;
      }
      heapScores[c] = s;
      heapItems[c] = i;
    }
    if (size === cap) worst = heapScores[0];
  }
  // Order best first; ties by lower index so results are deterministic.
  const order = Array.from({ length: size }, (_, j) => j).sort(
    (a, b) => heapScores[b] - heapScores[a] || heapItems[a] - heapItems[b],
  );
  const items = new Int32Array(size);
  const out = new Float32Array(size);
  order.forEach((j, r) => {
    items[r] = heapItems[j];
    out[r] = heapScores[j];
  });
  return { items, scores: out };
}
