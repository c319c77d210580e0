// The evaluation protocols of the published anchors, as job plans that can share one worker pool:
//   kfold     — random k folds over rating rows (Surprise KFold(random_state=seed)), RMSE/MAE
//   predefined — MovieLens u1..u5 (or ua/ub) base/test files, RMSE/MAE
//   msr       — Microsoft Recommenders: per-item stratified 75/25 split (seed 42), top-k with seen
//               items removed, every test interaction relevant: nDCG/precision/recall/MAP
//   lightfm   — LightFM: ua.base / ua.test, train items excluded: precision@k and AUC
import path from 'node:path';
import { readInteractions, subset, type Interactions } from './data.js';
import type { EvalSpec, FitJob, FitJobResult } from './jobs.js';
import { runFitJobs } from './jobs.js';
import { inputOf, type TrainInput } from './model.js';
import { applySplit, kFold, readPredefinedSplit, stratifiedSplit, type PredefinedSplit } from './split.js';
import { ALGO_INFO, type Algo, type Params } from './trainers.js';

export interface InputOptions {
  /** How implicit trainers see explicit data: 'binary' (every interaction weighs 1, the default) or 'value' (the rating/weight). */
  implicit?: 'binary' | 'value';
  /** Implicit trainers: keep only interactions with a value ≥ this (e.g. 4 to train on liked movies). */
  minValue?: number;
}

/** The training input an algorithm needs from interactions: explicit ratings, or implicit weights. */
export function trainInputFor(algo: Algo, data: Interactions, opts: InputOptions = {}): TrainInput {
  if (ALGO_INFO[algo].kind === 'explicit') {
    if (!data.explicit) throw new Error(`--algo ${algo} learns ratings, but ${data.source} has no rating column (use wals or bpr for implicit events)`);
    return inputOf(data);
  }
  let d = data;
  if (opts.minValue !== undefined) {
    const keep = new Uint8Array(data.ratings.length);
    for (let k = 0; k < keep.length; k++) keep[k] = data.ratings[k] >= opts.minValue ? 1 : 0;
    d = subset(data, keep);
  }
  const values = opts.implicit === 'value' || (!data.explicit && opts.implicit !== 'binary') ? d.ratings : new Float32Array(d.ratings.length).fill(1);
  return inputOf(d, values);
}

export function ratingRangeOf(data: Interactions): [number, number] | undefined {
  if (!data.explicit || data.ratings.length === 0) return undefined;
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < data.ratings.length; k++) {
    const r = data.ratings[k];
    if (r < lo) lo = r;
    if (r > hi) hi = r;
  }
  return [lo, hi];
}

export interface ProtocolSummary {
  name: string;
  description: string;
  /** Mean over the plan's jobs of every metric. */
  metrics: Record<string, number>;
  /** Standard deviation over jobs (when there is more than one). */
  std: Record<string, number>;
  jobs: FitJobResult[];
  trainSeconds: number;
}

export interface ProtocolPlan {
  name: string;
  description: string;
  jobs: FitJob[];
}

export interface ModelChoice {
  algo: Algo;
  params: Params;
  input?: InputOptions;
}

function summarize(plan: ProtocolPlan, results: FitJobResult[]): ProtocolSummary {
  const keys = Object.keys(results[0]?.metrics ?? {});
  const metrics: Record<string, number> = {};
  const std: Record<string, number> = {};
  for (const k of keys) {
    const v = results.map((r) => r.metrics[k]);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    metrics[k] = mean;
    if (v.length > 1) std[k] = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
  }
  return { name: plan.name, description: plan.description, metrics, std, jobs: results, trainSeconds: results.reduce((a, r) => a + r.seconds, 0) };
}

