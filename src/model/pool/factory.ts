// The ScorerFactories: the server's (per model version, a worker pool — or, with 0 workers, the
// in-process ORT scorer — behind the micro-batcher; the registry calls it for every version it loads),
// and the plain in-process one that training, verification and the CLI score with.
import { INFERENCE_DEFAULTS } from '../../config/inference.js';
import type { Artifact, Factors } from '../../model-format/artifact.js';
import { MicroBatcher, type BatchObserver } from '../batcher.js';
import { int8Refusal, quantizeCatalog, type QuantizedCatalog } from '../int8-exact.js';
import { checkInt8, createModelScorer, OrtScorer } from '../ort-scorer.js';
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
  /** Catalogs of at least this many items score with int8 and an exact re-rank; 0 = never (default RECSERVE_INT8_MIN_ITEMS). */
  int8MinItems?: number;
}

/** One onnxruntime session on this thread, no batching. */
export const inProcessScorer: ScorerFactory = (a) => OrtScorer.create(a.onnx, a.signature, a.itemIds.length);

export function servingScorerFactory(opts: ServingScorerOptions): ScorerFactory {
  return async (artifact: Artifact): Promise<Scorer> => {
    const nItems = artifact.itemIds.length;
    const workers = opts.workers > 0;
    // At warn, wherever it is refused: the int8 scoring the threshold asked for is not happening.
    const refusedInt8 = (reason: string) => opts.log?.warn({ reason }, 'int8 scoring is off for this model; scoring in float32');
    let int8 = int8Catalog(artifact, opts.int8MinItems ?? INFERENCE_DEFAULTS.int8MinItems, workers, opts.log, refusedInt8);
    if (int8 && workers) {
      // Checked once here, so the workers need neither the model bytes nor a float32 session.
      const refused = await checkInt8(artifact.onnx, artifact.signature, nItems, int8);
      if (refused !== null) {
        refusedInt8(refused);
        int8 = null;
      }
    }
    const inner: Scorer = workers
      ? await WorkerPool.create(
          { onnx: artifact.onnx, signature: artifact.signature, nItems, seen: artifact.seen, int8 },
          { workers: opts.workers, intraOpNumThreads: opts.intraOpThreads, log: opts.log, observer: opts.poolObserver, maxStartFailures: opts.maxStartFailures, restartBackoffMs: opts.restartBackoffMs },
        )
      : await createModelScorer(artifact.onnx, artifact.signature, nItems, { intraOpNumThreads: opts.intraOpThreads, int8, onInt8Refused: refusedInt8 });
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

/**
 * The model's int8 scoring data when its catalog is large enough and its factors allow it, quantized
 * once here; for workers every array goes into shared memory, so each worker reads the same copy.
 */
function int8Catalog(artifact: Artifact, minItems: number, shared: boolean, log: PoolLogger | undefined, refused: (reason: string) => void): QuantizedCatalog | null {
  const nItems = artifact.itemIds.length;
  const f = artifact.factors;
  if (minItems <= 0 || nItems < minItems || f === null || artifact.signature.kind !== 'catalog') return null;
  const refusal = int8Refusal(f, nItems);
  if (refusal !== null) {
    refused(refusal);
    return null;
  }
  const t0 = performance.now();
  const alloc = shared ? (bytes: number) => new SharedArrayBuffer(bytes) : undefined;
  const q = quantizeCatalog(shared ? shareFactors(f) : f, nItems, alloc);
  log?.info({ items: nItems, factors: f.factors, ms: Math.round(performance.now() - t0) }, 'int8 item factors built (exact float32 re-rank)');
  return q;
}

function shareFactors(f: Factors): Factors {
  const share = (a: Float32Array) => {
    const out = new Float32Array(new SharedArrayBuffer(a.byteLength));
    out.set(a);
    return out;
  };
  return { ...f, userFactors: share(f.userFactors), itemFactors: share(f.itemFactors), userBias: share(f.userBias), itemBias: share(f.itemBias) };
}
