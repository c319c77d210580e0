// Re-ranking on the demo model's real catalog and item factors: per-value caps hold and keep the best
// items that fit; MMR with λ = 1 is the input order and with λ < 1 trades relevance for dissimilarity
// (checked against a direct computation of each pick); rules rescore and re-sort as specified; pins
// land at their positions.
import { describe, expect, it } from 'vitest';
import { FilterIndex } from '../../src/model/filter-index.js';
import { applyRules, diversify, pinItems, type Candidate, type ItemSpace, type ScoreRule } from '../../src/model/rerank.js';
import { buildDemo } from '../../src/model-format/demo.js';
import { rng } from '../../src/util/random.js';

const demo = buildDemo();
const space: ItemSpace = { catalog: demo.extras.catalog, itemFactors: demo.model.itemFactors, factors: demo.model.factors };
const nItems = demo.model.itemIds.length;

/** A best-first list of `size` distinct demo items with descending random scores. */
function randomCandidates(u: () => number, size: number): Candidate[] {
  const items = Array.from({ length: nItems }, (_, i) => i).sort(() => u() - 0.5).slice(0, size);
  let score = 10;
  return items.map((item) => ({ item, score: (score -= u() * 0.5) }));
}

function cos(a: number, b: number): number {
  const d = space.factors;
  const f = space.itemFactors!;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let x = 0; x < d; x++) {
    dot += f[a * d + x] * f[b * d + x];
    na += f[a * d + x] ** 2;
    nb += f[b * d + x] ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

const genreOf = (item: number) => String(space.catalog![item].genre);

describe('diversify', () => {
  it('holds the per-value cap and keeps, in order, the best candidates that fit', () => {
    const u = rng(7);
    for (let t = 0; t < 200; t++) {
      const cands = randomCandidates(u, 5 + Math.floor(u() * 80));
      const cap = 1 + Math.floor(u() * 3);
      const n = 1 + Math.floor(u() * 20);
      const got = diversify(cands, n, { field: 'genre', maxPerValue: cap }, space);
      const counts = new Map<string, number>();
      const want: Candidate[] = [];
      for (const c of cands) {
        if (want.length === n) break;
        const g = genreOf(c.item);
        if ((counts.get(g) ?? 0) >= cap) continue;
        counts.set(g, (counts.get(g) ?? 0) + 1);
        want.push(c);
      }
      expect(got).toEqual(want);
    }
  });

  it('caps list fields by each member, case-insensitively; items without the field are uncapped', () => {
    const catalog = [{ tags: ['a', 'B'] }, { tags: ['b'] }, { tags: 'A' }, {}, {}, { tags: ['c'] }];
    const cands = catalog.map((_, item) => ({ item, score: 10 - item }));
    const picked = diversify(cands, 6, { field: 'tags', maxPerValue: 1 }, { catalog, itemFactors: null, factors: 0 });
    expect(picked.map((c) => c.item)).toEqual([0, 3, 4, 5]);
  });

  it('MMR with λ = 1 is the input order (with or without a cap)', () => {
    const u = rng(11);
    for (let t = 0; t < 50; t++) {
      const cands = randomCandidates(u, 40);
      expect(diversify(cands, 10, { mmrLambda: 1 }, space)).toEqual(cands.slice(0, 10));
      expect(diversify(cands, 10, { mmrLambda: 1, field: 'genre', maxPerValue: 2 }, space)).toEqual(diversify(cands, 10, { field: 'genre', maxPerValue: 2 }, space));
    }
  });

  it('MMR with λ < 1 takes each step the best of λ·relevance − (1 − λ)·max similarity, and lowers the similarity of the list', () => {
    const u = rng(13);
    let lessSimilar = 0;
    for (let t = 0; t < 40; t++) {
      const cands = randomCandidates(u, 60);
      const lambda = 0.3 + 0.6 * u();
      const got = diversify(cands, 10, { mmrLambda: lambda }, space);
      // Each pick, recomputed from its definition over what was picked before it.
      const lo = Math.min(...cands.map((c) => c.score));
      const hi = Math.max(...cands.map((c) => c.score));
      const left = [...cands];
      const picked: Candidate[] = [];
      while (picked.length < 10) {
        const value = (c: Candidate) => lambda * ((c.score - lo) / (hi - lo)) - (1 - lambda) * (picked.length === 0 ? 0 : Math.max(...picked.map((p) => cos(p.item, c.item))));
        let best = 0;
        for (let j = 1; j < left.length; j++) if (value(left[j]) > value(left[best]) + 1e-12) best = j;
        picked.push(left.splice(best, 1)[0]);
      }
      expect(got.map((c) => c.item)).toEqual(picked.map((c) => c.item));
      const meanSim = (list: Candidate[]) => {
        let s = 0;
        for (let a = 0; a < list.length; a++) for (let b = a + 1; b < list.length; b++) s += cos(list[a].item, list[b].item);
        return s / ((list.length * (list.length - 1)) / 2);
      };
      if (meanSim(got) < meanSim(cands.slice(0, 10))) lessSimilar++;
    }
    expect(lessSimilar).toBeGreaterThan(28);
  });

  it('λ < 1 passes over a near-duplicate of the first pick for a less similar item', () => {
    // Items 0 and 1 point the same way, item 2 elsewhere; 1 scores just above 2.
    const itemFactors = Float32Array.from([1, 0, 0.99, 0.01, 0, 1]);
    const own: ItemSpace = { catalog: null, itemFactors, factors: 2 };
    const cands = [
      { item: 0, score: 3 },
      { item: 1, score: 2.9 },
      { item: 2, score: 2.8 },
    ];
    expect(diversify(cands, 3, { mmrLambda: 1 }, own).map((c) => c.item)).toEqual([0, 1, 2]);
    expect(diversify(cands, 3, { mmrLambda: 0.5 }, own).map((c) => c.item)).toEqual([0, 2, 1]);
  });

  it('refuses options it cannot honour', () => {
    const cands = randomCandidates(rng(1), 5);
    expect(() => diversify(cands, 3, { mmrLambda: 1.5 }, space)).toThrow(/mmr_lambda must be within \[0, 1\]/);
    expect(() => diversify(cands, 3, { field: 'genre', maxPerValue: 0 }, space)).toThrow(/max_per_value must be an integer ≥ 1/);
    expect(() => diversify(cands, 3, { maxPerValue: 2 }, space)).toThrow(/needs diversify.field/);
    expect(() => diversify(cands, 3, { field: 'genre' }, { ...space, catalog: null })).toThrow(/no catalog/);
    expect(() => diversify(cands, 3, { mmrLambda: 0.5 }, { ...space, itemFactors: null })).toThrow(/no item factors/);
  });
});

describe('applyRules', () => {
  const index = new FilterIndex(space.catalog!, 1 << 20);
  const maskOf = (r: ScoreRule) => index.allowed({ [r.field]: r.value }).mask;

  it('multiplies then adds for the items each rule matches, in order, and re-sorts stably', () => {
    const u = rng(5);
    for (let t = 0; t < 50; t++) {
      const cands = randomCandidates(u, 30);
      const rules: ScoreRule[] = [
        { field: 'genre', value: 'comedy', multiply: 2 },
        { field: 'year', value: { lt: 1990 }, add: -3 },
        { field: 'genre', value: ['drama', 'comedy'], multiply: 0.5, add: 1 },
      ];
      const got = applyRules(cands, rules, maskOf);
      const want = cands.map((c, order) => {
        const { genre, year } = space.catalog![c.item] as { genre: string; year: number };
        let s = c.score;
        if (genre === 'Comedy') s *= 2;
        if (year < 1990) s -= 3;
        if (genre === 'Drama' || genre === 'Comedy') s = s * 0.5 + 1;
        return { item: c.item, score: s, order };
      });
      want.sort((a, b) => b.score - a.score || a.order - b.order);
      expect(got).toEqual(want.map(({ item, score }) => ({ item, score })));
    }
  });

  it('a boost lifts matching items above better-scored ones; a bury sinks them; ties keep the input order', () => {
    const comedy = space.catalog!.findIndex((r) => r.genre === 'Comedy');
    const others = space.catalog!.map((r, i) => (r.genre === 'Comedy' ? -1 : i)).filter((i) => i >= 0).slice(0, 3);
    const cands = [...others.map((item, j) => ({ item, score: 5 - j })), { item: comedy, score: 1 }];
    expect(applyRules(cands, [{ field: 'genre', value: 'comedy', add: 10 }], maskOf)[0]).toEqual({ item: comedy, score: 11 });
    const buried = applyRules(cands, [{ field: 'genre', value: { not: 'comedy' }, multiply: 0 }], maskOf);
    expect(buried.map((c) => c.item)).toEqual([comedy, ...others]); // the three others tie at 0 in input order
    expect(applyRules(cands, [], maskOf)).toEqual(cands);
  });
});

describe('pinItems', () => {
  const list = (items: number[]) => items.map((item, j) => ({ item, score: 10 - j }));

  it('puts pinned items at their positions and shifts the others down, within n', () => {
    const got = pinItems(list([1, 2, 3, 4, 5]), [{ item: 9, position: 1 }, { item: 4, position: 3 }], 5);
    expect(got.map((c) => c.item)).toEqual([9, 1, 4, 2, 3]);
    expect(got[2]).toEqual({ item: 4, score: 7 }); // an item of the list keeps its score
    expect(Number.isNaN(got[0].score)).toBe(true); // one from outside has none
  });

  it('resolves clashes: the first pin of a position wins, an item keeps its first pin, pins past n drop, past the end close up', () => {
    expect(pinItems(list([1, 2, 3]), [{ item: 8, position: 2 }, { item: 9, position: 2 }], 4).map((c) => c.item)).toEqual([1, 8, 9, 2]);
    expect(pinItems(list([1, 2, 3]), [{ item: 3, position: 1 }, { item: 3, position: 3 }], 3).map((c) => c.item)).toEqual([3, 1, 2]);
    expect(pinItems(list([1, 2, 3]), [{ item: 9, position: 4 }], 3).map((c) => c.item)).toEqual([1, 2, 3]);
    expect(pinItems(list([1, 2]), [{ item: 9, position: 5 }], 10).map((c) => c.item)).toEqual([1, 2, 9]);
    expect(pinItems(list([1, 2, 3]), [], 2).map((c) => c.item)).toEqual([1, 2]);
  });

  it('every pin that fits lands where it was asked, on random lists', () => {
    const u = rng(3);
    for (let t = 0; t < 300; t++) {
      const n = 1 + Math.floor(u() * 15);
      const base = list(Array.from({ length: n + 5 }, (_, j) => j));
      const positions = [...new Set(Array.from({ length: 1 + Math.floor(u() * 4) }, () => 1 + Math.floor(u() * n)))];
      const pins = positions.map((position, j) => ({ item: u() < 0.5 ? 100 + j : Math.floor(u() * (n + 5)), position }));
      const distinct = pins.filter((p, j) => pins.findIndex((q) => q.item === p.item) === j);
      const got = pinItems(base, distinct, n);
      expect(got).toHaveLength(n);
      for (const p of distinct) expect(got[p.position - 1].item).toBe(p.item);
      expect(new Set(got.map((c) => c.item)).size).toBe(n);
      const unpinned = got.filter((c) => !distinct.some((p) => p.item === c.item)).map((c) => c.item);
      expect(unpinned).toEqual([...unpinned].sort((a, b) => a - b)); // the others keep their order
    }
  });
});
