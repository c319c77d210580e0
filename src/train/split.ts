// Train/test splits with the exact protocols of the published anchors:
// - k-fold over rating rows as Surprise's KFold(n_splits, random_state, shuffle=True) draws them;
// - per-item (or per-user) stratified split as Microsoft Recommenders' python_stratified_split;
// - MovieLens' predefined u1..u5 / ua / ub base/test files.
import path from 'node:path';
import { IdMap, readInteractions, subset, type Interactions, type ReadOptions } from './data.js';
import { NumpyRandomState } from './mt19937.js';

export interface Split {
  name: string;
  /** Row indices into the source interactions. */
  train: Int32Array;
  test: Int32Array;
}

export interface TrainTest {
  name: string;
  train: Interactions;
  test: Interactions;
}

/**
 * k random folds over rows: the indices 0..n-1 are shuffled with numpy's RandomState(seed) and cut
 * into k contiguous blocks (the first n % k blocks one row longer). Fold f tests on block f and
 * trains on the rest — Surprise's KFold, so seed 0 gives its benchmark folds on ML-100k's u.data.
 */
export function kFold(n: number, k = 5, seed = 0): Split[] {
  if (k < 2 || k > n) throw new Error(`k-fold needs 2 ≤ k ≤ ${n}, got ${k}`);
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  new NumpyRandomState(seed).shuffle(idx);
  const out: Split[] = [];
  let stop = 0;
  for (let f = 0; f < k; f++) {
    const start = stop;
    stop += Math.floor(n / k) + (f < n % k ? 1 : 0);
    const test = idx.slice(start, stop);
    const train = new Int32Array(n - test.length);
    train.set(idx.subarray(0, start), 0);
    train.set(idx.subarray(stop), start);
    out.push({ name: `fold${f + 1}`, train, test });
  }
  return out;
}

/** Python's round(): half to even, as numpy/pandas round a Series. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Per-group stratified random split (Microsoft Recommenders python_stratified_split, is_random):
 * every row draws u ~ numpy RandomState(seed).rand(n) in file order; rows are ordered by
 * (group, u); within a group of c rows the first round(ratio·c) go to train, the rest to test.
 * `groups` is the item (filter_by="item") or user (filter_by="user") index of each row.
 */
export function stratifiedSplit(groups: Int32Array, ratio = 0.75, seed = 42, name = 'stratified'): Split {
  if (!(ratio > 0 && ratio < 1)) throw new Error(`split ratio must be in (0, 1), got ${ratio}`);
  const n = groups.length;
  const rs = new NumpyRandomState(seed);
  const u = new Float64Array(n);
  for (let r = 0; r < n; r++) u[r] = rs.random();
  const order = Int32Array.from({ length: n }, (_, r) => r);
  order.sort((a, b) => groups[a] - groups[b] || u[a] - u[b] || a - b);
  const isTrain = new Uint8Array(n);
  for (let s = 0; s < n; ) {
    let e = s + 1;
    while (e < n && groups[order[e]] === groups[order[s]]) e++;
    const cut = roundHalfEven(ratio * (e - s));
    for (let j = s; j < s + cut; j++) isTrain[order[j]] = 1;
    s = e;
  }
  return maskSplit(isTrain, name);
}

/** A random holdout of `testFraction` of the rows (numpy RandomState shuffle), for validation. */
export function holdout(n: number, testFraction: number, seed: number, name = 'holdout'): Split {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  new NumpyRandomState(seed).shuffle(idx);
  const nTest = Math.round(n * testFraction);
  return { name, test: idx.slice(0, nTest).sort(), train: idx.slice(nTest).sort() };
}

function maskSplit(isTrain: Uint8Array, name: string): Split {
  let nTrain = 0;
  for (let r = 0; r < isTrain.length; r++) nTrain += isTrain[r];
  const train = new Int32Array(nTrain);
  const test = new Int32Array(isTrain.length - nTrain);
  let a = 0;
  let b = 0;
  for (let r = 0; r < isTrain.length; r++) {
    if (isTrain[r]) train[a++] = r;
    else test[b++] = r;
  }
  return { name, train, test };
}

export function applySplit(data: Interactions, split: Split): TrainTest {
  return { name: split.name, train: subset(data, split.train), test: subset(data, split.test) };
}

