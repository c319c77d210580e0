// The int8 path (src/model/int8-exact.ts) must give exactly the float32 path's answers: same items,
// bit-identical scores, same tie order, filters and exclusions honoured. Both run over the same real
// ONNX model through real onnxruntime sessions, on thousands of random queries, and on adversarial
// factors (ties, huge and tiny norms, zero vectors); a model that cannot take the path keeps float32.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { buildOnnxModel, writeArtifact } from '../../src/model-format/export-onnx.js';
import { encodeModel } from '../../src/model-format/onnx-format.js';
import { servingScorerFactory } from '../../src/model/pool/factory.js';
import { writeFileSync } from 'node:fs';
import { add32, fma32, int8Refusal, quantizeCatalog } from '../../src/model/int8-exact.js';
import { createModelScorer, Int8ExactScorer, OrtScorer } from '../../src/model/ort-scorer.js';
import type { TopKQuery } from '../../src/model/scorer.js';
import { gaussian, rng } from '../../src/util/random.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Spec {
  users: number;
  items: number;
  d: number;
  userFactors: Float32Array;
  itemFactors: Float32Array;
  userBias?: Float32Array;
  itemBias?: Float32Array;
  globalBias?: number;
}

/** Writes the model with the real exporter, loads it back, and builds both scorers. */
async function scorers(spec: Spec) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-int8-'));
  dirs.push(dir);
  await writeArtifact(dir, {
    userIds: Array.from({ length: spec.users }, (_, u) => `u${u}`),
    itemIds: Array.from({ length: spec.items }, (_, i) => `i${i}`),
    factors: spec.d,
    userFactors: spec.userFactors,
    itemFactors: spec.itemFactors,
    userBias: spec.userBias,
    itemBias: spec.itemBias,
    globalBias: spec.globalBias,
    kind: 'explicit',
  });
  const a = await loadArtifact(dir);
  const refusal = int8Refusal(a.factors!, spec.items);
  const reasons: string[] = [];
  const int8 = await createModelScorer(a.onnx, a.signature, spec.items, {
    int8: refusal === null ? quantizeCatalog(a.factors!, spec.items) : null,
    onInt8Refused: (r) => reasons.push(r),
  });
  const fp32 = await OrtScorer.create(a.onnx, a.signature, spec.items);
  return { int8, fp32, refusal, reasons, stats: () => (int8 instanceof Int8ExactScorer ? int8.int8Stats : null) };
}

type Scorers = Awaited<ReturnType<typeof scorers>>;

/** Runs body over both scorers of spec, then closes them. */
async function withScorers<T>(spec: Spec, body: (s: Scorers) => Promise<T>): Promise<T> {
  const s = await scorers(spec);
  try {
    return await body(s);
  } finally {
    await s.int8.close();
    await s.fp32.close();
  }
}

/** Random queries: k from 1 to past the catalog, sorted exclusion lists, masks from dense to almost empty. */
function randomQueries(n: number, users: number, items: number, seed: number): TopKQuery[] {
  const r = rng(seed);
  const masks = [0.5, 0.1, 0.01, 0.001].map((p) => Uint8Array.from({ length: items }, () => (r() < p ? 1 : 0)));
  return Array.from({ length: n }, () => {
    const kPick = r();
    const k = kPick < 0.02 ? 0 : kPick < 0.6 ? 1 + Math.floor(r() * 20) : kPick < 0.95 ? 1 + Math.floor(r() * 200) : items + 5;
    const ex = r() < 0.5 ? null : Int32Array.from(new Set(Array.from({ length: Math.floor(r() * 60) }, () => Math.floor(r() * items)))).sort();
    const allow = r() < 0.7 ? null : masks[Math.floor(r() * masks.length)];
    return { user: Math.floor(r() * users), k, exclude: ex, allow };
  });
}

/** Compares both scorers on the queries, sent in random batches; the number of batches. */
async function expectIdentical(s: Scorers, queries: TopKQuery[], seed: number): Promise<number> {
  const r = rng(seed);
  let batches = 0;
  for (let at = 0; at < queries.length; batches++) {
    const batch = queries.slice(at, at + 1 + Math.floor(r() * 24));
    at += batch.length;
    const [got, want] = await Promise.all([s.int8.topK(batch), s.fp32.topK(batch)]);
    batch.forEach((q, j) => {
      const label = `user ${q.user} k ${q.k} exclude ${q.exclude?.length ?? 0} mask ${q.allow !== null}`;
      expect(Array.from(got[j].items), label).toEqual(Array.from(want[j].items));
      // Bit for bit: the scores' float32 patterns, so -0 and +0 differ too.
      expect(Array.from(new Uint32Array(got[j].scores.buffer, got[j].scores.byteOffset, got[j].scores.length)), label).toEqual(
        Array.from(new Uint32Array(want[j].scores.buffer, want[j].scores.byteOffset, want[j].scores.length)),
      );
    });
  }
  return batches;
}

