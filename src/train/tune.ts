// Hyperparameter search: seeded random search over a space per algorithm, each trial trained on a
// training part and early-stopped on a validation part of the tuning data; trials run on the worker
// pool and every finished trial is appended to a JSON-lines run log. The best trial's parameters
// (with its best epoch count) can be merged into a best-params file that later runs read.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Interactions } from './data.js';
import { runFitJobs, type EvalSpec, type FitJob, type FitJobResult } from './jobs.js';
import { ratingRangeOf, trainInputFor, type InputOptions } from './protocols.js';
import { rng } from '../util/random.js';
import { applySplit, formatSplitSpec, makeSplits, type SplitSpec } from './split.js';
import { ALGO_INFO, validateParams, type Algo, type ParamValue, type Params } from './trainers.js';

export type SpaceEntry =
  | { type: 'int' | 'float'; min: number; max: number; log?: boolean }
  | { type: 'choice'; values: ParamValue[] };
export type SearchSpace = Record<string, SpaceEntry>;

/** Default search spaces: ranges that cover the good regions on MovieLens-sized data. */
export const DEFAULT_SPACES: Record<Algo, SearchSpace> = {
  sgd: {
    factors: { type: 'choice', values: [20, 50, 100, 200] },
    lr: { type: 'float', min: 0.002, max: 0.02, log: true },
    reg: { type: 'float', min: 0.01, max: 0.2, log: true },
  },
  als: {
    factors: { type: 'choice', values: [10, 20, 50, 100] },
    reg: { type: 'float', min: 0.02, max: 0.5, log: true },
  },
  bayes: {
    factors: { type: 'choice', values: [6, 8, 10, 12, 16, 20] },
    implicit: { type: 'choice', values: ['none', 'user', 'both'] },
  },
  wals: {
    factors: { type: 'choice', values: [16, 32, 64, 128, 200] },
    reg: { type: 'float', min: 1, max: 500, log: true },
    alpha: { type: 'float', min: 0.5, max: 50, log: true },
  },
  bpr: {
    factors: { type: 'choice', values: [32, 64, 128, 200] },
    lr: { type: 'float', min: 0.005, max: 0.1, log: true },
    reg: { type: 'float', min: 0.0001, max: 0.05, log: true },
  },
};

/** Upper bound on the iteration parameter per trial (early stopping usually ends sooner). */
export const DEFAULT_MAX_ITERATIONS: Record<Algo, number> = { sgd: 100, als: 30, bayes: 150, wals: 30, bpr: 200 };

export function sampleParams(space: SearchSpace, rand: () => number): Params {
  const out: Params = {};
  for (const [k, e] of Object.entries(space)) {
    if (e.type === 'choice') out[k] = e.values[Math.floor(rand() * e.values.length)];
    else {
      const u = rand();
      let v = e.log ? Math.exp(Math.log(e.min) + u * (Math.log(e.max) - Math.log(e.min))) : e.min + u * (e.max - e.min);
      if (e.type === 'int') v = Math.round(v);
      else v = Number(v.toPrecision(4));
      out[k] = v;
    }
  }
  return out;
}

