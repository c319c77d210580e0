// Thompson sampling over items: a simulation with planted click-through rates (sub-linear regret, the
// best items rising to the top), exact fractional rewards, the popularity prior, per-user consistency,
// and the reported score: the posterior mean, while the order follows the (internal) draws.
import { describe, expect, it } from 'vitest';
import { BetaSampler, popularityPrior, ThompsonBandit, BANDIT_DEFAULTS } from '../../src/feedback/bandit.js';
import { fnv1a } from '../../src/feedback/posterior-draws.js';
import { selectTopK } from '../../src/model/topk.js';
import { rng } from '../../src/util/random.js';

/** A catalogue-shaped stand-in: the bandit only needs item ids, their index and popularity. */
function fakeModel(n: number, popularity?: number[]) {
  const itemIds = Array.from({ length: n }, (_, i) => `i${i}`);
  const index = new Map(itemIds.map((id, i) => [id, i]));
  return { artifact: { itemIds, popularity: Float64Array.from(popularity ?? new Array(n).fill(1)) }, itemIdx: (id: string) => index.get(id) } as never;
}

describe('Beta sampler', () => {
  it('draws with the right mean, also for shapes below 1', () => {
    const s = new BetaSampler(rng(7));
    for (const [a, b] of [[2, 8], [0.3, 0.7], [50, 50], [0.05, 5]]) {
      let sum = 0;
      let outside = 0;
      const n = 20_000;
      for (let k = 0; k < n; k++) {
        const x = s.beta(a, b);
        if (!(x >= 0 && x <= 1)) outside++;
        sum += x;
      }
      expect(outside).toBe(0);
      expect(sum / n).toBeCloseTo(a / (a + b), 2);
    }
  });
});

describe('popularity prior', () => {
  it('spans μ̄/s … μ̄·s by popularity rank with κ pseudo-observations (biases may be negative)', () => {
    const { alpha, beta } = popularityPrior([-0.5, 3, 0.1, 3], { ...BANDIT_DEFAULTS, priorMean: 0.1, priorStrength: 10, popularitySpread: 2 });
    const mean = (i: number) => alpha[i] / (alpha[i] + beta[i]);
    expect(alpha[0] + beta[0]).toBeCloseTo(10);
    expect(mean(0)).toBeCloseTo(0.05); // least popular
    expect(mean(1)).toBeCloseTo(mean(3)); // ties share a rank
    expect(mean(1)).toBeGreaterThan(mean(2));
    expect(mean(2)).toBeGreaterThan(mean(0));
    expect(mean(1)).toBeLessThanOrEqual(0.2);
  });
});

