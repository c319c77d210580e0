import { describe, expect, it } from 'vitest';
import { selectTopK } from '../../src/model/topk.js';
import { rng } from '../../src/util/random.js';

/** The obvious, slow answer: sort everything. */
function reference(scores: Float32Array, k: number, exclude: Set<number>, allow: Uint8Array | null) {
  return Array.from(scores.keys())
    .filter((i) => !exclude.has(i) && (allow === null || allow[i] !== 0) && !Number.isNaN(scores[i]))
    .sort((a, b) => scores[b] - scores[a] || a - b)
    .slice(0, k);
}

describe('selectTopK', () => {
  it('matches a full sort on random inputs with exclusions, masks and ties', () => {
    const rand = rng(1);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rand() * 300);
      // Rounded scores make ties common; ties break by lower index.
      const scores = Float32Array.from({ length: n }, () => Math.round(rand() * 20) / 4);
      const k = 1 + Math.floor(rand() * (n + 5));
      const exclude = new Set(Array.from({ length: Math.floor(rand() * n) }, () => Math.floor(rand() * n)));
      const allow = rand() < 0.5 ? Uint8Array.from({ length: n }, () => (rand() < 0.7 ? 1 : 0)) : null;
      const got = selectTopK(scores, 0, n, k, Int32Array.from([...exclude].sort((a, b) => a - b)), allow);
      expect(Array.from(got.items)).toEqual(reference(scores, k, exclude, allow));
      expect(Array.from(got.scores)).toEqual(Array.from(got.items, (i) => scores[i]));
    }
  });

  it('reads one row of a batch by offset and never returns NaN', () => {
    const scores = Float32Array.from([9, 9, 9, 1, NaN, 3, 2]);
    const r = selectTopK(scores, 3, 4, 10, null, null);
    expect(Array.from(r.items)).toEqual([2, 3, 0]);
    expect(selectTopK(scores, 0, 3, 0, null, null).items.length).toBe(0);
  });
});
