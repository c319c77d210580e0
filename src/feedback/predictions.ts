// Recent predictions by puid, so feedback may carry only `response.meta.puid` and a reward, and so what
// was shown comes from the server's own record rather than the client's claim. Bounded by count, by
// age and by (estimated) bytes, oldest dropped first. Only what feedback needs is kept: per user, the
// items shown, the strategy that chose them and which of them filled exploration slots; each entry is
// packed into one string, since a 1,000-pair prediction kept as arrays of small strings costs ~80 KB.
import { PREDICTION_MEMORY_DEFAULTS, type PredictionMemoryOptions } from '../config/predictions.js';
import type { PredictionRecord, ShownList } from '../core/types.js';


export interface RememberedPrediction {
  puid: string;
  modelVersion: string;
  at: number;
  lists: ShownList[];
}


/**
 * Fixed cost of one entry besides its strings: the Map slot, the entry object and the string headers.
 * Strings are counted at 2 bytes a character (V8 keeps non-Latin-1 text as UTF-16), so the estimate is
 * an upper bound for ASCII ids.
 */
const ENTRY_OVERHEAD_BYTES = 200;
/** Cost of one remembered feedback fingerprint besides its text (Map slot, promise). */
const FINGERPRINT_OVERHEAD_BYTES = 120;
/** Distinct feedbacks per prediction remembered for de-duplication (oldest forgotten first). */
const MAX_FINGERPRINTS_PER_PREDICTION = 16;

/** What a prediction showed, per user. */
export function shownLists(record: Pick<PredictionRecord, 'input' | 'output'>): ShownList[] {
  const out = record.output;
  if (out.op === 'recommend') {
    return out.recommendations.map((rec) => {
      let explored: Set<string> | null = null;
      for (const it of rec.items) if (it.fields && (it.fields as { exploration?: unknown }).exploration === true) (explored ??= new Set()).add(it.itemId);
      return { userId: rec.userId, strategy: rec.strategy, items: rec.items.map((it) => it.itemId), explored };
    });
  }
  // Pair scores: each (user, item) pair was an impression of that item for that user.
  const byUser = new Map<string, string[]>();
  if (record.input.op === 'pairs') {
    for (const [u, i] of record.input.pairs) {
      const l = byUser.get(u) ?? [];
      l.push(i);
      byUser.set(u, l);
    }
  }
  return [...byUser].map(([userId, items]) => ({ userId, strategy: 'pairs' as const, items, explored: null }));
}

const STRATEGY_CODE = { cold_start: 'c', personalized: 'p', pairs: 'x' } as const;
const CODE_STRATEGY: Record<string, ShownList['strategy']> = { c: 'cold_start', p: 'personalized', x: 'pairs' };
type PackedList = [userId: string, strategy: string, items: string[], explored: string[] | 0];

/** One JSON string per prediction: a single heap object however many items it showed. */
export function packLists(lists: ShownList[]): string {
  return JSON.stringify(lists.map((l): PackedList => [l.userId, STRATEGY_CODE[l.strategy], l.items, l.explored ? [...l.explored] : 0]));
}

export function unpackLists(packed: string): ShownList[] {
  return (JSON.parse(packed) as PackedList[]).map(([userId, s, items, explored]) => ({
    userId,
    strategy: CODE_STRATEGY[s],
    items,
    explored: explored ? new Set(explored) : null,
  }));
}

/** A prediction as remembered: its lists packed into one string (packLists). */
export interface PackedPrediction {
  puid: string;
  modelVersion: string;
  /** When it was answered (ms since the epoch). */
  at: number;
  packed: string;
}

interface Entry {
  puid: string;
  modelVersion: string;
  at: number;
  packed: string;
  bytes: number;
  /** Feedback about this prediction by fingerprint: settles true once stored, false if it was not. */
  feedback: Map<string, Promise<boolean>> | null;
}

/** The outcome of claiming a feedback fingerprint: a duplicate, or the right to store it (then settle). */
/**
 * `followUp`: another feedback about this prediction (a different reward or truth) was already stored.
 * A prediction is learnt from once: otherwise one real prediction, fed back 300 times, counts 300 wins.
 */
export type FeedbackClaim = { duplicate: true } | { duplicate: false; followUp: boolean; settle(stored: boolean): void };

export class PredictionMemory {
  /** Ids that named more than one prediction, with when that was last seen. */
  private readonly reused = new Map<string, number>();
  readonly options: PredictionMemoryOptions;
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;

