// Rerank rules matched item by item over the pool (round 2's N1: each rule built a whole-catalog mask on
// the event loop, ≈10 ms per rule at 200k items). Differential: FilterIndex.matcher agrees with the mask
// allowed() builds, on random values over the demo catalog and a catalog of awkward values; a real
// Recommender's ruled answers equal rules applied with those masks, and answering them leaves the
// filter-mask cache as it was (no catalog-sized mask is built for a rule).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArtifact, type Artifact } from '../../src/model-format/artifact.js';
import { ensureDemoModel } from '../../src/model-format/demo.js';
import { FilterIndex, type FilterValue } from '../../src/model/filter-index.js';
import { OrtScorer } from '../../src/model/ort-scorer.js';
import { Recommender } from '../../src/model/recommender.js';
import { applyRules, type ScoreRule } from '../../src/model/rerank.js';
import { rng } from '../../src/util/random.js';

let dir: string;
let artifact: Artifact;
let model: Recommender;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-rules-'));
  artifact = await loadArtifact(await ensureDemoModel(dir));
  model = new Recommender(artifact, await OrtScorer.create(artifact.onnx, artifact.signature, artifact.itemIds.length));
});

afterAll(async () => {
  await model?.scorer.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Lists, case and spacing, numbers as strings, booleans, nulls, objects and missing fields. */
const AWKWARD: Record<string, unknown>[] = [
  { tag: 'Comedy', n: 3, flag: true },
  { tag: [' comedy ', 'DRAMA'], n: '4.5', flag: 'true' },
  { tag: null, n: [1, '7', 'x'], flag: false },
  { tag: ['Drama', { x: 1 }], n: -2 },
  { n: '1e1', flag: 'False' },
  { tag: 'sci-fi', n: null, flag: [true, false] },
  { tag: 'Café', n: 0 },
  { tag: 'Cafe\u0301', n: '  8 ' },
];

/** A random value for `field`, drawn from `pool` (the scalars its rows hold, and some they do not). */
function randomValue(rnd: () => number, pool: (string | number | boolean)[]): FilterValue {
  const pick = () => pool[Math.floor(rnd() * pool.length)];
  const list = () => Array.from({ length: 1 + Math.floor(rnd() * 3) }, pick);
  const bound = () => Math.round((rnd() * 30 - 5) * 2) / 2;
  const c = Math.floor(rnd() * 7);
  if (c === 0) return pick();
  if (c === 1) return list();
  if (c === 2) return { not: rnd() < 0.5 ? pick() : list() };
  if (c === 3) return { gte: bound(), lt: bound() + rnd() * 10 };
  if (c === 4) return { gt: bound(), lte: bound() + 5 };
  if (c === 5) return { in: list(), not: pick() };
  return { eq: pick(), gte: bound() };
}

function agree(catalog: Record<string, unknown>[], pools: Record<string, (string | number | boolean)[]>, seed: number): void {
  const index = new FilterIndex(catalog, 1 << 20);
  const rnd = rng(seed);
  const fields = Object.keys(pools);
  for (let t = 0; t < 400; t++) {
    const field = fields[Math.floor(rnd() * fields.length)];
    const value = randomValue(rnd, pools[field]);
    const mask = index.allowed({ [field]: value }).mask;
    const matches = index.matcher(field, value);
    const got = catalog.map((_, i) => (matches(i) ? 1 : 0));
    expect(got, `${field}: ${JSON.stringify(value)}`).toEqual(Array.from(mask));
  }
}

describe('FilterIndex.matcher', () => {
  it('agrees with allowed() on random values over the demo catalog', () => {
    const genres = [...new Set(artifact.catalog!.map((r) => r.genre as string))];
    agree(artifact.catalog!, { genre: [...genres, 'comedy', ' DRAMA ', 'none'], year: [1970, '1984', 1990, 2001, 1999] }, 3);
  });

  it('agrees with allowed() over lists, case, numbers as strings, nulls and missing fields', () => {
    agree(AWKWARD, { tag: ['comedy', 'Drama', 'SCI-FI', 'café', 'x', 1], n: [3, '4.5', 7, '1e1', 8, 'x'], flag: [true, false, 'true', 'false'] }, 7);
  });

  it('refuses what allowed() refuses', () => {
    const index = new FilterIndex(AWKWARD, 1 << 20);
    expect(() => index.matcher('n', { gte: 'x' } as unknown as FilterValue)).toThrow(/finite number/);
    expect(() => index.matcher('n', { near: 1 } as unknown as FilterValue)).toThrow(/unknown operator/);
    expect(() => index.matcher('nosuch', 1)).toThrow(/unknown catalog field/);
  });
});

describe('rules over the rerank pool', () => {
  it('answer as rules applied with catalog masks, without growing the filter-mask cache', async () => {
    const rnd = rng(13);
    const genres = ['Action', 'comedy', 'DRAMA', 'Sci-Fi', 'none'];
    const pools = { genre: genres, year: [1970, '1984', 1990, 2001] };
    const asked: { user: string; rules: ScoreRule[]; items: string[]; scores: number[] }[] = [];
    const before = model.filterCacheBytes;
    for (let t = 0; t < 40; t++) {
      const rules: ScoreRule[] = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
        const field = rnd() < 0.5 ? 'genre' : 'year';
        const value = randomValue(rnd, pools[field]);
        return rnd() < 0.5 ? { field, value, multiply: Math.round((0.2 + rnd() * 3) * 100) / 100 } : { field, value, add: Math.round((rnd() * 4 - 2) * 100) / 100 };
      });
      const user = artifact.userIds[Math.floor(rnd() * artifact.userIds.length)];
      const [list] = await model.recommend({ users: [user], k: 10, filter: null, excludeSeen: true, rerank: { rules } });
      asked.push({ user, rules, items: list.items.map((i) => i.itemId), scores: list.items.map((i) => i.score) });
    }
    expect(model.filterCacheBytes).toBe(before);
    // The reference: the whole unreranked list (the pool, as the demo catalog is smaller than it), the rules by masks.
    for (const a of asked) {
      const [plain] = await model.recommend({ users: [a.user], k: artifact.itemIds.length, filter: null, excludeSeen: true });
      const cands = plain.items.map((i) => ({ item: model.itemIdx(i.itemId)!, score: i.score }));
      const want = applyRules(cands, a.rules, (rule) => model.allowMask({ [rule.field]: rule.value })).slice(0, 10);
      const what = JSON.stringify(a.rules);
      expect(a.items, what).toEqual(want.map((c) => artifact.itemIds[c.item]));
      a.scores.forEach((s, r) => expect(s, what).toBeCloseTo(want[r].score, 3));
    }
  });
});
