// The pool of Thompson draw vectors a BanditPolicy answers from (the design is described at the top of
// bandit.ts): its shape within a memory and compute budget, the worker thread that computes it, and
// the refresh schedule — after every posterior change, at most every R ms and never more than a
// quarter of one core, with the previous pool serving until the next one is in. A pool small enough to
// cost less than a worker round trip (≤ INLINE_DRAWS draws) is recomputed in place instead.
import { Worker } from 'node:worker_threads';
import { workerUrl } from '../util/worker-url.js';
import { drawVectors, fnv1a, type DrawJob, type DrawVectors } from './posterior-draws.js';

export interface PoolSettings {
  /** M: draw vectors per posterior state (users share a vector by hash of their id). */
  poolVectors: number;
  /** L: items kept per vector, sorted by draw. */
  poolPrefix: number;
  /** R: shortest time between two refreshes (ms). */
  poolRefreshMs: number;
  /** Byte budget of one pool (M × L × 8 bytes). */
  poolBytes: number;
}

export const POOL_DEFAULTS: PoolSettings = { poolVectors: 16, poolPrefix: 2048, poolRefreshMs: 250, poolBytes: 4 * 1024 * 1024 };

/** Beta draws per refresh at most (≈ 0.2 µs each): a 1M-item catalog gets 8 vectors, 50k items 16. */
const MAX_DRAWS_PER_REFRESH = 8_000_000;
/**
 * A pool of at most this many draws (≈ 3 ms) is computed on the main thread on the first request after
 * a posterior change, with no rate limit: cheaper than a round trip to the worker, and exact (the
 * answer follows the posterior at once, as small catalogs such as the demo's did before the pool).
 */
const INLINE_DRAWS = 16_384;
/** A refresh waits at least this many times the last one's compute time: the worker stays ≤ 25 % busy. */
const DUTY_FACTOR = 4;

export function poolShape(nItems: number, s: PoolSettings): { vectors: number; prefix: number } {
  const prefix = Math.max(0, Math.min(nItems, Math.floor(s.poolPrefix)));
  if (prefix === 0) return { vectors: 1, prefix: 0 };
  const byBytes = Math.floor(s.poolBytes / (prefix * 8));
  const byCompute = Math.max(2, Math.floor(MAX_DRAWS_PER_REFRESH / nItems));
  return { vectors: Math.max(1, Math.min(Math.floor(s.poolVectors), byBytes, byCompute)), prefix };
}

/** One computed pool: M vectors of L (item, draw) pairs, for one posterior version. */
export interface DrawPool extends DrawVectors {
  version: number;
  vectors: number;
  prefix: number;
  /** The seed salt of this pool (slots and tail draws derive from it). */
  seed: number;
}

export interface PoolLogger {
  warn(obj: object, msg: string): void;
}

/**
 * The draw worker thread, shared by every policy of one bandit; jobs run one at a time. If the worker
 * cannot run (it dies three times in a row), jobs are computed in-process, which blocks the event
 * loop — logged, because it means the guarantee is gone.
 */
