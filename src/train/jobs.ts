// Fit-and-evaluate jobs: the unit of work of cross-validation, protocol runs and tuning trials.
// Independent jobs run on a small pool of worker threads (one per core by default) — on a 2-core
// machine two folds or two trials train at once — or in-process with threads = 1.
import { Worker } from 'node:worker_threads';
import { loadTrainingSettings } from '../config/training.js';
import { lightfmReport, rankingReport, ratingReport, type Pairs, type Rated } from './evaluate.js';
import type { MfModel, TrainInput } from './model.js';
import { fit, type Algo, type Params } from './trainers.js';
import { workerUrl } from '../util/worker-url.js';

export type EvalKind = 'rating' | 'ranking' | 'lightfm';

export interface EvalSpec {
  kind: EvalKind;
  test: Rated;
  /** Cut-off for ranking metrics (default 10). */
  k?: number;
  /** Prefix of the metric names in the result (default kind-specific, e.g. 'rmse', 'ndcg@10'). */
  prefix?: string;
  /** Ranking: recommend among items with training rows (default) or all items of the model. */
  candidates?: 'trained' | 'all';
}

/** Early stopping on a validation set: evaluate every `every` epochs, stop after `patience` evaluations without improvement. */
export interface EarlyStop {
  valid: EvalSpec;
  /** Metric name as evaluateModel reports it (e.g. 'rmse', 'ndcg@10'). */
  metric: string;
  mode: 'min' | 'max';
  patience: number;
  every?: number;
  /** Do not evaluate before this epoch (e.g. the Gibbs burn-in). */
  from?: number;
}

export interface FitJob {
  id: string;
  algo: Algo;
  params: Params;
  train: TrainInput;
  /** Training interactions removed from top-k lists (default: train's rows). */
  seen?: Pairs;
  ratingRange?: [number, number];
  evals: EvalSpec[];
  earlyStop?: EarlyStop;
}

export interface FitJobResult {
  id: string;
  seconds: number;
  metrics: Record<string, number>;
  params: Params;
  /** With early stopping: the best epoch, its validation metrics, and the validation curve. */
  bestEpoch?: number;
  bestMetrics?: Record<string, number>;
  curve?: { epoch: number; value: number }[];
  epochsRun?: number;
}

export function evaluateModel(model: MfModel, train: Pairs, evals: EvalSpec[]): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const e of evals) {
    const pre = e.prefix ? `${e.prefix}_` : '';
    const k = e.k ?? 10;
    if (e.kind === 'rating') {
      const r = ratingReport(model, e.test);
      metrics[`${pre}rmse`] = r.rmse;
      metrics[`${pre}mae`] = r.mae;
    } else if (e.kind === 'ranking') {
      const r = rankingReport(model, train, e.test, k, e.candidates);
      metrics[`${pre}ndcg@${k}`] = r.ndcg;
      metrics[`${pre}precision@${k}`] = r.precision;
      metrics[`${pre}recall@${k}`] = r.recall;
      metrics[`${pre}map`] = r.map;
      metrics[`${pre}map@${k}`] = r.mapAtK;
    } else {
      const r = lightfmReport(model, train, e.test, k);
      metrics[`${pre}precision@${k}`] = r.precision;
      metrics[`${pre}auc`] = r.auc;
    }
  }
  return metrics;
}

export function runFitJob(job: FitJob): FitJobResult {
  const seen = job.seen ?? job.train;
  const es = job.earlyStop;
  if (!es) {
    const r = fit(job.algo, job.train, job.params, undefined, job.ratingRange);
    return { id: job.id, seconds: r.seconds, metrics: evaluateModel(r.model, seen, job.evals), params: r.params };
  }
  const better = (a: number, b: number) => (es.mode === 'min' ? a < b : a > b);
  let best = es.mode === 'min' ? Infinity : -Infinity;
  let bestEpoch = 0;
  let bestMetrics: Record<string, number> = {};
  let since = 0;
  let epochsRun = 0;
  const curve: { epoch: number; value: number }[] = [];
  let evalSeconds = 0;
  const r = fit(
    job.algo,
    job.train,
    job.params,
    (rep, get) => {
      epochsRun = rep.epoch;
      if (rep.epoch < (es.from ?? 1)) return false;
      if ((rep.epoch - (es.from ?? 1)) % (es.every ?? 1) !== 0 && rep.epoch !== rep.epochs) return false;
      const t0 = performance.now();
      const m = evaluateModel(get(), seen, [es.valid]);
      evalSeconds += (performance.now() - t0) / 1000;
      const v = m[es.metric];
      if (v === undefined) throw new Error(`early stopping: no metric "${es.metric}" (have ${Object.keys(m).join(', ')})`);
      curve.push({ epoch: rep.epoch, value: v });
      if (better(v, best)) {
        best = v;
        bestEpoch = rep.epoch;
        bestMetrics = m;
        since = 0;
      } else if (++since >= es.patience) return true;
      return false;
    },
    job.ratingRange,
  );
  const metrics = job.evals.length > 0 ? evaluateModel(r.model, seen, job.evals) : {};
  return { id: job.id, seconds: r.seconds - evalSeconds, metrics, params: r.params, bestEpoch, bestMetrics, curve, epochsRun };
}

/** RECSERVE_TRAIN_THREADS, else min(2, cores) (src/config/training.ts). */
export function defaultThreads(): number {
  return loadTrainingSettings(process.env).trainThreads;
}

/**
 * Runs jobs on `threads` workers (in-process when 1), returning results in job order. `onDone` is
 * called as each job finishes.
 */
export async function runFitJobs(jobs: FitJob[], threads = defaultThreads(), onDone?: (r: FitJobResult, done: number) => void): Promise<FitJobResult[]> {
  const results: FitJobResult[] = new Array(jobs.length);
  if (threads <= 1 || jobs.length <= 1) {
    jobs.forEach((j, n) => {
      results[n] = runFitJob(j);
      onDone?.(results[n], n + 1);
    });
    return results;
  }
  const url = workerUrl(import.meta.url, './fit-worker.js');
  const pool = Array.from({ length: Math.min(threads, jobs.length) }, () => new Worker(url));
  let next = 0;
  let done = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const feed = (w: Worker) => {
        if (next >= jobs.length) return;
        const n = next++;
        const onMessage = (msg: { ok: boolean; result?: FitJobResult; error?: string }) => {
          w.off('error', onError);
          if (!msg.ok) return reject(new Error(`job ${jobs[n].id}: ${msg.error}`));
          results[n] = msg.result!;
          done++;
          onDone?.(results[n], done);
          if (done === jobs.length) resolve();
          else feed(w);
        };
        const onError = (e: Error) => reject(e);
        w.once('message', onMessage);
        w.once('error', onError);
        w.postMessage(jobs[n]);
      };
      pool.forEach(feed);
    });
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results;
}
