// A Scorer that runs inference on N worker threads, each holding its own ONNX session (onnxruntime-node
// runs a session synchronously on the calling thread, so this keeps the event loop free for I/O,
// health and metrics). Work goes to the first idle worker, one call per worker at a time; the rest
// waits in one FIFO. Worker logs and errors are written by the pool's logger; a worker that dies is
// replaced, and only the call it was running fails.
import { Worker } from 'node:worker_threads';
import { INFERENCE_DEFAULTS } from '../../config/inference.js';
import type { QuantizedCatalog } from '../int8-exact.js';
import type { Signature } from '../signature.js';
import type { Ranked, Scorer, TopKQuery } from '../scorer.js';
import { workerUrl } from '../../util/worker-url.js';
import { ExcludeKind, type TopKRequest, type WorkerInit, type WorkerReply, type WorkerRequest } from './messages.js';

/** The logging surface the pool needs (pino's Logger has it). */
export interface PoolLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Told about worker activity (metrics); must not throw. */
export interface PoolObserver {
  workerBusy?(worker: number, ms: number): void;
  workerRestart?(worker: number): void;
}

export interface PoolModel {
  onnx: Uint8Array;
  signature: Signature;
  nItems: number;
  /** The version's seen lists (artifact.seen); queries whose exclude is one of them refer to it by user. */
  seen?: Int32Array[] | null;
  /** Checked int8 scoring data, its arrays in SharedArrayBuffers (every worker reads the same copy); onnx is then not sent. */
  int8?: QuantizedCatalog | null;
}

export interface PoolOptions {
  workers: number;
  intraOpNumThreads: number;
  log?: PoolLogger;
  observer?: PoolObserver;
  /**
   * How much lower than the event loop the worker threads run (nice increment; 0 = same priority).
   * Meant to let the main thread keep accepting and batching under CPU contention; on the shared
   * 2-core bench machine it made no measurable difference (docs/performance.md), hence default 0.
   * Linux only; elsewhere it is ignored or logged.
   */
  niceness?: number;
  /** A replacement that dies before it is ready this many times in a row stops the respawning. */
  maxStartFailures?: number;
  /** First back-off before re-replacing a worker that failed to start (ms), doubling after (default RECSERVE_WORKER_RESTART_BACKOFF_MS). */
  restartBackoffMs?: number;
}

export interface WorkerStats {
  index: number;
  threadId: number;
  ready: boolean;
  jobs: number;
  busyMs: number;
  restarts: number;
}

interface Job {
  msg: WorkerRequest;
  resolve: (reply: WorkerReply) => void;
  reject: (e: Error) => void;
}

interface Slot {
  index: number;
  worker: Worker;
  ready: boolean;
  job: Job | null;
  jobs: number;
  busyMs: number;
  restarts: number;
  /** Consecutive deaths before becoming ready (reset when ready). */
  startFailures: number;
  /** Gave up replacing it. */
  dead: boolean;
}

/** See PoolOptions.niceness. */
const DEFAULT_NICENESS = 0;

const silent: PoolLogger = { debug() {}, info() {}, warn() {}, error() {} };

export class WorkerPool implements Scorer {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing = false;
  private broken: Error | null = null;
  private readonly maskCache = new WeakMap<Uint8Array, Uint8Array>();
  private readonly log: PoolLogger;

  private constructor(
    private readonly init: Omit<WorkerInit, 'index'>,
    private readonly seen: Int32Array[] | null,
    private readonly opts: PoolOptions,
  ) {
    this.log = opts.log ?? silent;
  }

