// Recent predictions by puid, so feedback may carry only `response.meta.puid` and a reward. Bounded
// by count (oldest dropped first) and by age; only what feedback needs is kept: per user, the items
// shown, the strategy that chose them and which of them filled exploration slots.
import type { PredictionRecord } from '../protocol/dataplane.js';

export interface ShownList {
  userId: string;
  strategy: 'cold_start' | 'personalized' | 'pairs';
  items: string[];
  /** Items of the list that came from exploration slots. */
  explored: Set<string> | null;
}

export interface RememberedPrediction {
  puid: string;
  modelVersion: string;
  at: number;
  lists: ShownList[];
}

export interface PredictionMemoryOptions {
  /** Most predictions remembered. */
  capacity: number;
  /** Oldest a prediction may be and still take feedback by puid alone (ms). */
  ttlMs: number;
}

export const PREDICTION_MEMORY_DEFAULTS: PredictionMemoryOptions = { capacity: 50_000, ttlMs: 24 * 3600_000 };

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

export class PredictionMemory {
  readonly options: PredictionMemoryOptions;
  private readonly entries = new Map<string, RememberedPrediction>();

  constructor(options: Partial<PredictionMemoryOptions> = {}, private readonly now: () => number = Date.now) {
    this.options = { ...PREDICTION_MEMORY_DEFAULTS, ...options };
  }

  get size(): number {
    return this.entries.size;
  }

  remember(record: PredictionRecord): void {
    if (this.options.capacity <= 0) return;
    const entry: RememberedPrediction = { puid: record.puid, modelVersion: record.modelVersion, at: this.now(), lists: shownLists(record) };
    this.entries.delete(record.puid); // a reused puid moves to the newest end
    this.entries.set(record.puid, entry);
    while (this.entries.size > this.options.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  get(puid: string): RememberedPrediction | undefined {
    const e = this.entries.get(puid);
    if (!e) return undefined;
    if (this.now() - e.at > this.options.ttlMs) {
      this.entries.delete(puid);
      return undefined;
    }
    return e;
  }
}
