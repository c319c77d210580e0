// The micro-batcher in isolation: a hand-driven downstream and fake timers, no ORT and no wall clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MicroBatcher, type BatchKind, type BatcherClock } from '../../src/model/batcher.js';
import type { Ranked, Scorer, TopKQuery } from '../../src/model/scorer.js';

interface Pending<T> {
  args: T;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A downstream whose calls finish only when the test says so. Answers encode their query. */
class ManualScorer implements Scorer {
  readonly nItems = 100;
  topKCalls: Pending<TopKQuery[]>[] = [];
  pairCalls: Pending<[Int32Array, Int32Array]>[] = [];
  closed = false;

  topK(queries: TopKQuery[]): Promise<Ranked[]> {
    return new Promise((resolve, reject) => {
      this.topKCalls.push({ args: queries, resolve: () => resolve(queries.map(answerOf)), reject });
    });
  }
  scorePairs(users: Int32Array, items: Int32Array): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.pairCalls.push({ args: [users, items], resolve: () => resolve(Float32Array.from(users, (u, r) => u * 1000 + items[r])), reject });
    });
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** The downstream's answer to one query: k items starting at the user's index, scored by the user. */
function answerOf(q: TopKQuery): Ranked {
  return { items: Int32Array.from({ length: q.k }, (_, j) => q.user + j), scores: Float32Array.from({ length: q.k }, () => q.user) };
}

const q = (user: number, k = 2, extra: Partial<TopKQuery> = {}): TopKQuery => ({ user, k, exclude: null, allow: null, ...extra });
const fakeClock: BatcherClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
/** Lets resolved promises run their continuations. */
const settle = () => vi.advanceTimersByTimeAsync(0);

