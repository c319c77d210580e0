// Adaptive micro-batching as a Scorer that wraps another Scorer. Concurrent topK calls are
// coalesced into one downstream call (one ORT run), and so are concurrent scorePairs calls; the two
// kinds never share a batch. Per-query options (k, exclude, allow) travel with each query, so queries
// with different options can share an ORT run without changing anyone's answer.
//
// The policy, in order:
//  - while nothing runs downstream, a request is dispatched at once with whatever is queued: with no
//    concurrency the delay is never paid;
//  - while a run is in flight and another slot is free (fewer calls in flight than `concurrency`),
//    the free slot takes the queue once spareSlotMinBatch queries wait (or at the delay);
//  - while every slot is busy, requests queue; a completion hands the freed slot the oldest queued
//    work, up to maxBatchSize queries (by the two rules above), so the batch size grows with the load;
//  - a full batch (maxBatchSize queries) is dispatched at once, busy or not;
//  - no request waits in the queue longer than maxBatchDelayMs: the timer is armed for the absolute
//    deadline of the oldest queued request (arrival + delay), never a remainder carried over from an
//    earlier timer, and on expiry everything past its deadline is dispatched even if all slots are busy.
// A call with more queries than maxBatchSize is split over several batches and resolves when all its
// parts have. The clock and timers are injected so tests drive time by hand.
import type { Ranked, Scorer, TopKQuery } from './scorer.js';

export interface BatcherClock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: BatcherClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export type BatchKind = 'topk' | 'pairs';

/** Told about every dispatched batch (metrics); must not throw. */
export interface BatchObserver {
  /** size: queries (topk) or pair rows (pairs) in the batch; queuedMs: time each part waited. */
  batch(kind: BatchKind, size: number, queuedMs: readonly number[]): void;
}

export interface BatcherOptions {
  /** Most queries (or pair rows) in one downstream call. */
  maxBatchSize: number;
  /** Longest a queued request waits for company before it is dispatched anyway (ms). */
  maxBatchDelayMs: number;
  /** Downstream calls that may run at once (the pool's worker count; 1 in-process). */
  concurrency: number;
  /**
   * Queries a free slot waits for while another run is in flight (or until the delay passes).
   * 1 = every free slot takes work at once. Default: half of maxBatchSize (measured best of 1, 1/2, 1/4, 1/8 at 64 connections).
   */
  spareSlotMinBatch?: number;
  clock?: BatcherClock;
  observer?: BatchObserver;
}

/** One queued piece of work: a slice of one caller's request. */
interface Part {
  kind: BatchKind;
  size: number;
  /** Arrival order across both queues. */
  seq: number;
  arrived: number;
  deadline: number;
  /** topk: the queries of this slice; pairs: the rows. */
  queries: TopKQuery[] | null;
  users: Int32Array | null;
  items: Int32Array | null;
  /** Where this slice's answers go in the caller's result. */
  call: Call;
  offset: number;
}

/** One caller's topK or scorePairs, possibly split into several parts. */
interface Call {
  pending: number;
  failed: boolean;
  ranked: Ranked[] | null;
  scores: Float32Array | null;
  resolve: (v: never) => void;
  reject: (e: unknown) => void;
}

export class MicroBatcher implements Scorer {
  private readonly queues: Record<BatchKind, Part[]> = { topk: [], pairs: [] };
  private readonly queued: Record<BatchKind, number> = { topk: 0, pairs: 0 };
  private inFlight = 0;
  private seq = 0;
  private timer: unknown = null;
  private timerDeadline = Infinity;
  private closed = false;
  private readonly idle: (() => void)[] = [];
  private readonly clock: BatcherClock;
  private readonly maxBatch: number;
  private readonly spareMin: number;

  constructor(
    private readonly downstream: Scorer,
    private readonly opts: BatcherOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.maxBatch = Math.max(1, Math.floor(opts.maxBatchSize));
    this.spareMin = Math.max(1, Math.floor(opts.spareSlotMinBatch ?? this.maxBatch / 2));
  }

  get nItems(): number {
    return this.downstream.nItems;
  }