/** Parses a space given as JSON: {"reg": [0.01, 1, "log"], "factors": [16, 32, 64], "lr": [0.001, 0.01]}. */
export function parseSpace(json: string): SearchSpace {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new Error(`--space is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('--space must be a JSON object of parameter → range');
  const space: SearchSpace = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (Array.isArray(v) && v.length >= 2 && v.length <= 3 && typeof v[0] === 'number' && typeof v[1] === 'number' && (v.length === 2 || v[2] === 'log' || v[2] === 'int')) {
      const isInt = v[2] === 'int' || (Number.isInteger(v[0]) && Number.isInteger(v[1]) && v.length === 2 && k !== 'lr' && k !== 'reg');
      space[k] = { type: isInt ? 'int' : 'float', min: v[0], max: v[1], log: v[2] === 'log' };
      if (v.length === 2 && !isInt) space[k] = { type: 'float', min: v[0], max: v[1] };
    } else if (Array.isArray(v) && v.length > 0) space[k] = { type: 'choice', values: v as ParamValue[] };
    else throw new Error(`--space ${k}: use [min, max], [min, max, "log"], [min, max, "int"] or a list of choices`);
  }
  return space;
}

export interface TuneOptions {
  algo: Algo;
  /** Tuning data (restrict it beforehand if a test set must stay unseen). */
  data: Interactions;
  /** How validation is carved out of the tuning data. */
  valid: SplitSpec;
  trials: number;
  seed?: number;
  space?: SearchSpace;
  /** Parameters held fixed in every trial. */
  fixed?: Params;
  /** 'rmse' (explicit default), 'mae', 'ndcg@10' (implicit default), 'precision@10', 'recall@10', 'map'. */
  objective?: string;
  maxIterations?: number;
  patience?: number;
  evalEvery?: number;
  threads?: number;
  input?: InputOptions;
  /** JSON-lines run log (appended). */
  log?: string;
  /** Free-form description of the data for the log header. */
  describe?: Record<string, unknown>;
  /** Include a trial with the algorithm's default parameters (default true). */
  baseline?: boolean;
  onTrial?: (rec: TrialRecord, done: number, total: number) => void;
}

export interface TrialRecord {
  type: 'trial';
  trial: number;
  algo: Algo;
  /** Parameters to train with, the iteration count set to the best epoch found. */
  params: Params;
  objective: string;
  value: number;
  metrics: Record<string, number>;
  best_epoch: number;
  epochs_run: number;
  seconds: number;
  curve: { epoch: number; value: number }[];
}

export interface TuneResult {
  best: TrialRecord;
  trials: TrialRecord[];
  log?: string;
  objective: string;
  mode: 'min' | 'max';
}

export function objectiveMode(objective: string): 'min' | 'max' {
  return objective === 'rmse' || objective === 'mae' ? 'min' : 'max';
}

export async function tune(o: TuneOptions): Promise<TuneResult> {
  const algo = o.algo;
  const info = ALGO_INFO[algo];
  const objective = o.objective ?? (info.kind === 'explicit' ? 'rmse' : 'ndcg@10');
  const mode = objectiveMode(objective);
  const ranking = !(objective === 'rmse' || objective === 'mae');
  // Checked before any trial starts, so a typo is one line, not a worker's stack trace.
  if (ranking && !/^(ndcg|precision|recall|map)(@\d+)?$/.test(objective)) throw new Error(`objective ${objective}: use rmse or mae (explicit algorithms), or ndcg@10, precision@10, recall@10 or map`);
  if (!ranking && info.kind === 'implicit') throw new Error(`objective ${objective} needs ratings; --algo ${algo} learns implicit preferences (use ndcg@10, precision@10, recall@10 or map)`);
  const k = ranking ? Number(/@(\d+)$/.exec(objective)?.[1] ?? 10) : 10;
  const splits = makeSplits(o.data, o.valid);
  if (splits.length !== 1) throw new Error(`validation split ${formatSplitSpec(o.valid)} must give one split (for kfold name the fold: kfold:5:0:1)`);
  const { train, test } = applySplit(o.data, splits[0]);
  const input = trainInputFor(algo, train, o.input);
  const seen = input.users.length === train.users.length ? undefined : { users: train.users, items: train.items };
  const valid: EvalSpec = { kind: ranking ? 'ranking' : 'rating', test, k };
  const space = o.space ?? DEFAULT_SPACES[algo];
  const maxIt = o.maxIterations ?? DEFAULT_MAX_ITERATIONS[algo];
  const fixed = o.fixed ?? {};
  const seed = o.seed ?? 0;
  const rand = rng(seed);
  const burnIn = algo === 'bayes' ? Number(fixed.burnIn ?? info.defaults.burnIn) : 0;

  // Distinct trials: a draw that repeats an earlier combination is redrawn (small discrete spaces
  // run out: then the search stops early rather than repeat itself).
  const trialParams: Params[] = [];
  const seenKeys = new Set<string>();
  const keyOf = (p: Params) => JSON.stringify({ ...info.defaults, ...p }, Object.keys({ ...info.defaults, ...p }).sort());
  if (o.baseline !== false) {
    trialParams.push({ ...fixed });
    seenKeys.add(keyOf(fixed));
  }
  for (let attempts = 0; trialParams.length < o.trials && attempts < 1000; attempts++) {
    const p = { ...sampleParams(space, rand), ...fixed };
    const key = keyOf(p);
    if (seenKeys.has(key)) continue;
    seenKeys.add(key);
    trialParams.push(p);
  }
  const jobs: FitJob[] = trialParams.map((p, t) => {
    const params: Params = { ...p, [info.iterations]: maxIt };
    validateParams(algo, params);
    return {
      id: `trial${t}`,
      algo,
      params,
      train: input,
      seen,
      ratingRange: ratingRangeOf(train),
      evals: [],
      earlyStop: {
        valid,
        metric: ranking ? (objective === 'map' ? 'map' : objective) : objective,
        mode,
        // The Gibbs average drifts by ±0.001 between evaluations: give it a longer leash.
        patience: o.patience ?? (algo === 'bayes' ? 8 : 3),
        every: o.evalEvery ?? (algo === 'bayes' ? 10 : 1),
        from: burnIn + 1,
      },
    };
  });

  if (o.log) {
    mkdirSync(path.dirname(o.log), { recursive: true });
    appendFileSync(
      o.log,
      JSON.stringify({
        type: 'tune',
        started: new Date().toISOString(),
        algo,
        objective,
        mode,
        valid: formatSplitSpec(o.valid),
        train_rows: input.users.length,
        valid_rows: test.users.length,
        trials: jobs.length,
        seed,
        space,
        fixed,
        max_iterations: maxIt,
        data: o.describe ?? { source: o.data.source, rows: o.data.users.length },
      }) + '\n',
    );
  }
  const records: TrialRecord[] = new Array(jobs.length);
  const toRecord = (r: FitJobResult, t: number): TrialRecord => {
    const bestEpoch = r.bestEpoch ?? 0;
    const params: Params = { ...jobs[t].params };
    params[info.iterations] = info.iterations === 'samples' ? Math.max(1, bestEpoch - burnIn) : Math.max(1, bestEpoch);
    const value = r.bestMetrics?.[jobs[t].earlyStop!.metric] ?? NaN;
    return {
      type: 'trial',
      trial: t,
      algo,
      params,
      objective,
      value,
      metrics: r.bestMetrics ?? {},
      best_epoch: bestEpoch,
      epochs_run: r.epochsRun ?? 0,
      seconds: Number(r.seconds.toFixed(3)),
      curve: r.curve ?? [],
    };
  };
  await runFitJobs(jobs, o.threads, (r, done) => {
    const t = Number(r.id.slice('trial'.length));
    const rec = toRecord(r, t);
    records[t] = rec;
    if (o.log) appendFileSync(o.log, JSON.stringify(rec) + '\n');
    o.onTrial?.(rec, done, jobs.length);
  });
  const better = (a: number, b: number) => (mode === 'min' ? a < b : a > b);
  let best = records[0];
  for (const r of records) if (Number.isFinite(r.value) && (!Number.isFinite(best.value) || better(r.value, best.value))) best = r;
  if (o.log) appendFileSync(o.log, JSON.stringify({ type: 'best', finished: new Date().toISOString(), trial: best.trial, objective, value: best.value, params: best.params }) + '\n');
  return { best, trials: records, log: o.log, objective, mode };
}

export interface BestEntry {
  algo: Algo;
  params: Params;
  objective: string;
  value: number;
  /** Where the tuning data came from and how validation was carved. */
  tuned_on: Record<string, unknown>;
  run_log?: string;
  trial: number;
  updated: string;
}

/** Merges a best trial into a best-params JSON file under `key` (e.g. "rating", "ranking"). */
export function saveBest(file: string, key: string, entry: BestEntry): void {
  let all: Record<string, unknown> = {};
  if (existsSync(file)) all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  all[key] = entry;
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(all, null, 2) + '\n');
}

export function loadBest(file: string): Record<string, BestEntry> {
  if (!existsSync(file)) throw new Error(`${file}: no best-params file (run recserve tune --save-best ${file})`);
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, BestEntry>;
}
