// The prediction memory is bounded by bytes as well as by count and age: many 1,000-pair predictions
// (the retention found by the attack review: ~80 KB each when kept as arrays) stay under the budget,
// the newest are still there for feedback by puid, and the de-duplication fingerprints count too.
import { describe, expect, it } from 'vitest';
import { PredictionMemory } from '../../src/feedback/predictions.js';
import type { PredictionRecord } from '../../src/core/types.js';

function pairRecord(n: number, pairs = 1000): PredictionRecord {
  const list: [string, string][] = Array.from({ length: pairs }, (_, j) => [`user-${n}-${j % 50}`, String(1 + ((n + j) % 120))]);
  return { puid: `puid-${n}`, modelVersion: 'demo-1', input: { op: 'pairs', pairs: list }, output: { op: 'pairs', scores: new Float32Array(pairs) } as any };
}

describe('PredictionMemory byte budget', () => {
  it('holds many 1,000-pair predictions under its byte budget and keeps the newest for feedback', () => {
    const maxBytes = 2 * 1024 * 1024;
    const mem = new PredictionMemory({ capacity: 50_000, ttlMs: 3600_000, maxBytes });
    let peak = 0;
    for (let n = 0; n < 3000; n++) {
      mem.remember(pairRecord(n));
      peak = Math.max(peak, mem.bytes);
    }
    expect(peak).toBeLessThanOrEqual(maxBytes);
    expect(mem.size).toBeLessThan(3000); // the byte budget, not the count cap, decided
    expect(mem.size).toBeGreaterThan(50);
    const newest = mem.get('puid-2999')!;
    expect(newest.lists.reduce((s, l) => s + l.items.length, 0)).toBe(1000);
    expect(newest.lists[0]).toMatchObject({ userId: 'user-2999-0', strategy: 'pairs', explored: null });
    expect(newest.lists[0].items.slice(0, 2)).toEqual([String(1 + (2999 % 120)), String(1 + ((2999 + 50) % 120))]);
    expect(mem.get('puid-0')).toBeUndefined(); // the oldest went first
    console.log(`[prediction memory] 3000 × 1,000-pair predictions: ${mem.size} kept in ${(mem.bytes / 1024).toFixed(0)} KiB (budget ${maxBytes / 1024} KiB, ≈${(mem.bytes / mem.size / 1024).toFixed(1)} KiB each)`);
  });

  it('keeps the count cap and the TTL, and drops what is larger than the whole budget', async () => {
    let now = 0;
    const mem = new PredictionMemory({ capacity: 3, ttlMs: 1000, maxBytes: 1 << 20 }, () => now);
    for (let n = 0; n < 5; n++) mem.remember(pairRecord(n, 2));
    expect(mem.size).toBe(3);
    expect(mem.get('puid-1')).toBeUndefined();
    expect(mem.get('puid-4')).toBeDefined();
    now = 1001;
    expect(mem.get('puid-4')).toBeUndefined();
    mem.remember(pairRecord(9, 2));
    expect(mem.size).toBe(1); // expired entries are dropped from the oldest end on insert
    const tiny = new PredictionMemory({ capacity: 10, ttlMs: 1000, maxBytes: 1000 });
    tiny.remember(pairRecord(1, 1000));
    expect(tiny.size).toBe(0);
    expect(tiny.bytes).toBe(0);
  });

  it('counts feedback fingerprints in the budget; a stored one makes the next identical claim a duplicate', async () => {
    const mem = new PredictionMemory({ capacity: 10, ttlMs: 60_000, maxBytes: 1 << 20 });
    mem.remember(pairRecord(1, 3));
    const before = mem.bytes;
    const first = await mem.claimFeedback('puid-1', '1|*');
    expect(first.duplicate).toBe(false);
    expect(mem.bytes).toBeGreaterThan(before);
    // A concurrent identical claim waits for the first: stored → duplicate.
    const second = mem.claimFeedback('puid-1', '1|*');
    if (!first.duplicate) first.settle(true);
    expect((await second).duplicate).toBe(true);
    // A failed attempt frees the fingerprint, so the retry may store.
    const a = await mem.claimFeedback('puid-1', '0.5|*');
    const b = mem.claimFeedback('puid-1', '0.5|*');
    if (!a.duplicate) a.settle(false);
    const retry = await b;
    expect(retry.duplicate).toBe(false);
    expect((await mem.claimFeedback('unknown', '1|*')).duplicate).toBe(false);
  });
});

describe('PredictionMemory and a reused id', () => {
  const record = (puid: string, user: string): PredictionRecord => ({ puid, modelVersion: 'demo-1', input: { op: 'pairs', pairs: [[user, '7']] }, output: { op: 'pairs', scores: [1] } });

  it('credits neither prediction when one id names two different ones, and forgets that after the TTL', () => {
    let now = 0;
    const mem = new PredictionMemory({ capacity: 100, ttlMs: 1000, maxBytes: 1 << 20 }, () => now);
    mem.remember(record('1', 'user-10'));
    expect(mem.get('1')?.lists[0].userId).toBe('user-10');
    expect(mem.remember(record('1', 'attacker'))).toBeUndefined();
    expect(mem.get('1')).toBeUndefined();
    expect(mem.isReused('1')).toBe(true);
    // A third prediction under the id does not make it usable again.
    mem.remember(record('1', 'user-10'));
    expect(mem.get('1')).toBeUndefined();
    now = 1500;
    expect(mem.isReused('1')).toBe(false);
    mem.remember(record('1', 'user-10'));
    expect(mem.get('1')?.lists[0].userId).toBe('user-10');
  });

  it('keeps a retry that showed the same lists', () => {
    const mem = new PredictionMemory({ capacity: 100, ttlMs: 1000, maxBytes: 1 << 20 });
    mem.remember(record('r', 'user-10'));
    mem.remember(record('r', 'user-10'));
    expect(mem.isReused('r')).toBe(false);
    expect(mem.get('r')?.lists[0].userId).toBe('user-10');
  });
});
