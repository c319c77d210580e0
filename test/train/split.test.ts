import { describe, expect, it } from 'vitest';
import { NumpyRandomState } from '../../src/train/mt19937.js';
import { holdout, kFold, makeSplits, parseSplitSpec, roundHalfEven, stratifiedSplit } from '../../src/train/split.js';
import { plantedRatings } from './helpers.js';

describe('numpy RandomState reproduction', () => {
  it('matches np.random.seed(42); np.random.rand(3)', () => {
    const r = new NumpyRandomState(42);
    expect(r.random()).toBe(0.3745401188473625);
    expect(r.random()).toBe(0.9507143064099162);
    expect(r.random()).toBe(0.7319939418114051);
  });

  it('matches RandomState(0).shuffle(np.arange(10))', () => {
    const a = Int32Array.from({ length: 10 }, (_, i) => i);
    new NumpyRandomState(0).shuffle(a);
    expect(Array.from(a)).toEqual([2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
  });
});

describe('k-fold (Surprise KFold)', () => {
  it('partitions the rows into k test blocks, the first n % k one longer', () => {
    const folds = kFold(103, 5, 0);
    expect(folds.map((f) => f.test.length)).toEqual([21, 21, 21, 20, 20]);
    const all = folds.flatMap((f) => Array.from(f.test)).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 103 }, (_, i) => i));
    for (const f of folds) {
      expect(f.train.length + f.test.length).toBe(103);
      const t = new Set(f.test);
      expect(Array.from(f.train).some((r) => t.has(r))).toBe(false);
    }
  });

  it('draws the test blocks from the numpy shuffle', () => {
    // RandomState(0).shuffle(arange(10)) = [2 8 4 9 1 6 7 3 0 5] → fold 1 tests rows 2 and 8
    expect(Array.from(kFold(10, 5, 0)[0].test)).toEqual([2, 8]);
  });
});

describe('stratified split (Microsoft Recommenders python_stratified_split)', () => {
  it('rounds half to even like numpy', () => {
    expect([0.5, 1.5, 2.5, 4.5, 7.5, 0.75, 2.25].map(roundHalfEven)).toEqual([0, 2, 2, 4, 8, 1, 2]);
  });

  it('puts round(0.75·count) of every item into train', () => {
    const { data } = plantedRatings({ users: 60, items: 40, density: 0.2 });
    const s = stratifiedSplit(data.items, 0.75, 42);
    const total = new Map<number, number>();
    const inTrain = new Map<number, number>();
    for (let r = 0; r < data.items.length; r++) total.set(data.items[r], (total.get(data.items[r]) ?? 0) + 1);
    for (const r of s.train) inTrain.set(data.items[r], (inTrain.get(data.items[r]) ?? 0) + 1);
    for (const [item, c] of total) expect(inTrain.get(item) ?? 0).toBe(roundHalfEven(0.75 * c));
    expect(s.train.length + s.test.length).toBe(data.items.length);
  });

  it('orders rows within a group by their numpy draw', () => {
    // one group of 4 rows: draws 0.3745, 0.9507, 0.7320, 0.5987 → the 3 smallest (rows 0, 3, 2) train
    const s = stratifiedSplit(Int32Array.of(7, 7, 7, 7), 0.75, 42);
    expect(Array.from(s.train)).toEqual([0, 2, 3]);
    expect(Array.from(s.test)).toEqual([1]);
  });
});

describe('split specs', () => {
  it('parses and checks specs', () => {
    expect(parseSplitSpec('random:0.1:3')).toEqual({ kind: 'random', test: 0.1, seed: 3 });
    expect(parseSplitSpec('stratified-item:0.75')).toEqual({ kind: 'stratified-item', ratio: 0.75, seed: 42 });
    expect(parseSplitSpec('kfold:5:0:2')).toEqual({ kind: 'kfold', k: 5, seed: 0, fold: 2 });
    expect(() => parseSplitSpec('random:2')).toThrow(/test fraction/);
    expect(() => parseSplitSpec('kfold:5:0:9')).toThrow(/fold must be 1..5/);
    expect(() => parseSplitSpec('bogus:1')).toThrow(/unknown split/);
  });

  it('holdout and makeSplits', () => {
    const h = holdout(100, 0.1, 1);
    expect(h.test.length).toBe(10);
    const { data } = plantedRatings({ users: 20, items: 20 });
    expect(makeSplits(data, { kind: 'kfold', k: 4, seed: 0 }).length).toBe(4);
    expect(makeSplits(data, { kind: 'kfold', k: 4, seed: 0, fold: 2 })[0].name).toBe('fold2');
  });
});