/** Builds both scorers, compares them on n random queries (seed) and closes them: what the int8 side reported. */
function compareOnRandomQueries(spec: Spec, n: number, seed: number) {
  return withScorers(spec, async (s) => {
    await expectIdentical(s, randomQueries(n, spec.users, spec.items, seed), seed + 1);
    return { stats: s.stats(), reasons: s.reasons, refusal: s.refusal, int8: s.int8 };
  });
}

const normal = (seed: number) => gaussian(rng(seed));
const gaussianArray = (n: number, seed: number, scale = 1) => {
  const g = normal(seed);
  return Float32Array.from({ length: n }, () => g() * scale);
};

describe('exact int8 top-k', () => {
  it('answers 3,000 random queries exactly as float32 (k, exclusions, masks, batches)', async () => {
    const users = 300;
    const items = 5000;
    const d = 32;
    const spec = {
      users,
      items,
      d,
      userFactors: gaussianArray(users * d, 1),
      itemFactors: gaussianArray(items * d, 2, 0.3),
      userBias: gaussianArray(users, 3, 0.5),
      itemBias: gaussianArray(items, 4, 0.5),
      globalBias: 3.25,
    };
    await withScorers(spec, async (s) => {
      expect(s.reasons).toEqual([]);
      expect(s.stats()).not.toBeNull();
      await expectIdentical(s, randomQueries(3000, users, items, 7), 8);
      // Pair scores come from the same float32 emulation.
      const r = rng(9);
      const pu = Int32Array.from({ length: 5000 }, () => Math.floor(r() * users));
      const pi = Int32Array.from({ length: 5000 }, () => Math.floor(r() * items));
      expect(Array.from(await s.int8.scorePairs(pu, pi))).toEqual(Array.from(await s.fp32.scorePairs(pu, pi)));
      const stats = s.stats()!;
      expect(stats.queries).toBe(3000);
      // The near-empty masks (0.1% of the catalog) were scored in full, exactly.
      expect(stats.fallbacks).toBeGreaterThan(0);
      // Most queries are settled by the int8 candidates, each rescoring a small share of the catalog.
      expect(stats.fallbacks).toBeLessThan(stats.queries / 4);
      expect(stats.rescored / (stats.queries - stats.fallbacks)).toBeLessThan(items / 10);
    });
  });

  it('keeps ties in float32 order: duplicated items, coarse factors, equal biases', async () => {
    const users = 60;
    const items = 3000;
    const d = 8;
    const g = normal(11);
    const base = Float32Array.from({ length: 11 * d }, () => Math.round(g() * 4) / 4);
    const itemFactors = Float32Array.from({ length: items * d }, (_, x) => base[(Math.floor(x / d) % 11) * d + (x % d)]);
    const userFactors = Float32Array.from({ length: users * d }, () => Math.round(g() * 2) / 2);
    const { stats } = await compareOnRandomQueries({ users, items, d, userFactors, itemFactors }, 1500, 12);
    expect(stats).not.toBeNull();
  });

  it('stays exact with huge and tiny norms side by side, and zero users and items', async () => {
    const users = 80;
    const items = 4000;
    const d = 16;
    const userFactors = gaussianArray(users * d, 21);
    const itemFactors = gaussianArray(items * d, 22);
    const r = rng(23);
    for (let i = 0; i < items; i++) {
      const pick = r();
      const f = pick < 0.02 ? 1e6 : pick < 0.1 ? 1e-6 : pick < 0.15 ? 0 : pick < 0.17 ? 1e-30 : 1;
      for (let k = 0; k < d; k++) itemFactors[i * d + k] *= f;
      // One component far larger than the rest: a coarse scale for that item.
      if (pick > 0.95) itemFactors[i * d] *= 1e4;
    }
    for (let u = 0; u < users; u += 7) userFactors.fill(0, u * d, (u + 1) * d);
    for (let u = 3; u < users; u += 11) for (let k = 0; k < d; k++) userFactors[u * d + k] *= 1e5;
    const itemBias = Float32Array.from({ length: items }, (_, i) => (i % 13 === 0 ? 1e7 : i % 5 === 0 ? -0 : 0.5));
    const { stats, reasons } = await compareOnRandomQueries({ users, items, d, userFactors, itemFactors, itemBias }, 2000, 24);
    expect(reasons).toEqual([]);
    expect(stats).not.toBeNull();
  });

  for (const times of [30, 300]) {
    it(`settles queries from the int8 candidates with one item ×${times} the others, exactly as float32`, async () => {
      // Before the outliers were bounded apart, this item's bound covered every item TopK did not
      // return: 49 and 50 of 50 queries fell back to the full exact pass.
      const users = 60;
      const items = 20_000;
      const d = 32;
      const itemFactors = gaussianArray(items * d, 61, 0.3);
      for (let k = 0; k < d; k++) itemFactors[5 * d + k] *= times;
      const spec = { users, items, d, userFactors: gaussianArray(users * d, 62), itemFactors, itemBias: gaussianArray(items, 63, 0.1) };
      await withScorers(spec, async (s) => {
        expect(s.reasons).toEqual([]);
        // Every user once, k 10, no filters: the first run settles every batch.
        const batches = await expectIdentical(s, Array.from({ length: users }, (_, user): TopKQuery => ({ user, k: 10, exclude: null, allow: null })), 64);
        const plain = s.stats()!;
        expect(plain.fallbacks).toBe(0);
        expect(plain.runs).toBe(batches);
        // Random k, exclusions and masks: only the near-empty masks are scored in full.
        await expectIdentical(s, randomQueries(600, users, items, 65), 66);
        const all = s.stats()!;
        expect(all.fallbacks).toBeLessThan((all.queries - plain.queries) / 4);
      });
    });
  }

  it('keeps float32 when the probe users would mostly fall back (more far-off items than the outliers hold)', async () => {
    const users = 40;
    const items = 5000;
    const d = 16;
    // 1,000 items with a huge first factor that no user has: ordinary scores, coarse int8 codes, a
    // large bound for each of them.
    const userFactors = gaussianArray(users * d, 71);
    for (let u = 0; u < users; u++) userFactors[u * d] = 0;
    const itemFactors = gaussianArray(items * d, 72);
    for (let i = 0; i < items; i += 5) itemFactors[i * d] = 1e4;
    const { stats, reasons, int8 } = await compareOnRandomQueries({ users, items, d, userFactors, itemFactors }, 300, 73);
    expect(reasons.join(' ')).toMatch(/could not settle \d+ of \d+ probe users/);
    expect(int8).toBeInstanceOf(OrtScorer);
    expect(stats).toBeNull();
  });

  it('keeps float32 for factors that could overflow, with the same answers', async () => {
    const users = 20;
    const items = 500;
    const d = 8;
    const { refusal, stats } = await compareOnRandomQueries({ users, items, d, userFactors: gaussianArray(users * d, 31, 1e16), itemFactors: gaussianArray(items * d, 32, 1e16) }, 200, 33);
    expect(refusal).toMatch(/overflow/);
    expect(stats).toBeNull();
  });

  it('serves through the worker pool (checked once, no float32 session in the workers) with float32 answers', async () => {
    const users = 100;
    const items = 3000;
    const d = 24;
    await withScorers({ users, items, d, userFactors: gaussianArray(users * d, 41), itemFactors: gaussianArray(items * d, 42, 0.2), itemBias: gaussianArray(items, 43) }, async (s) => {
      const a = await loadArtifact(dirs[dirs.length - 1]);
      const logged: string[] = [];
      const log = { debug() {}, info: (_: object, m: string) => logged.push(m), warn: (_: object, m: string) => logged.push(m), error() {} };
      const served = await servingScorerFactory({ workers: 2, intraOpThreads: 1, maxBatchSize: 16, maxBatchDelayMs: 1, int8MinItems: 1000, log })(a);
      try {
        expect(logged).toContain('int8 item factors built (exact float32 re-rank)');
        expect(logged.join(' ')).not.toMatch(/int8 scoring is off/);
        await expectIdentical({ ...s, int8: served }, randomQueries(600, users, items, 44), 45);
      } finally {
        await served.close();
      }
    });
  });

  it('keeps float32 for a model whose graph computes otherwise under the same initializer names', async () => {
    const users = 30;
    const items = 400;
    const d = 8;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-int8-'));
    dirs.push(dir);
    const model = buildOnnxModel({
      userIds: Array.from({ length: users }, (_, u) => `u${u}`),
      itemIds: Array.from({ length: items }, (_, i) => `i${i}`),
      factors: d,
      userFactors: gaussianArray(users * d, 51),
      itemFactors: gaussianArray(items * d, 52),
      kind: 'explicit',
    });
    // scores = item_scores − user offset instead of +: readable factors, another arithmetic.
    const last = model.graph.node[model.graph.node.length - 1];
    model.graph.node[model.graph.node.length - 1] = { ...last, opType: 'Sub' };
    model.graph.initializer = model.graph.initializer.map((t) => (t.name === 'user_bias' ? { ...t, rawData: new Uint8Array(gaussianArray(users, 53).buffer) } : t));
    writeFileSync(path.join(dir, 'model.onnx'), encodeModel(model));
    const a = await loadArtifact(dir);
    const reasons: string[] = [];
    const scorer = await createModelScorer(a.onnx, a.signature, items, { int8: quantizeCatalog(a.factors!, items), onInt8Refused: (r) => reasons.push(r) });
    expect(scorer).toBeInstanceOf(OrtScorer);
    expect(reasons.join(' ')).toMatch(/differ from the exporter's arithmetic/);
    await scorer.close();
  });

  it('fma32 rounds once, also where rounding through float64 would round twice', () => {
    // (1 + 2^-12)² = 1 + 2^-11 + 2^-24 is halfway between two floats; a tiny c decides which way,
    // and the float64 sum loses it.
    const half = 2 ** -24;
    expect(fma32(1 + 2 ** -12, 1 + 2 ** -12, 2 ** -70)).toBe(Math.fround(1 + 2 ** -11 + 2 * half));
    expect(fma32(1 + 2 ** -12, 1 + 2 ** -12, -(2 ** -70))).toBe(Math.fround(1 + 2 ** -11));
    // Exact ties still go to even.
    expect(add32(1, half)).toBe(1);
    expect(Object.is(add32(-0, -0), -0)).toBe(true);
  });
});
