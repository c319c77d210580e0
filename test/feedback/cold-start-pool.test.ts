// Cold start from a pool of Thompson draw vectors (computed on the draw worker), scored by posterior
// means: per-user answers stay
// the same between posterior changes and differ across users; filters and exclusions hold, also past
// a vector's sorted prefix; k items come back whenever k are allowed; and arms exist only for items
// a loaded model's catalog lists.
import { afterAll, describe, expect, it } from 'vitest';
import { ThompsonBandit, type BanditSettings } from '../../src/feedback/bandit.js';
import type { Artifact } from '../../src/model-format/artifact.js';
import { Recommender, type RecommenderOptions } from '../../src/model/recommender.js';
import type { Scorer } from '../../src/model/scorer.js';

const noScorer: Scorer = { nItems: 0, topK: async () => [], scorePairs: async () => new Float32Array(0), close: async () => undefined };
const GENRES = ['Comedy', 'Drama', 'Action', 'Noir'];

/** A model with n items ("i0".."i{n-1}"), genre by index (every 100th item is "Rare"), no users. */
function model(n: number, learning?: RecommenderOptions['learning']): Recommender {
  const itemIds = Array.from({ length: n }, (_, i) => `i${i}`);
  const artifact = {
    dir: '/nowhere',
    name: 't',
    version: 'v',
    userIds: [],
    itemIds,
    catalog: itemIds.map((_, i) => ({ genre: i % 100 === 7 ? 'Rare' : GENRES[i % 4] })),
    popularity: Float64Array.from(itemIds, (_, i) => (i * 7919) % 1000),
    seen: null,
    ratingRange: null,
    factors: null,
    settings: {},
    metadata: {},
  } as unknown as Artifact;
  return new Recommender(artifact, noScorer, { learning });
}

const bandits: ThompsonBandit[] = [];
async function setup(n: number, settings: Partial<BanditSettings> = {}) {
  const bandit = new ThompsonBandit({ seed: 11, poolRefreshMs: 0, ...settings });
  bandits.push(bandit);
  let policy!: ReturnType<ThompsonBandit['policyFor']>;
  const rec = model(n, (r) => {
    policy = bandit.policyFor(r);
    return { coldStart: policy, explorer: policy };
  });
  await rec.ready();
  return { bandit, rec, policy };
}
afterAll(async () => {
  for (const b of bandits) await b.close();
});

const users = (count: number) => Array.from({ length: count }, (_, u) => `new-${u}`);
const ids = (r: { items: { itemId: string }[] }) => r.items.map((x) => x.itemId);

describe('cold start from the draw pool', () => {
  it('answers each user the same until the posterior changes, differently across users', async () => {
    const { bandit, rec, policy } = await setup(3000);
    expect(policy.pool.current).not.toBeNull(); // computed by the worker before the model serves
    const ask = () => rec.recommend({ users: users(40), k: 10, excludeSeen: false, filter: null });
    const first = await ask();
    expect(first.every((r) => r.strategy === 'cold_start' && r.items.length === 10)).toBe(true);
    expect((await ask()).map(ids)).toEqual(first.map(ids));
    const distinct = new Set(first.map((r) => ids(r).join(',')));
    expect(distinct.size).toBeGreaterThanOrEqual(5); // 16 vectors shared by 40 users
    // Scores are the posterior means (expected rewards); the draws, kept internal, set the order.
    for (const r of first) for (const it of r.items) expect(it.score).toBeCloseTo(policy.mean(Number(it.itemId.slice(1))), 5);

    // One item is rewarded heavily: once the pool is recomputed it tops every user's list.
    bandit.update(Array.from({ length: 400 }, () => ({ itemId: 'i1234', successes: 1, failures: 0 })));
    expect((await ask()).map(ids)).toEqual(first.map(ids)); // the previous pool serves until the next is in
    await policy.settled();
    const after = await ask();
    expect(after.map(ids)).not.toEqual(first.map(ids));
    for (const r of after) expect(ids(r)[0]).toBe('i1234');
  });

  it('is the same pool whether the worker computed it or the main thread did', async () => {
    const viaWorker = (await setup(2000)).policy.pool.current!;
    const bandit = new ThompsonBandit({ seed: 11, poolRefreshMs: 0 });
    bandits.push(bandit);
    const inline = bandit.policyFor(model(2000)).pool.now(); // no await: computed here
    expect(Array.from(inline.items)).toEqual(Array.from(viaWorker.items));
    expect(Array.from(inline.scores)).toEqual(Array.from(viaWorker.scores));
  });

  it('respects filters and exclusions, past the sorted prefix too, and returns k when k are allowed', async () => {
    // A 64-item prefix over 5,000 items: "Rare" (50 items) is mostly found past it.
    const { rec, policy } = await setup(5000, { poolPrefix: 64, poolVectors: 4 });
    const genreOf = (id: string) => rec.artifact.catalog![Number(id.slice(1))].genre as string;
    for (const [genre, k] of [['comedy', 30], ['RARE', 20], ['Rare', 50], ['rare', 80]] as const) {
      const out = await rec.recommend({ users: users(12), k, excludeSeen: false, filter: { genre } });
      for (const r of out) {
        expect(r.items.length).toBe(genre.toLowerCase() === 'rare' ? Math.min(k, 50) : k);
        expect(new Set(ids(r)).size).toBe(r.items.length);
        for (const id of ids(r)) expect(genreOf(id).toLowerCase()).toBe(genre.toLowerCase());
      }
      // Deterministic per user, also for the part that comes from past the prefix.
      const again = await rec.recommend({ users: users(12), k, excludeSeen: false, filter: { genre } });
      expect(again.map(ids)).toEqual(out.map(ids));
    }
    // Exclusions (unsorted on purpose), with and without a filter.
    const allow = rec.allowed({ genre: 'rare' });
    const full = policy.rank(50, allow, null, 'someone');
    expect(full.items.length).toBe(50);
    const dropped = Int32Array.from([full.items[0], full.items[10], full.items[49]]).reverse();
    const less = policy.rank(50, allow, dropped, 'someone');
    expect(less.items.length).toBe(47);
    expect(Array.from(less.items)).toEqual(Array.from(full.items).filter((i) => !dropped.includes(i)));
    const top = policy.rank(100, null, null, 'someone');
    const noTop = policy.rank(100, null, Int32Array.from(top.items.subarray(0, 80)).sort(), 'someone');
    expect(noTop.items.length).toBe(100); // the prefix (64) runs out: the tail fills in
    for (const i of noTop.items.subarray(0, 20)) expect(Array.from(top.items.subarray(80))).toContain(i);
    // Nothing matches: an empty list.
    const none = await rec.recommend({ users: users(3), k: 5, excludeSeen: false, filter: { genre: 'western' } });
    expect(none.map((r) => r.items)).toEqual([[], [], []]);
  });
});

