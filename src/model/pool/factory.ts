// The ScorerFactories: the server's (per model version, a worker pool — or, with 0 workers, the
// in-process ORT scorer — behind the micro-batcher; the registry calls it for every version it loads),
// and the plain in-process one that training, verification and the CLI score with.
import type { Artifact } from '../../model-format/artifact.js';
import { MicroBatcher, type BatchObserver } from '../batcher.js';
import { OrtScorer } from '../ort-scorer.js';
import type { ScorerFactory } from '../registry.js';
import type { Scorer } from '../scorer.js';
import { WorkerPool, type PoolLogger, type PoolObserver } from './pool.js';

export interface ServingScorerOptions {
  /** Worker threads with one ONNX session each; 0 scores on the main thread (still batched). */
  workers: number;
  intraOpThreads: number;
  maxBatchSize: number;
  maxBatchDelayMs: number;
  log?: PoolLogger;
  batchObserver?: BatchObserver;
  poolObserver?: PoolObserver;
  /** Worker restarts: failed starts in a row before giving up, and the wait before a restart (ms). */
  maxStartFailures?: number;
  restartBackoffMs?: number;
}

/** One onnxruntime session on this thread, no batching. */
export const inProcessScorer: ScorerFactory = (a) => OrtScorer.create(a.onnx, a.signature, a.itemIds.length);

export function servingScorerFactory(opts: ServingScorerOptions): ScorerFactory {
  return async (artifact: Artifact): Promise<Scorer> => {
    const nItems = artifact.itemIds.length;
    const inner: Scorer =
      opts.workers > 0
        ? await WorkerPool.create(
            { onnx: artifact.onnx, signature: artifact.signature, nItems, seen: artifact.seen },
            { workers: opts.workers, intraOpNumThreads: opts.intraOpThreads, log: opts.log, observer: opts.poolObserver, maxStartFailures: opts.maxStartFailures, restartBackoffMs: opts.restartBackoffMs },
          )
        : await OrtScorer.create(artifact.onnx, artifact.signature, nItems, { intraOpNumThreads: opts.intraOpThreads });
    // A model's model-settings.json (max_batch_size, max_batch_time) overrides the server's batching.
    const { batching } = artifact.settings;
    return new MicroBatcher(inner, {
      maxBatchSize: batching.maxBatchSize ?? opts.maxBatchSize,
      maxBatchDelayMs: batching.maxBatchDelayMs ?? opts.maxBatchDelayMs,
      // One run per worker at a time; in-process, runs block the loop one after another anyway.
      concurrency: Math.max(1, opts.workers),
      observer: opts.batchObserver,
    });
  };
}