/** Runs several plans on one worker pool and summarises each. */
export async function runPlans(plans: ProtocolPlan[], threads?: number, onDone?: (r: FitJobResult, done: number, total: number) => void): Promise<ProtocolSummary[]> {
  const all = plans.flatMap((p) => p.jobs);
  const results = await runFitJobs(all, threads, (r, done) => onDone?.(r, done, all.length));
  const out: ProtocolSummary[] = [];
  let at = 0;
  for (const p of plans) {
    out.push(summarize(p, results.slice(at, at + p.jobs.length)));
    at += p.jobs.length;
  }
  return out;
}

function job(id: string, m: ModelChoice, train: Interactions, evals: EvalSpec[]): FitJob {
  const input = trainInputFor(m.algo, train, m.input);
  const seen = input.users.length === train.users.length ? undefined : { users: train.users, items: train.items };
  return { id, algo: m.algo, params: m.params, train: input, seen, ratingRange: ratingRangeOf(train), evals };
}

/** Random k-fold over rows: Surprise's KFold(n_splits=k, random_state=seed, shuffle=True). */
export function kfoldPlan(data: Interactions, m: ModelChoice, k = 5, seed = 0): ProtocolPlan {
  const jobs = kFold(data.users.length, k, seed).map((f) => {
    const { train, test } = applySplit(data, f);
    return job(`${m.algo}:kfold${k}:${f.name}`, m, train, [{ kind: 'rating', test }]);
  });
  return { name: `kfold${k}`, description: `random ${k}-fold over rating rows (numpy RandomState(${seed}) shuffle = Surprise KFold(random_state=${seed})), RMSE/MAE averaged over folds`, jobs };
}

/** MovieLens predefined splits read from dir (u1..u5 by default). */
export async function predefinedPlan(dir: string, m: ModelChoice, names: PredefinedSplit[] = ['u1', 'u2', 'u3', 'u4', 'u5']): Promise<ProtocolPlan> {
  const jobs: FitJob[] = [];
  for (const name of names) {
    const { train, test } = await readPredefinedSplit(dir, name);
    jobs.push(job(`${m.algo}:${name}`, m, train, [{ kind: 'rating', test }]));
  }
  return { name: names.join('-'), description: `MovieLens predefined ${names.map((n) => `${n}.base/${n}.test`).join(', ')}, RMSE/MAE averaged`, jobs };
}

/**
 * Microsoft Recommenders' ranking protocol: python_stratified_split(ratio, filter_by="item", seed),
 * top-k per user with training items removed, every test interaction relevant. Explicit models are
 * also scored for RMSE on the same test set.
 */
export function msrPlan(data: Interactions, m: ModelChoice, k = 10, ratio = 0.75, seed = 42): ProtocolPlan {
  const { train, test } = applySplit(data, stratifiedSplit(data.items, ratio, seed, 'msr'));
  const evals: EvalSpec[] = [{ kind: 'ranking', test, k }];
  if (ALGO_INFO[m.algo].kind === 'explicit') evals.push({ kind: 'rating', test });
  return {
    name: 'msr',
    description: `Microsoft Recommenders split: per-item stratified ${ratio}/${(1 - ratio).toFixed(2)} (numpy seed ${seed}); top-${k} with seen items removed; all test interactions relevant; nDCG (ln discount), precision, recall, MAP (÷#relevant)`,
    jobs: [job(`${m.algo}:msr`, m, train, evals)],
  };
}

/** LightFM's MovieLens example: train ua.base, test ua.test (all ratings positive), train items excluded. */
export async function lightfmPlan(dir: string, m: ModelChoice, k = 10): Promise<ProtocolPlan> {
  const { train, test } = await readPredefinedSplit(dir, 'ua');
  return {
    name: 'lightfm-ua',
    description: `LightFM protocol: ua.base → ua.test, every rating a positive, train items excluded; precision@${k} and AUC per user, averaged`,
    jobs: [job(`${m.algo}:ua`, m, train, [{ kind: 'lightfm', test, k }])],
  };
}

/** ML-100k's u.data inside a MovieLens directory. */
export async function readMl100k(dir: string): Promise<Interactions> {
  return readInteractions(path.join(dir, 'u.data'), { format: 'movielens' });
}
