// What the server remembers of its predictions so feedback may name only a puid: in process
// (src/feedback/predictions.ts) and, with a PostgreSQL store, shared by the replicas through one table
// (src/feedback/shared-predictions.ts).
import { LIMIT_DEFAULTS } from './limits.js';
import { boolField, defaultsOf, intField, secondsAsMsField, type Section } from './setting.js';

export interface PredictionMemorySettings {
  /** Most predictions remembered. */
  capacity: number;
  /** Oldest a prediction may be and still take feedback by puid alone (ms; the variable is in seconds). */
  ttlMs: number;
}

export interface PredictionMemoryOptions extends PredictionMemorySettings {
  /** Most bytes (estimated) all remembered predictions may hold together: a limit, RECSERVE_PREDICTION_MEMORY_BYTES. */
  maxBytes: number;
}

export const PREDICTION_MEMORY: Section<PredictionMemorySettings> = {
  capacity: intField('RECSERVE_PREDICTION_MEMORY', 50_000),
  ttlMs: secondsAsMsField('RECSERVE_PREDICTION_TTL_S', 24 * 3600_000),
};

export const PREDICTION_MEMORY_DEFAULTS: PredictionMemoryOptions = { ...defaultsOf(PREDICTION_MEMORY), maxBytes: LIMIT_DEFAULTS.predictionMemoryBytes };

export interface SharedPredictionSettings {
  /** On by default when the store is PostgreSQL (unused with SQLite); `false` turns it off. */
  enabled: boolean;
  /** Longest a remembered prediction waits in the buffer before it is written (ms). */
  flushMs: number;
  /** Rows per INSERT; a full batch is written at once. */
  batchRows: number;
  /** Most bytes the write buffer holds; the oldest rows are dropped (and counted) beyond. */
  bufferBytes: number;
  /** Most bytes the shared table may hold in total (the sweep deletes the oldest beyond). */
  maxTableBytes: number;
  /** How often the sweep deletes expired and excess rows (ms). */
  sweepMs: number;
  /**
   * How long a feedback keeps looking for a row not written yet (ms). 1 s: right after start-up a
   * replica's first flush also pays for its first connection (200 ms missed 1–5 of 200 cross-replica
   * feedbacks in the three-process test).
   */
  lookupRetryMs: number;
}

export const SHARED_PREDICTIONS: Section<SharedPredictionSettings> = {
  enabled: boolField('RECSERVE_SHARED_PREDICTIONS', true),
  flushMs: intField('RECSERVE_SHARED_PREDICTIONS_FLUSH_MS', 50, 1),
  batchRows: intField('RECSERVE_SHARED_PREDICTIONS_BATCH', 500, 1),
  bufferBytes: intField('RECSERVE_SHARED_PREDICTIONS_BUFFER_BYTES', 8 * 1024 * 1024, 1),
  maxTableBytes: intField('RECSERVE_SHARED_PREDICTIONS_MAX_BYTES', 512 * 1024 * 1024, 1),
  sweepMs: intField('RECSERVE_SHARED_PREDICTIONS_SWEEP_MS', 60_000, 1),
  lookupRetryMs: intField('RECSERVE_SHARED_PREDICTIONS_LOOKUP_MS', 1000),
};

export const SHARED_PREDICTION_DEFAULTS: SharedPredictionSettings = defaultsOf(SHARED_PREDICTIONS);