  /** Queries waiting for a batch, and downstream calls running (for tests and diagnostics). */
  get state(): { queued: number; inFlight: number } {
    return { queued: this.queued.topk + this.queued.pairs, inFlight: this.inFlight };
  }

  topK(queries: TopKQuery[]): Promise<Ranked[]> {
    if (queries.length === 0) return Promise.resolve([]);
    return this.submit<Ranked[]>('topk', queries.length, (call, offset, size) => ({
      queries: queries.slice(offset, offset + size),
      users: null,
      items: null,
      call,
      offset,
    }), (call) => {
      call.ranked = new Array(queries.length);
    });
  }

  scorePairs(users: Int32Array, items: Int32Array): Promise<Float32Array> {
    if (users.length !== items.length) return Promise.reject(new Error(`scorePairs: ${users.length} users but ${items.length} items`));
    if (users.length === 0) return Promise.resolve(new Float32Array(0));
    return this.submit<Float32Array>('pairs', users.length, (call, offset, size) => ({
      queries: null,
      users: users.subarray(offset, offset + size),
      items: items.subarray(offset, offset + size),
      call,
      offset,
    }), (call) => {
      call.scores = new Float32Array(users.length);
    });
  }

  /** Dispatches what is queued, waits for running batches, then closes the downstream. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    for (const kind of ['topk', 'pairs'] as const) while (this.queued[kind] > 0) this.dispatch(kind);
    if (this.inFlight > 0) await new Promise<void>((r) => this.idle.push(r));
    await this.downstream.close();
  }

  private submit<T>(
    kind: BatchKind,
    total: number,
    slice: (call: Call, offset: number, size: number) => Pick<Part, 'queries' | 'users' | 'items' | 'call' | 'offset'>,
    init: (call: Call) => void,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the scorer is closed (the model version was replaced)'));
    return new Promise<T>((resolve, reject) => {
      const call: Call = { pending: 0, failed: false, ranked: null, scores: null, resolve: resolve as (v: never) => void, reject };
      init(call);
      const now = this.clock.now();
      const deadline = now + this.opts.maxBatchDelayMs;
      const q = this.queues[kind];
      for (let offset = 0; offset < total; offset += this.maxBatch) {
        const size = Math.min(this.maxBatch, total - offset);
        q.push({ kind, size, seq: this.seq++, arrived: now, deadline, ...slice(call, offset, size) });
        call.pending++;
        this.queued[kind] += size;
      }
      this.pump(kind);
    });
  }

  /** Decides, after new work arrived, what to dispatch now and when to look again. */
  private pump(kind: BatchKind): void {
    // Full batches gain nothing by waiting.
    while (this.queued[kind] >= this.maxBatch) this.dispatch(kind);
    // A free slot takes what is queued now: at once when nothing runs, with enough company otherwise.
    while (this.slotWants(this.queued[kind])) this.dispatch(kind);
    this.armTimer();
  }

  /**
   * Whether a free slot should take `queued` queries now. An idle downstream always does (no
   * concurrency, no delay). While a run is already going, a spare slot waits for spareSlotMinBatch
   * queries (or the delay): on a machine whose cores also serve I/O, two half-empty runs cost nearly
   * twice one full run, because each reads the whole item matrix from memory.
   */
  private slotWants(queued: number): boolean {
    if (queued === 0 || this.inFlight >= this.opts.concurrency) return false;
    return this.inFlight === 0 || queued >= this.spareMin;
  }