  constructor(options: Partial<PredictionMemoryOptions> = {}, private readonly now: () => number = Date.now) {
    this.options = { ...PREDICTION_MEMORY_DEFAULTS, ...options };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Estimated bytes held (never above options.maxBytes). */
  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Remembers a prediction; returns what was kept (the packed lists, for the shared memory to reuse
   * without packing twice), or undefined when the memory is off or the entry exceeds its budget.
   */
  remember(record: PredictionRecord): PackedPrediction | undefined {
    if (this.options.capacity <= 0) return undefined;
    const packed = packLists(shownLists(record));
    const at = this.now();
    // One id, two different predictions (a client that sends a constant request id, or someone reusing
    // another's): feedback by that id alone can no longer say which was meant, so neither is credited.
    // A retry that showed the same lists is the same prediction and stays remembered.
    const earlier = this.live(record.puid);
    if (this.isReused(record.puid) || (earlier && earlier.packed !== packed)) {
      this.forget(record.puid);
      this.markReused(record.puid, at);
      return undefined;
    }
    return this.keep(record.puid, record.modelVersion, at, packed) ? { puid: record.puid, modelVersion: record.modelVersion, at, packed } : undefined;
  }

  /** Whether `puid` named more than one recent prediction (feedback by it alone is then not attributed). */
  isReused(puid: string): boolean {
    const at = this.reused.get(puid);
    if (at === undefined) return false;
    if (this.now() - at <= this.options.ttlMs) return true;
    this.reused.delete(puid);
    return false;
  }

  private markReused(puid: string, at: number): void {
    this.reused.delete(puid);
    this.reused.set(puid, at);
    // Bounded like the memory itself: the oldest marks go first.
    while (this.reused.size > this.options.capacity) this.reused.delete(this.reused.keys().next().value!);
  }

  /**
   * Takes in a prediction another replica served (read from the shared memory), so later feedback
   * about it on this replica, retries included, finds it here and is de-duplicated here.
   */
  adopt(p: PackedPrediction): void {
    if (this.options.capacity <= 0 || this.entries.has(p.puid)) return;
    this.keep(p.puid, p.modelVersion, p.at, p.packed);
  }

  private keep(puid: string, modelVersion: string, at: number, packed: string): boolean {
    this.forget(puid); // a reused puid moves to the newest end
    const bytes = ENTRY_OVERHEAD_BYTES + 2 * (puid.length + modelVersion.length + packed.length);
    if (bytes > this.options.maxBytes) return false; // larger than the whole budget: feedback must carry its payloads
    this.entries.set(puid, { puid, modelVersion, at, packed, bytes, feedback: null });
    this.totalBytes += bytes;
    this.evict(this.now());
    return this.entries.has(puid);
  }

  get(puid: string): RememberedPrediction | undefined {
    const e = this.live(puid);
    return e && { puid: e.puid, modelVersion: e.modelVersion, at: e.at, lists: unpackLists(e.packed) };
  }

  /**
   * Claims a feedback about a remembered prediction, named by a fingerprint of what it says (reward,
   * truth). An identical feedback already stored makes this one a duplicate; one still being stored
   * is waited for (so two concurrent retries store once). Unknown puids are never duplicates.
   */
  async claimFeedback(puid: string, fingerprint: string): Promise<FeedbackClaim> {
    const e = this.live(puid);
    if (!e) return { duplicate: false, followUp: false, settle: () => undefined };
    for (let prior = e.feedback?.get(fingerprint); prior; prior = e.feedback?.get(fingerprint)) {
      if (await prior) return { duplicate: true };
      // That attempt was not stored (and removed itself): this one may try, unless another got there first.
    }
    // Any other feedback about this prediction, stored (or being stored) before this one, makes it a follow-up.
    let followUp = false;
    for (const other of [...(e.feedback?.values() ?? [])]) if (await other) followUp = true;
    let settle!: (stored: boolean) => void;
    const pending = new Promise<boolean>((resolve) => (settle = resolve));
    const map = (e.feedback ??= new Map());
    if (map.size >= MAX_FINGERPRINTS_PER_PREDICTION) {
      const oldest = map.keys().next().value!;
      map.delete(oldest);
      this.grow(e, -(FINGERPRINT_OVERHEAD_BYTES + 2 * oldest.length));
    }
    map.set(fingerprint, pending);
    this.grow(e, FINGERPRINT_OVERHEAD_BYTES + 2 * fingerprint.length);
    return {
      duplicate: false,
      followUp,
      settle: (stored) => {
        if (!stored && map.get(fingerprint) === pending) {
          map.delete(fingerprint);
          this.grow(e, -(FINGERPRINT_OVERHEAD_BYTES + 2 * fingerprint.length));
        }
        settle(stored);
      },
    };
  }

  private live(puid: string): Entry | undefined {
    const e = this.entries.get(puid);
    if (!e) return undefined;
    if (this.now() - e.at > this.options.ttlMs) {
      this.forget(puid);
      return undefined;
    }
    return e;
  }

  private forget(puid: string): void {
    const e = this.entries.get(puid);
    if (!e) return;
    this.entries.delete(puid);
    this.totalBytes -= e.bytes;
  }

  /** Entry sizes change after insertion (fingerprints); only a still-remembered entry counts. */
  private grow(e: Entry, delta: number): void {
    e.bytes += delta;
    if (this.entries.get(e.puid) === e) {
      this.totalBytes += delta;
      if (delta > 0) this.evict(this.now());
    }
  }

  /** Drops from the oldest end: expired entries, then whatever exceeds the count or the byte budget. */
  private evict(now: number): void {
    for (const e of this.entries.values()) {
      const over = this.entries.size > this.options.capacity || this.totalBytes > this.options.maxBytes || now - e.at > this.options.ttlMs;
      if (!over) break;
      this.forget(e.puid);
    }
  }
}