  /** Starts the workers and resolves once every one has built its session. */
  static async create(model: PoolModel, opts: PoolOptions): Promise<WorkerPool> {
    if (!(opts.workers >= 1)) throw new Error(`the inference pool needs at least one worker, got ${opts.workers}`);
    const onnx = new Uint8Array(new SharedArrayBuffer(model.int8 ? 0 : model.onnx.byteLength));
    if (!model.int8) onnx.set(model.onnx);
    const packed = packSeen(model.seen ?? null);
    const pool = new WorkerPool(
      { onnx, signature: model.signature, nItems: model.nItems, intraOpNumThreads: opts.intraOpNumThreads, niceness: opts.niceness ?? DEFAULT_NICENESS, int8: model.int8 ?? null, ...packed },
      model.seen ?? null,
      opts,
    );
    const started = Array.from({ length: opts.workers }, (_, i) => pool.spawn(i));
    try {
      await Promise.all(started);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get nItems(): number {
    return this.init.nItems;
  }

  get size(): number {
    return this.slots.length;
  }

  /** The worker threads (for tests and diagnostics). */
  get threads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  stats(): WorkerStats[] {
    return this.slots.map((s) => ({ index: s.index, threadId: s.worker.threadId, ready: s.ready, jobs: s.jobs, busyMs: s.busyMs, restarts: s.restarts }));
  }

  async topK(queries: TopKQuery[]): Promise<Ranked[]> {
    const n = queries.length;
    if (n === 0) return [];
    const users = new Int32Array(n);
    const ks = new Int32Array(n);
    const excludeKind = new Uint8Array(n);
    const excludeOffsets = new Int32Array(n + 1);
    const maskOf = new Int32Array(n).fill(-1);
    const masks: Uint8Array[] = [];
    let inline = 0;
    for (let i = 0; i < n; i++) {
      const q = queries[i];
      users[i] = q.user;
      ks[i] = q.k;
      if (q.exclude !== null && q.exclude.length > 0) {
        if (this.seen !== null && this.seen[q.user] === q.exclude) excludeKind[i] = ExcludeKind.Seen;
        else {
          excludeKind[i] = ExcludeKind.Inline;
          inline += q.exclude.length;
        }
      }
      if (q.allow !== null) {
        const shared = this.sharedMask(q.allow);
        let m = masks.indexOf(shared);
        if (m < 0) m = masks.push(shared) - 1;
        maskOf[i] = m;
      }
    }
    const excludeItems = new Int32Array(inline);
    let at = 0;
    for (let i = 0; i < n; i++) {
      if (excludeKind[i] === ExcludeKind.Inline) {
        excludeItems.set(queries[i].exclude!, at);
        at += queries[i].exclude!.length;
      }
      excludeOffsets[i + 1] = at;
    }
    const msg: TopKRequest = { type: 'topk', id: 0, users, ks, excludeKind, excludeOffsets, excludeItems, maskOf, masks };
    const reply = await this.submit(msg);
    if (reply.type !== 'topk') throw new Error(`inference worker answered ${reply.type} to topk`);
    const out: Ranked[] = new Array(n);
    const { offsets, items, scores } = reply;
    for (let i = 0; i < n; i++) out[i] = { items: items.subarray(offsets[i], offsets[i + 1]), scores: scores.subarray(offsets[i], offsets[i + 1]) };
    return out;
  }

  async scorePairs(users: Int32Array, items: Int32Array): Promise<Float32Array> {
    if (users.length === 0) return new Float32Array(0);
    const reply = await this.submit({ type: 'pairs', id: 0, users, items });
    if (reply.type !== 'pairs') throw new Error(`inference worker answered ${reply.type} to pairs`);
    return reply.scores;
  }

  /** Stops the workers (terminating a thread is also how ORT's memory is given back). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const err = new Error('the inference pool is closed (the model version was replaced)');
    for (const job of this.queue.splice(0)) job.reject(err);
    await Promise.all(this.slots.map((s) => s.worker.terminate().catch(() => undefined)));
  }

  private sharedMask(mask: Uint8Array): Uint8Array {
    if (mask.buffer instanceof SharedArrayBuffer) return mask;
    let shared = this.maskCache.get(mask);
    if (!shared) {
      shared = new Uint8Array(new SharedArrayBuffer(mask.byteLength));
      shared.set(mask);
      this.maskCache.set(mask, shared);
    }
    return shared;
  }

  private submit(msg: WorkerRequest): Promise<WorkerReply> {
    if (this.closing) return Promise.reject(new Error('the inference pool is closed (the model version was replaced)'));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      msg.id = this.nextId++;
      this.queue.push({ msg, resolve, reject });
      this.pump();
    });
  }

  /** Gives queued jobs to idle ready workers, oldest first. */
  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.job !== null) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      try {
        slot.worker.postMessage(job.msg);
      } catch (e) {
        slot.job = null;
        job.reject(e as Error);
      }
    }
  }

  /** Starts worker `index` (first start or replacement); resolves when its session is ready. */
  private spawn(index: number): Promise<void> {
    const worker = new Worker(workerUrl(import.meta.url, './worker.js'), { workerData: { ...this.init, index } satisfies WorkerInit });
    const prev = this.slots[index];
    const slot: Slot = prev
      ? Object.assign(prev, { worker, ready: false, job: null })
      : { index, worker, ready: false, job: null, jobs: 0, busyMs: 0, restarts: 0, startFailures: 0, dead: false };
    this.slots[index] = slot;
    return new Promise<void>((resolve, reject) => {
      let lastError: Error | null = null;
      worker.on('message', (m: WorkerReply) => {
        switch (m.type) {
          case 'ready':
            slot.ready = true;
            slot.startFailures = 0;
            this.log.debug({ worker: index, threadId: worker.threadId, loadMs: Math.round(m.loadMs) }, 'inference worker ready');
            resolve();
            this.pump();
            return;
          case 'log':
            this.log[m.level]({ ...m.fields, threadId: worker.threadId }, m.msg);
            return;
          default: {
            const job = slot.job;
            if (!job || job.msg.id !== m.id) {
              this.log.error({ worker: index, id: m.id }, 'inference worker answered a request it was not given');
              return;
            }
            slot.job = null;
            slot.jobs++;
            if (m.type === 'error') {
              const e = new Error(m.message);
              e.name = m.name;
              job.reject(e);
            } else {
              slot.busyMs += m.busyMs;
              this.opts.observer?.workerBusy?.(index, m.busyMs);
              job.resolve(m);
            }
            this.pump();
          }
        }
      });
      worker.on('error', (e) => {
        lastError = e;
        this.log.error({ worker: index, threadId: worker.threadId, err: e.message, stack: e.stack }, 'inference worker failed');
      });
      worker.on('exit', (code) => {
        if (this.slots[index].worker !== worker) return;
        slot.ready = false;
        const reason = lastError ? lastError.message : `exit code ${code}`;
        const failure = new Error(`inference worker ${index} stopped (${reason}) before answering`);
        if (slot.job) {
          slot.job.reject(failure);
          slot.job = null;
        }
        reject(new Error(`inference worker ${index} could not load the model: ${reason}`));
        if (!this.closing) this.replace(slot, reason);
      });
    });
  }

  private replace(slot: Slot, reason: string): void {
    slot.startFailures++;
    const max = this.opts.maxStartFailures ?? INFERENCE_DEFAULTS.workerMaxStartFailures;
    if (slot.startFailures > max) {
      slot.dead = true;
      this.log.error({ worker: slot.index, reason }, `inference worker ${slot.index} keeps failing before it is ready; no further replacement`);
      if (this.slots.every((s) => s.dead)) {
        this.broken = new Error(`every inference worker keeps failing (${reason}); the model cannot be served`);
        for (const job of this.queue.splice(0)) job.reject(this.broken);
      }
      return;
    }
    slot.restarts++;
    this.opts.observer?.workerRestart?.(slot.index);
    this.log.warn({ worker: slot.index, reason, restarts: slot.restarts }, 'replacing inference worker');
    // Back off when replacements themselves fail, so a broken model does not spin the CPU.
    const backoffMs = this.opts.restartBackoffMs ?? INFERENCE_DEFAULTS.workerRestartBackoffMs;
    const delay = slot.startFailures > 1 ? backoffMs * 2 ** (slot.startFailures - 2) : 0;
    setTimeout(() => {
      if (!this.closing) this.spawn(slot.index).catch(() => undefined);
    }, delay).unref();
  }
}

/** Seen lists as one offsets array and one items array, in SharedArrayBuffers every worker reads. */
function packSeen(seen: Int32Array[] | null): Pick<WorkerInit, 'seenOffsets' | 'seenItems'> {
  if (!seen) return { seenOffsets: null, seenItems: null };
  const offsets = new Int32Array(new SharedArrayBuffer((seen.length + 1) * 4));
  for (let u = 0; u < seen.length; u++) offsets[u + 1] = offsets[u] + (seen[u]?.length ?? 0);
  const items = new Int32Array(new SharedArrayBuffer(Math.max(1, offsets[seen.length]) * 4));
  for (let u = 0; u < seen.length; u++) if (seen[u]) items.set(seen[u], offsets[u]);
  return { seenOffsets: offsets, seenItems: items };
}