  /** Takes up to maxBatchSize from the front of one queue and sends it downstream as one call. */
  private dispatch(kind: BatchKind): void {
    const q = this.queues[kind];
    const parts: Part[] = [];
    let size = 0;
    while (q.length > 0 && size + q[0].size <= this.maxBatch) {
      const p = q.shift()!;
      parts.push(p);
      size += p.size;
    }
    if (parts.length === 0) return;
    this.queued[kind] -= size;
    const now = this.clock.now();
    this.opts.observer?.batch(kind, size, parts.map((p) => now - p.arrived));
    this.inFlight++;
    if (kind === 'topk') {
      const queries = parts.length === 1 ? parts[0].queries! : parts.flatMap((p) => p.queries!);
      this.downstream.topK(queries).then(
        (ranked) => this.settled(parts, () => deliverTopK(parts, size, ranked)),
        (err) => this.settled(parts, () => { throw err; }),
      );
    } else {
      const [users, items] = concatPairs(parts, size);
      this.downstream.scorePairs(users, items).then(
        (scores) => this.settled(parts, () => deliverPairs(parts, size, scores)),
        (err) => this.settled(parts, () => { throw err; }),
      );
    }
  }

  /**
   * A downstream call ended: free its slot first (so callers continuing from their answer find it
   * free), hand out the answers or the error, then give the slot the oldest queued work.
   */
  private settled(parts: Part[], deliver: () => void): void {
    this.inFlight--;
    try {
      deliver();
    } catch (err) {
      for (const p of parts) fail(p.call, err);
    }
    for (;;) {
      const kind = this.oldestKind();
      if (kind === null || !this.slotWants(this.queued[kind])) break;
      this.dispatch(kind);
    }
    this.armTimer();
    if (this.inFlight === 0 && this.idle.length > 0) for (const r of this.idle.splice(0)) r();
  }

  private oldestKind(): BatchKind | null {
    const a = this.queues.topk[0];
    const b = this.queues.pairs[0];
    if (!a) return b ? 'pairs' : null;
    if (!b) return 'topk';
    return a.seq < b.seq ? 'topk' : 'pairs';
  }

  /** Arms (or moves) the one timer to the earliest deadline among queued requests. */
  private armTimer(): void {
    const a = this.queues.topk[0]?.deadline ?? Infinity;
    const b = this.queues.pairs[0]?.deadline ?? Infinity;
    const deadline = Math.min(a, b);
    if (deadline === this.timerDeadline) return;
    this.clearTimer();
    if (deadline === Infinity) return;
    this.timerDeadline = deadline;
    this.timer = this.clock.setTimeout(() => this.onTimer(), Math.max(0, deadline - this.clock.now()));
  }

  private clearTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDeadline = Infinity;
  }

  private onTimer(): void {
    this.timer = null;
    this.timerDeadline = Infinity;
    const now = this.clock.now();
    // Everything whose deadline has come goes now, busy downstream or not.
    for (const kind of ['topk', 'pairs'] as const) {
      const q = this.queues[kind];
      while (q.length > 0 && q[0].deadline <= now) this.dispatch(kind);
    }
    this.armTimer();
  }
}

function deliverTopK(parts: Part[], size: number, ranked: Ranked[]): void {
  if (ranked.length !== size) throw new Error(`scorer answered ${ranked.length} of ${size} queries`);
  let at = 0;
  for (const p of parts) {
    const out = p.call.ranked!;
    for (let j = 0; j < p.size; j++) out[p.offset + j] = ranked[at + j];
    at += p.size;
    partDone(p.call, out);
  }
}

function concatPairs(parts: Part[], size: number): [Int32Array, Int32Array] {
  if (parts.length === 1) return [parts[0].users!, parts[0].items!];
  const users = new Int32Array(size);
  const items = new Int32Array(size);
  let at = 0;
  for (const p of parts) {
    users.set(p.users!, at);
    items.set(p.items!, at);
    at += p.size;
  }
  return [users, items];
}

function deliverPairs(parts: Part[], size: number, scores: Float32Array): void {
  if (scores.length !== size) throw new Error(`scorer answered ${scores.length} of ${size} pairs`);
  let at = 0;
  for (const p of parts) {
    const out = p.call.scores!;
    out.set(scores.subarray(at, at + p.size), p.offset);
    at += p.size;
    partDone(p.call, out);
  }
}

function partDone(call: Call, value: unknown): void {
  if (call.failed) return;
  if (--call.pending === 0) call.resolve(value as never);
}

function fail(call: Call, err: unknown): void {
  if (call.failed || call.pending === 0) return;
  call.failed = true;
  call.reject(err);
}