/** MovieLens 100K's predefined splits: u1..u5 (five disjoint 20 % test blocks) and ua/ub (10 test ratings per user). */
export type PredefinedSplit = 'u1' | 'u2' | 'u3' | 'u4' | 'u5' | 'ua' | 'ub';

/** Reads `<dir>/<name>.base` and `<name>.test` with shared id maps (indices agree between them). */
export async function readPredefinedSplit(dir: string, name: PredefinedSplit, opts: ReadOptions = {}): Promise<TrainTest> {
  const userIds = opts.userIds ?? new IdMap();
  const itemIds = opts.itemIds ?? new IdMap();
  const train = await readInteractions(path.join(dir, `${name}.base`), { ...opts, format: 'movielens', userIds, itemIds });
  const test = await readInteractions(path.join(dir, `${name}.test`), { ...opts, format: 'movielens', userIds, itemIds });
  return { name, train, test };
}

/**
 * A split described on the command line:
 *   random:<test fraction>[:seed]          e.g. random:0.1:1
 *   stratified-item:<train ratio>[:seed]   e.g. stratified-item:0.75:42 (the Microsoft Recommenders split)
 *   stratified-user:<train ratio>[:seed]
 *   kfold:<k>[:seed[:fold]]                e.g. kfold:5:0 (all folds) or kfold:5:0:1 (fold 1 only)
 */
export type SplitSpec =
  | { kind: 'random'; test: number; seed: number }
  | { kind: 'stratified-item' | 'stratified-user'; ratio: number; seed: number }
  | { kind: 'kfold'; k: number; seed: number; fold?: number };

export function parseSplitSpec(text: string): SplitSpec {
  const [kind, a, b, c] = text.split(':');
  const num = (s: string | undefined, what: string, dflt?: number): number => {
    if (s === undefined || s === '') {
      if (dflt === undefined) throw new Error(`split "${text}": missing ${what}`);
      return dflt;
    }
    const v = Number(s);
    if (!Number.isFinite(v)) throw new Error(`split "${text}": ${what} "${s}" is not a number`);
    return v;
  };
  switch (kind) {
    case 'random': {
      const test = num(a, 'test fraction');
      if (!(test > 0 && test < 1)) throw new Error(`split "${text}": test fraction must be in (0, 1)`);
      return { kind, test, seed: num(b, 'seed', 0) };
    }
    case 'stratified-item':
    case 'stratified-user': {
      const ratio = num(a, 'train ratio');
      if (!(ratio > 0 && ratio < 1)) throw new Error(`split "${text}": train ratio must be in (0, 1)`);
      return { kind, ratio, seed: num(b, 'seed', 42) };
    }
    case 'kfold': {
      const k = num(a, 'k');
      if (!Number.isInteger(k) || k < 2) throw new Error(`split "${text}": k must be an integer ≥ 2`);
      const fold = c === undefined ? undefined : num(c, 'fold');
      if (fold !== undefined && !(Number.isInteger(fold) && fold >= 1 && fold <= k)) throw new Error(`split "${text}": fold must be 1..${k}`);
      return { kind, k, seed: num(b, 'seed', 0), fold };
    }
    default:
      throw new Error(`unknown split "${text}" (use random:<test>:<seed>, stratified-item:<ratio>:<seed>, stratified-user:<ratio>:<seed> or kfold:<k>:<seed>[:<fold>])`);
  }
}

export function formatSplitSpec(s: SplitSpec): string {
  switch (s.kind) {
    case 'random':
      return `random:${s.test}:${s.seed}`;
    case 'kfold':
      return `kfold:${s.k}:${s.seed}${s.fold ? `:${s.fold}` : ''}`;
    default:
      return `${s.kind}:${s.ratio}:${s.seed}`;
  }
}

/** The splits a spec describes over these interactions (k of them for an unrestricted kfold). */
export function makeSplits(data: Interactions, spec: SplitSpec): Split[] {
  switch (spec.kind) {
    case 'random':
      return [holdout(data.users.length, spec.test, spec.seed, formatSplitSpec(spec))];
    case 'stratified-item':
      return [stratifiedSplit(data.items, spec.ratio, spec.seed, formatSplitSpec(spec))];
    case 'stratified-user':
      return [stratifiedSplit(data.users, spec.ratio, spec.seed, formatSplitSpec(spec))];
    case 'kfold': {
      const folds = kFold(data.users.length, spec.k, spec.seed);
      return spec.fold ? [folds[spec.fold - 1]] : folds;
    }
  }
}