export class DrawWorker {
  private worker: Worker | null = null;
  private failures = 0;
  private nextId = 1;
  private inFlight: { id: number; resolve: (v: DrawVectors) => void; reject: (e: Error) => void } | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly log: PoolLogger | null = null) {}

  compute(job: DrawJob): Promise<DrawVectors> {
    const run = this.chain.then(() => this.run(job));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(job: DrawJob): Promise<DrawVectors> {
    if (this.failures >= 3) return drawVectors(job);
    try {
      const w = this.ensure();
      w.ref(); // keep the process alive while a pool is being computed
      return await new Promise<DrawVectors>((resolve, reject) => {
        this.inFlight = { id: this.nextId++, resolve, reject };
        w.postMessage({ id: this.inFlight.id, job }, [job.alpha.buffer as ArrayBuffer, job.beta.buffer as ArrayBuffer]);
      }).finally(() => {
        this.inFlight = null;
        this.worker?.unref();
      });
    } catch (e) {
      this.failures++;
      if (this.failures >= 3) this.log?.warn({ err: (e as Error).message }, 'cold-start draw worker keeps failing; computing draw pools on the main thread from now on');
      throw e;
    }
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(workerUrl(import.meta.url, './cold-start-worker.js'));
    w.unref();
    w.on('message', (msg: { id: number; items?: Int32Array; scores?: Float32Array; error?: string }) => {
      const job = this.inFlight;
      if (!job || job.id !== msg.id) return;
      if (msg.error !== undefined) job.reject(new Error(msg.error));
      else {
        this.failures = 0;
        job.resolve({ items: msg.items!, scores: msg.scores! });
      }
    });
    const lost = (why: string) => {
      if (this.worker === w) this.worker = null;
      this.inFlight?.reject(new Error(`cold-start draw worker ${why}`));
    };
    w.on('error', (e) => lost(`failed: ${e.message}`));
    w.on('exit', (code) => lost(`exited (${code})`));
    this.worker = w;
    return w;
  }

  /** Stops the thread (tests, shutdown); a later job starts a new one. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}

/** What a pool needs from its policy: the posterior now and its version. */
export interface PoolSource {
  readonly nItems: number;
  version(): number;
  /** Fresh arrays (they are transferred to the worker). */
  posterior(): { alpha: Float64Array; beta: Float64Array };
  salt: number;
}

/** The current pool of one policy and its refresh schedule. */
export class RefreshingPool {
  current: DrawPool | null = null;
  readonly shape: { vectors: number; prefix: number };
  /** Small pools are recomputed on the main thread when first needed after a change (INLINE_DRAWS). */
  readonly inline: boolean;
  private computing = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private lastStart = -Infinity;
  private lastDurationMs = 0;
  private waiters: { ready: boolean; resolve: () => void }[] = [];
  /** Called whenever a new pool takes over (the policy drops what it derived from the old one). */
  onSwap: (() => void) | null = null;

  constructor(
    private readonly source: PoolSource,
    private readonly settings: PoolSettings,
    private readonly worker: DrawWorker,
  ) {
    this.shape = poolShape(source.nItems, settings);
    this.inline = source.nItems * this.shape.vectors <= INLINE_DRAWS;
  }

  private job(version: number): { job: DrawJob; seed: number } {
    const { alpha, beta } = this.source.posterior();
    const seed = fnv1a(`${this.source.salt}:${version}`);
    const seeds = Array.from({ length: this.shape.vectors }, (_, m) => fnv1a(`${seed}:${m}`));
    return { job: { alpha, beta, seeds, prefix: this.shape.prefix }, seed };
  }

  private install(version: number, seed: number, v: DrawVectors): void {
    if (this.current && this.current.version >= version) return;
    this.current = { ...v, version, seed, vectors: this.shape.vectors, prefix: this.shape.prefix };
    this.onSwap?.();
  }

  /** The pool, computed here and now if none exists yet (before the first worker answer) or it is small and stale. */
  now(): DrawPool {
    if (!this.current || (this.inline && this.current.version !== this.source.version())) {
      const version = this.source.version();
      const { job, seed } = this.job(version);
      this.install(version, seed, drawVectors(job));
      this.settle();
    }
    return this.current!;
  }

  /** The posterior changed: compute a new pool as soon as the schedule allows. */
  stale(): void {
    if (this.inline) return; // recomputed by the next now()
    if (this.computing) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const interval = Math.max(this.settings.poolRefreshMs, DUTY_FACTOR * this.lastDurationMs);
    const wait = Math.max(0, this.lastStart + interval - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh();
    }, wait);
    // While nothing has been computed yet a model is waiting to serve: keep the process up for it.
    if (this.current) this.timer.unref();
  }

  private async refresh(): Promise<void> {
    this.computing = true;
    this.again = false;
    const version = this.source.version();
    const { job, seed } = this.job(version);
    const started = performance.now();
    this.lastStart = started;
    try {
      this.install(version, seed, await this.worker.compute(job));
      this.lastDurationMs = performance.now() - started;
    } catch {
      this.again = true; // logged by the worker; the previous pool keeps serving
      this.lastDurationMs = Math.max(this.lastDurationMs, 1000);
    } finally {
      this.computing = false;
    }
    // No pool at all yet (a version waits to serve): compute it here rather than wait for a retry.
    if (!this.current) this.now();
    if (this.again || this.source.version() !== this.current?.version) this.stale();
    this.settle();
  }

  private settle(): void {
    const fresh = !this.computing && !this.timer && this.current?.version === this.source.version();
    this.waiters = this.waiters.filter((w) => {
      if ((w.ready && this.current) || fresh) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  /** Resolves once a pool exists. */
  ready(): Promise<void> {
    if (this.inline) this.now();
    if (this.current) return Promise.resolve();
    if (!this.computing && !this.timer) this.stale();
    return new Promise((resolve) => this.waiters.push({ ready: true, resolve }));
  }

  /** Resolves once the pool reflects the posterior as it is now and nothing is pending. */
  settled(): Promise<void> {
    if (this.inline) this.now();
    if (!this.computing && !this.timer && this.current?.version === this.source.version()) return Promise.resolve();
    if (!this.computing && !this.timer) this.stale();
    return new Promise((resolve) => this.waiters.push({ ready: false, resolve }));
  }
}
