import { describe, expect, it } from 'vitest';
import { aucOne, mae, rankingMetrics, rmse } from '../../src/train/metrics.js';

const ln = Math.log;

describe('rating metrics', () => {
  it('rmse and mae by hand', () => {
    // errors 1, -2, 0, 1 → squares 1, 4, 0, 1 → mean 1.5
    expect(rmse([4, 1, 3, 5], [3, 3, 3, 4])).toBeCloseTo(Math.sqrt(1.5), 12);
    expect(mae([4, 1, 3, 5], [3, 3, 3, 4])).toBeCloseTo(1, 12);
    expect(() => rmse([1], [1, 2])).toThrow(/1 predictions for 2/);
  });
});

describe('ranking metrics (Microsoft Recommenders definitions)', () => {
  // user 0: top-3 list [10, 11, 12], relevant {10, 12, 20} → hits at ranks 1 and 3
  // user 1: top-3 list [30, 31, 32], relevant {33}        → no hit
  // user 2: no predictions (null), relevant {40}          → counts only for nDCG (as 0)
  // user 3: list but no relevant items                    → not a test user, ignored
  const lists = [Int32Array.of(10, 11, 12), Int32Array.of(30, 31, 32), null, Int32Array.of(1, 2, 3)];
  const rel = [new Set([10, 12, 20]), new Set([33]), new Set([40]), null];
  const k = 3;
  const r = rankingMetrics(lists, rel, k);

  it('precision@k divides hits by k and averages over common users', () => {
    // user 0: 2/3, user 1: 0 → mean over 2 users
    expect(r.users).toBe(2);
    expect(r.precision).toBeCloseTo((2 / 3 + 0) / 2, 12);
  });

  it('recall@k divides hits by the number of relevant items', () => {
    expect(r.recall).toBeCloseTo((2 / 3 + 0) / 2, 12);
  });

  it('nDCG@k: binary gain, 1/ln(1+rank), ideal over min(#relevant, k), averaged over every test user', () => {
    const dcg0 = 1 / ln(2) + 1 / ln(4);
    const idcg0 = 1 / ln(2) + 1 / ln(3) + 1 / ln(4);
    expect(r.ndcgUsers).toBe(3);
    expect(r.ndcg).toBeCloseTo(dcg0 / idcg0 / 3, 12);
  });

  it('MAP divides the summed precisions at hits by #relevant; map@k by min(#relevant, k)', () => {
    // user 0: precision at hit ranks: 1/1 and 2/3 → sum 5/3; #relevant 3
    expect(r.map).toBeCloseTo((5 / 3 / 3 + 0) / 2, 12);
    expect(r.mapAtK).toBeCloseTo((5 / 3 / Math.min(3, k) + 0) / 2, 12);
  });

  it('a list shorter than k still divides precision by k', () => {
    const s = rankingMetrics([Int32Array.of(5)], [new Set([5])], 10);
    expect(s.precision).toBeCloseTo(0.1, 12);
    expect(s.recall).toBe(1);
    expect(s.ndcg).toBeCloseTo(1, 12);
    expect(s.map).toBe(1);
  });

  it('only the first k entries of a list count', () => {
    const s = rankingMetrics([Int32Array.of(1, 2, 3, 4)], [new Set([4])], 2);
    expect(s.precision).toBe(0);
    expect(s.ndcg).toBe(0);
  });
});

describe('LightFM AUC', () => {
  it('counts (positive, negative) pairs, ties counted as correct', () => {
    // positives 0.9 and 0.4; negatives 0.5, 0.4, 0.1 → 0.9 beats 3, 0.4 beats 0.1 and ties 0.4 → (3 + 2) / 6
    expect(aucOne([0.9, 0.4], [0.5, 0.4, 0.1])).toBeCloseTo(5 / 6, 12);
    expect(aucOne([], [1])).toBe(0.5);
    expect(aucOne([1], [])).toBe(1);
  });
});