describe('Thompson sampling simulation (planted CTRs)', () => {
  it('has sub-linear cumulative regret and puts the best items on top', () => {
    const n = 40;
    const k = 3;
    const T = 6000;
    // Three clearly better items hidden among 40; popularity says nothing useful (uniform).
    const ctr = Array.from({ length: n }, (_, i) => 0.02 + 0.06 * ((i * 7) % 10) / 10);
    ctr[11] = 0.32;
    ctr[23] = 0.27;
    ctr[37] = 0.22;
    const best = [11, 23, 37];
    const bestSum = best.reduce((s, i) => s + ctr[i], 0);
    const bandit = new ThompsonBandit({ seed: 3 });
    const policy = bandit.policyFor(fakeModel(n));
    const clicks = rng(99);
    const regret: number[] = [];
    let cum = 0;
    for (let t = 0; t < T; t++) {
      const shown = policy.rank(k, null, null).items;
      let got = 0;
      const deltas = Array.from(shown, (i) => {
        got += ctr[i];
        const click = clicks() < ctr[i] ? 1 : 0;
        return { itemId: `i${i}`, successes: click, failures: 1 - click };
      });
      bandit.update(deltas);
      cum += bestSum - got;
      regret.push(cum);
    }
    const R = (t: number) => regret[t - 1];
    const firstQuarter = R(T / 4);
    const lastQuarter = R(T) - R((3 * T) / 4);
    // Linear regret would add as much in the last quarter as in the first; TS adds a small fraction.
    expect(lastQuarter).toBeLessThan(0.25 * firstQuarter);
    expect(R(T) - R(T / 2)).toBeLessThan(0.5 * R(T / 2));
    expect(R(T) / T).toBeLessThan(0.1 * bestSum);
    // The best items have the highest posterior means, in order.
    const means = Array.from({ length: n }, (_, i) => policy.mean(i));
    const top = means.map((m, i) => [m, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, i]) => i);
    expect(top).toEqual(best);
    console.log(
      `[bandit] ${T} rounds × ${k} slots over ${n} items: cumulative regret ${R(T / 4).toFixed(1)} @T/4, ${R(T / 2).toFixed(1)} @T/2, ${R(T).toFixed(1)} @T ` +
        `(first quarter ${firstQuarter.toFixed(1)}, last quarter ${lastQuarter.toFixed(1)}); top-3 by posterior mean ${top.map((i) => `i${i}`).join(', ')}`,
    );
  });

  it('learns a fractional reward exactly (the reference router rounds 0.7 to a failure)', () => {
    const bandit = new ThompsonBandit({ seed: 1, priorMean: 0.1, priorStrength: 10, popularitySpread: 1 });
    const policy = bandit.policyFor(fakeModel(2));
    for (let t = 0; t < 200; t++) bandit.update([{ itemId: 'i0', successes: 0.7, failures: 0.3 }]);
    expect(bandit.countsOf('i0').successes).toBeCloseTo(140, 8);
    // (1 + 140) / (10 + 200) — the posterior mean moves to the reward rate, not towards 0.
    expect(policy.mean(0)).toBeCloseTo(141 / 210, 8);
    expect(policy.mean(0)).toBeGreaterThan(0.6);
    // With int(0.7·1) = 0 successes per 1-row request the mean would have fallen to 1/210.
    expect(policy.mean(1)).toBeCloseTo(0.1, 8);
  });

  it('answers one user consistently until the posterior changes; users differ', () => {
    const bandit = new ThompsonBandit({ seed: 5 });
    const policy = bandit.policyFor(fakeModel(50));
    const a1 = Array.from(policy.rank(5, null, null, 'alice').items);
    const a2 = Array.from(policy.rank(5, null, null, 'alice').items);
    const b = Array.from(policy.rank(5, null, null, 'bob').items);
    expect(a2).toEqual(a1);
    expect(b).not.toEqual(a1);
    bandit.update([{ itemId: 'i3', successes: 1, failures: 0 }]);
    const a3 = Array.from(policy.rank(5, null, null, 'alice').items);
    expect(a3).not.toEqual(a1);
  });

  it('keeps the per-filter caches within their byte budget, the masks they hold included', async () => {
    const n = 200_000;
    const bandit = new ThompsonBandit({ seed: 4 });
    const policy = bandit.policyFor(fakeModel(n)) as unknown as { rank: (k: number, a: Uint8Array, e: null, u: string) => unknown; ready(): Promise<void>; cachedBytes: number };
    await policy.ready();
    // 100 fresh filters of a cold-start caller: 200 KB masks each, 20 MB in all, over the 8 MiB budget.
    for (let f = 0; f < 100; f++) {
      const mask = new Uint8Array(n);
      for (let i = f; i < n; i += 97) mask[i] = 1;
      policy.rank(10, mask, null, `visitor-${f}`);
    }
    expect(policy.cachedBytes).toBeGreaterThan(0);
    expect(policy.cachedBytes).toBeLessThanOrEqual(8 * 1024 * 1024);
  });

  it('respects the allow mask and the exclusions, and rebuilds from stored counts', () => {
    const bandit = new ThompsonBandit({ seed: 2 });
    const model = fakeModel(10);
    const allow = Uint8Array.from([1, 1, 1, 1, 0, 0, 0, 0, 1, 1]);
    const p = bandit.policyFor(model);
    const r = Array.from(p.rank(10, allow, Int32Array.of(9, 1), 'u').items).sort();
    expect(r).toEqual([0, 2, 3, 8]);
    bandit.load([{ itemId: 'i2', successes: 90, failures: 10, trials: 100 }]);
    expect(p.mean(2)).toBeGreaterThan(0.8);
    const fresh = new ThompsonBandit({ seed: 2 });
    fresh.load([{ itemId: 'i2', successes: 90, failures: 10, trials: 100 }]);
    expect(fresh.policyFor(model).mean(2)).toBeCloseTo(p.mean(2), 12);
  });

  it('reports the posterior mean as the score, in the order of the draws (from the pool, per user)', async () => {
    const n = 200;
    const bandit = new ThompsonBandit({ seed: 8 });
    const policy = bandit.policyFor(fakeModel(n, Array.from({ length: n }, (_, i) => (i * 37) % n)));
    bandit.update(Array.from({ length: 30 }, (_, j) => ({ itemId: `i${j * 3}`, successes: j % 2, failures: 1 - (j % 2) })));
    await policy.settled();
    const pool = policy.pool.now();
    let notByMean = 0;
    for (let u = 0; u < 30; u++) {
      const user = `visitor-${u}`;
      const got = policy.rank(10, null, null, user);
      // The order is the user's draw vector, best draw first …
      const slot = fnv1a(`${pool.seed}:${user}`) % pool.vectors;
      const vector = pool.items.subarray(slot * pool.prefix, slot * pool.prefix + 10);
      expect(Array.from(got.items)).toEqual(Array.from(vector));
      const draws = pool.scores.subarray(slot * pool.prefix, slot * pool.prefix + 10);
      // … and each score is the item's expected reward α/(α+β), not its draw.
      expect(Array.from(got.scores)).toEqual(Array.from(got.items, (i) => Math.fround(policy.mean(i))));
      expect(Array.from(got.scores)).not.toEqual(Array.from(draws));
      for (let j = 1; j < 10; j++) if (got.scores[j] > got.scores[j - 1]) notByMean++;
    }
    expect(notByMean).toBeGreaterThan(0); // exploration: draws, not means, decide the order
  });

  it('reports the posterior mean for a fresh draw (no user) too, ordered by that draw', () => {
    const n = 60;
    const popularity = Array.from({ length: n }, (_, i) => i % 7);
    const bandit = new ThompsonBandit({ seed: 21 });
    const policy = bandit.policyFor(fakeModel(n, popularity));
    // The bandit's own stream, replayed: the same draws in the same order.
    const sampler = new BetaSampler(rng(21));
    const theta = Float32Array.from({ length: n }, (_, i) => sampler.beta(policy.alpha0[i], policy.beta0[i]));
    const want = selectTopK(theta, 0, n, 8, null, null);
    const got = policy.rank(8, null, null);
    expect(Array.from(got.items)).toEqual(Array.from(want.items));
    expect(Array.from(got.scores)).toEqual(Array.from(got.items, (i) => Math.fround(policy.mean(i))));
  });
});