describe('popularity cold start (no feedback loop)', () => {
  it('answers the most popular allowed items, walking only the allowed ones', async () => {
    const rec = model(5000);
    const pop = rec.artifact.popularity;
    const genreOf = (i: number) => rec.artifact.catalog![i].genre as string;
    for (const genre of ['rare', 'Comedy']) {
      const out = await rec.recommend({ users: ['a', 'b'], k: 25, excludeSeen: false, filter: { genre } });
      const want = Array.from(pop.keys())
        .filter((i) => genreOf(i).toLowerCase() === genre.toLowerCase())
        .sort((x, y) => pop[y] - pop[x] || x - y)
        .slice(0, 25)
        .map((i) => `i${i}`);
      for (const r of out) expect(ids(r)).toEqual(want);
    }
  });
});

describe('bandit arms are bounded by the catalog', () => {
  it('ignores updates for ids no loaded model lists', async () => {
    const { bandit } = await setup(50);
    const ignored = bandit.update([
      { itemId: 'i3', successes: 1, failures: 0 },
      { itemId: '<script>alert(1)</script>', successes: 1, failures: 0 },
      { itemId: 'i999', successes: 0, failures: 1 },
    ]);
    expect(ignored).toBe(2);
    expect(bandit.arms).toBe(1);
    expect(bandit.countsOf('i999')).toEqual({ successes: 0, failures: 0, trials: 0 });
    expect(bandit.countsOf('i3').trials).toBe(1);
    const version = bandit.version;
    bandit.update([{ itemId: 'junk', successes: 1, failures: 0 }]);
    expect(bandit.version).toBe(version); // nothing changed, no pool refresh
  });

  it('drops stored arms for unknown ids, whether loaded before or after the first model', async () => {
    const junk = Array.from({ length: 10_000 }, (_, j) => ({ itemId: `junk-${j}`, successes: 1, failures: 0, trials: 1 }));
    const stored = [...junk, { itemId: 'i2', successes: 9, failures: 1, trials: 10 }];
    const warnings: object[] = [];
    const before = new ThompsonBandit({ seed: 1 }, { info: () => undefined, warn: (o) => warnings.push(o) });
    bandits.push(before);
    expect(before.load(stored)).toEqual({ kept: 0, ignored: 0, deferred: stored.length });
    const policy = before.policyFor(model(50));
    expect(before.arms).toBe(1);
    expect(policy.successes[2]).toBe(9);
    expect(warnings).toEqual([{ ignored: 10_000, kept: 1 }]);

    const { bandit: after } = await setup(50);
    expect(after.load(stored)).toEqual({ kept: 1, ignored: 10_000, deferred: 0 });
    expect(after.arms).toBe(1);
  });
});
