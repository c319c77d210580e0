// Scoring: worker threads running ONNX sessions, micro-batching in front of them, how a failing worker
// is replaced, and how long a swapped-out model version keeps serving requests already holding it.
import os from 'node:os';
import { defaultsOf, intField, numField, type Section } from './setting.js';

export interface InferenceSettings {
  /** Worker threads running ONNX sessions (0 = score on the main thread, still batched). */
  inferenceWorkers: number;
  /** intra-op threads per ONNX session. */
  intraOpThreads: number;
  /** Most users in one ORT run. */
  maxBatchSize: number;
  /** Longest a request may wait in the batcher for company (ms). */
  maxBatchDelayMs: number;
  /** How long a replaced model version stays open for requests that already hold it (ms), before it is closed. */
  swapGraceMs: number;
  /** Failures in a row a worker may have before it is ready; beyond, it is not replaced again (a broken model must not spin). */
  workerMaxStartFailures: number;
  /** First back-off before re-replacing a worker that failed to start (ms); doubles with each further failure. */
  workerRestartBackoffMs: number;
  /**
   * Catalogs of at least this many items rank with int8 item factors and an exact float32 re-rank
   * (same answers, less memory traffic); 0 keeps float32 everywhere. Models without readable factors keep float32.
   * 50,000: below about 30,000 items the int8 run and the re-rank cost more than they save (docs/performance.md).
   */
  int8MinItems: number;
}

/** Two cores is the shipped pod; more workers than cores only contend. */
export const DEFAULT_THREADS = Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length));

export const INFERENCE: Section<InferenceSettings> = {
  inferenceWorkers: intField('RECSERVE_WORKERS', DEFAULT_THREADS, 0, 'min(2, cores)'),
  intraOpThreads: intField('RECSERVE_INTRA_OP_THREADS', 1, 1),
  maxBatchSize: intField('RECSERVE_MAX_BATCH_SIZE', 64, 1),
  maxBatchDelayMs: numField('RECSERVE_MAX_BATCH_DELAY_MS', 2),
  swapGraceMs: intField('RECSERVE_SWAP_GRACE_MS', 5000),
  workerMaxStartFailures: intField('RECSERVE_WORKER_MAX_START_FAILURES', 3),
  workerRestartBackoffMs: intField('RECSERVE_WORKER_RESTART_BACKOFF_MS', 100),
  int8MinItems: intField('RECSERVE_INT8_MIN_ITEMS', 50_000),
};

export const INFERENCE_DEFAULTS: InferenceSettings = defaultsOf(INFERENCE);