describe('MicroBatcher', () => {
  let down: ManualScorer;
  let batches: { kind: BatchKind; size: number; queuedMs: readonly number[] }[];
  const make = (opts: { maxBatchSize?: number; maxBatchDelayMs?: number; concurrency?: number; spareSlotMinBatch?: number } = {}) =>
    new MicroBatcher(down, {
      maxBatchSize: opts.maxBatchSize ?? 8,
      maxBatchDelayMs: opts.maxBatchDelayMs ?? 2,
      concurrency: opts.concurrency ?? 1,
      spareSlotMinBatch: opts.spareSlotMinBatch,
      clock: fakeClock,
      observer: { batch: (kind, size, queuedMs) => batches.push({ kind, size, queuedMs: [...queuedMs] }) },
    });

  beforeEach(() => {
    vi.useFakeTimers();
    down = new ManualScorer();
    batches = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('dispatches a lone request at once when the downstream is idle (no delay paid)', async () => {
    const b = make();
    const p = b.topK([q(7)]);
    // Synchronously, before any time passes.
    expect(down.topKCalls).toHaveLength(1);
    expect(batches).toEqual([{ kind: 'topk', size: 1, queuedMs: [0] }]);
    down.topKCalls[0].resolve();
    expect(await p).toEqual([answerOf(q(7))]);
  });

  it('batches what queued while the downstream was busy and splits the answers back exactly', async () => {
    const b = make({ concurrency: 1 });
    const first = b.topK([q(1)]);
    const a = b.topK([q(10, 1)]);
    const c = b.topK([q(20, 3), q(21, 2)]);
    const d = b.topK([q(30, 4)]);
    expect(down.topKCalls).toHaveLength(1);
    expect(b.state).toEqual({ queued: 4, inFlight: 1 });

    await vi.advanceTimersByTimeAsync(1); // still inside the 2 ms delay
    down.topKCalls[0].resolve();
    await settle();
    // The completion dispatched all four queued queries as one call, in arrival order.
    expect(down.topKCalls).toHaveLength(2);
    expect(down.topKCalls[1].args.map((x) => x.user)).toEqual([10, 20, 21, 30]);
    down.topKCalls[1].resolve();
    expect(await first).toEqual([answerOf(q(1))]);
    expect(await a).toEqual([answerOf(q(10, 1))]);
    expect(await c).toEqual([answerOf(q(20, 3)), answerOf(q(21, 2))]);
    expect(await d).toEqual([answerOf(q(30, 4))]);
    expect(batches.map((x) => x.size)).toEqual([1, 4]);
    expect(batches[1].queuedMs).toEqual([1, 1, 1]);
  });

  it('passes each query through unchanged, so different k, exclusions and filters share a run safely', async () => {
    const b = make({ concurrency: 1 });
    void b.topK([q(0)]);
    const exclude = Int32Array.of(3, 5);
    const allow = new Uint8Array(100).fill(1);
    const mixed = [q(1, 1), q(2, 5, { exclude }), q(3, 3, { allow }), q(4, 9, { exclude, allow })];
    const calls = mixed.map((x) => b.topK([x]));
    down.topKCalls[0].resolve();
    await settle();
    // The very same query objects reach the downstream: nothing is merged or rewritten.
    down.topKCalls[1].args.forEach((x, i) => expect(x).toBe(mixed[i]));
    down.topKCalls[1].resolve();
    for (const [i, call] of calls.entries()) expect(await call).toEqual([answerOf(mixed[i])]);
  });

  it('never holds a request longer than the delay, even while every slot stays busy', async () => {
    const b = make({ maxBatchDelayMs: 2, concurrency: 1 });
    void b.topK([q(1)]); // occupies the only slot, never finishes
    void b.topK([q(2)]);
    await vi.advanceTimersByTimeAsync(1.999);
    expect(down.topKCalls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(0.001);
    expect(down.topKCalls).toHaveLength(2);
    expect(down.topKCalls[1].args.map((x) => x.user)).toEqual([2]);
    expect(batches[1].queuedMs).toEqual([2]);
  });

  it('times each request from its own arrival, not from a timer armed for an earlier one', async () => {
    const b = make({ maxBatchDelayMs: 4, concurrency: 1 });
    void b.topK([q(1)]); // t=0: takes the slot
    await vi.advanceTimersByTimeAsync(1);
    void b.topK([q(2)]); // t=1: queued, due at 5
    await vi.advanceTimersByTimeAsync(1);
    down.topKCalls[0].resolve(); // t=2: the completion sends q2; the slot is busy again
    await settle();
    expect(down.topKCalls.map((c) => c.args[0].user)).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(1);
    void b.topK([q(3)]); // t=3: queued, due at 7 (not at 5, when q2's timer would have fired)
    await vi.advanceTimersByTimeAsync(3);
    expect(down.topKCalls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(down.topKCalls.map((c) => c.args[0].user)).toEqual([1, 2, 3]);
    expect(batches.map((x) => x.queuedMs[0])).toEqual([0, 1, 4]);
  });

  it('dispatches a full batch at once without waiting for a slot or the timer', async () => {
    const b = make({ maxBatchSize: 3, concurrency: 1 });
    void b.topK([q(0)]);
    void b.topK([q(1)]);
    void b.topK([q(2)]);
    expect(down.topKCalls).toHaveLength(1);
    void b.topK([q(3)]);
    expect(down.topKCalls).toHaveLength(2);
    expect(down.topKCalls[1].args.map((x) => x.user)).toEqual([1, 2, 3]);
  });

  it('with spareSlotMinBatch 1, uses every free slot of a concurrent downstream before queueing', async () => {
    const b = new MicroBatcher(down, { maxBatchSize: 8, maxBatchDelayMs: 2, concurrency: 2, spareSlotMinBatch: 1, clock: fakeClock });
    void b.topK([q(0)]);
    void b.topK([q(1)]);
    void b.topK([q(2)]);
    expect(down.topKCalls.map((c) => c.args.length)).toEqual([1, 1]);
    expect(b.state).toEqual({ queued: 1, inFlight: 2 });
  });

  it('gives a spare slot work only with company or at the delay while another run is going', async () => {
    const b = make({ maxBatchSize: 8, concurrency: 2, spareSlotMinBatch: 2 }); // the spare slot wants 2 queries
    void b.topK([q(0)]); // idle downstream: at once
    void b.topK([q(1)]); // one run going, one query waiting: not yet
    expect(down.topKCalls).toHaveLength(1);
    void b.topK([q(2)]); // two waiting: the spare slot takes them
    expect(down.topKCalls.map((c) => c.args.map((x) => x.user))).toEqual([[0], [1, 2]]);
    void b.topK([q(3)]); // both slots busy now
    down.topKCalls[0].resolve();
    await settle();
    // The first slot came free while the second still runs: q3 alone waits for company...
    expect(down.topKCalls).toHaveLength(2);
    // ...but never longer than the delay.
    await vi.advanceTimersByTimeAsync(2);
    expect(down.topKCalls.map((c) => c.args.map((x) => x.user))).toEqual([[0], [1, 2], [3]]);
    // With nothing running, a request goes at once again.
    down.topKCalls[1].resolve();
    down.topKCalls[2].resolve();
    await settle();
    void b.topK([q(4)]);
    expect(down.topKCalls).toHaveLength(4);
  });

  it('splits a call larger than maxBatchSize over several runs and reassembles it in order', async () => {
    const b = make({ maxBatchSize: 3, concurrency: 4 });
    const queries = Array.from({ length: 7 }, (_, i) => q(i, 1 + (i % 3)));
    const p = b.topK(queries);
    expect(down.topKCalls.map((c) => c.args.length)).toEqual([3, 3, 1]);
    // Finish out of order.
    down.topKCalls[2].resolve();
    down.topKCalls[0].resolve();
    down.topKCalls[1].resolve();
    expect(await p).toEqual(queries.map(answerOf));
  });

  it('batches pair scoring separately from top-k and splits the scores back', async () => {
    const b = make({ concurrency: 1 });
    void b.topK([q(0)]);
    const p1 = b.scorePairs(Int32Array.of(1, 2), Int32Array.of(5, 6));
    const t1 = b.topK([q(9)]);
    const p2 = b.scorePairs(Int32Array.of(3), Int32Array.of(7));
    down.topKCalls[0].resolve();
    await settle();
    // The oldest queued work (the pairs) took the free slot; top-k followed when its deadline came.
    expect(down.pairCalls).toHaveLength(1);
    expect(Array.from(down.pairCalls[0].args[0])).toEqual([1, 2, 3]);
    expect(Array.from(down.pairCalls[0].args[1])).toEqual([5, 6, 7]);
    await vi.advanceTimersByTimeAsync(2);
    expect(down.topKCalls).toHaveLength(2);
    expect(down.topKCalls[1].args.map((x) => x.user)).toEqual([9]);
    down.pairCalls[0].resolve();
    down.topKCalls[1].resolve();
    expect(Array.from(await p1)).toEqual([1005, 2006]);
    expect(Array.from(await p2)).toEqual([3007]);
    expect(await t1).toEqual([answerOf(q(9))]);
    expect(batches.map((x) => [x.kind, x.size])).toEqual([['topk', 1], ['pairs', 3], ['topk', 1]]);
  });

  it('fails only the callers of a failed batch and keeps serving', async () => {
    const b = make({ concurrency: 1 });
    const first = b.topK([q(0)]);
    const second = b.topK([q(1)]);
    down.topKCalls[0].reject(new Error('worker died'));
    await expect(first).rejects.toThrow('worker died');
    await settle();
    down.topKCalls[1].resolve();
    expect(await second).toEqual([answerOf(q(1))]);
    const third = b.topK([q(2)]);
    down.topKCalls[2].resolve();
    expect(await third).toEqual([answerOf(q(2))]);
  });

  it('rejects a split call once, when any of its parts fails', async () => {
    const b = make({ maxBatchSize: 2, concurrency: 4 });
    const p = b.topK([q(0), q(1), q(2)]);
    down.topKCalls[0].reject(new Error('boom'));
    down.topKCalls[1].resolve();
    await expect(p).rejects.toThrow('boom');
  });

  it('rejects a mismatched answer instead of splitting it wrongly', async () => {
    const bad: Scorer = { nItems: 1, topK: async () => [], scorePairs: async () => new Float32Array(5), close: async () => undefined };
    const b = new MicroBatcher(bad, { maxBatchSize: 4, maxBatchDelayMs: 1, concurrency: 1, clock: fakeClock });
    await expect(b.topK([q(0)])).rejects.toThrow('answered 0 of 1');
    await expect(b.scorePairs(Int32Array.of(1), Int32Array.of(2))).rejects.toThrow('answered 5 of 1');
  });

  it('on close dispatches what is queued, waits for it, then closes the downstream', async () => {
    const b = make({ concurrency: 1 });
    const first = b.topK([q(0)]);
    const queued = b.topK([q(1)]);
    const closing = b.close();
    expect(down.topKCalls).toHaveLength(2);
    await settle();
    expect(down.closed).toBe(false);
    down.topKCalls[0].resolve();
    down.topKCalls[1].resolve();
    await closing;
    expect(down.closed).toBe(true);
    expect(await first).toHaveLength(1);
    expect(await queued).toHaveLength(1);
    await expect(b.topK([q(2)])).rejects.toThrow('closed');
  });

  it('answers empty calls without touching the downstream', async () => {
    const b = make();
    expect(await b.topK([])).toEqual([]);
    expect((await b.scorePairs(new Int32Array(0), new Int32Array(0))).length).toBe(0);
    expect(down.topKCalls).toHaveLength(0);
    expect(b.nItems).toBe(100);
  });
});
