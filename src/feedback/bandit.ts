// Beta–Bernoulli Thompson sampling over items, for users the model does not know (cold start) and for
// the exploration slots known users may ask for. Each item i has a posterior Beta(α_i, β_i):
//
//   prior (popularity):  α0_i = κ·μ_i,  β0_i = κ·(1 − μ_i)
//   μ_i = μ̄ · s^(2·p_i − 1)       p_i ∈ [0, 1] the item's popularity percentile, s the spread
//                                   (least popular μ̄/s, median μ̄, most popular μ̄·s; κ pseudo-observations)
//   update per bandit-served row with reward r ∈ [0, 1]:  α_i += r,  β_i += 1 − r   (exactly — fractional)
//   rank: draw θ_i ~ Beta(α_i, β_i) for every eligible item, return the k largest draws.
//
// Draws are seeded by (user id, posterior version): one user sees the same list until some feedback
// changes the posterior (a refresh does not reshuffle the page, REST and gRPC answer alike), while
// different users get independent draws, which is where the exploration comes from.
//
// The fractional update is the expected Bernoulli update (a reward of 0.7 is 0.7 of a success and
// 0.3 of a failure); it keeps the posterior mean α/(α+β) consistent for the mean reward. Seldon's
// reference router instead computes int(reward·n) successes, so a 1-row reward of 0.7 counts as a
// failure — the pitfall this avoids. Counts are keyed by item id (so they survive model versions),
// persisted in the store's bandit_arms table in the same transaction as the interaction rows, and
// loaded back at start-up.
import type { ColdStartPolicy, Recommender } from '../model/recommender.js';
import type { Ranked } from '../model/scorer.js';
import { selectTopK } from '../model/topk.js';
import { gammaAtLeastOne, gaussian, rng } from '../train/random.js';
import type { ArmDelta, ArmState } from './store.js';

export interface BanditSettings {
  /** μ̄: prior mean reward of an item of median popularity. */
  priorMean: number;
  /** κ: weight of the prior in pseudo-observations. */
  priorStrength: number;
  /** s ≥ 1: prior means span μ̄/s (least popular) … μ̄·s (most popular); 1 = the same prior for all. */
  popularitySpread: number;
  /** Seed for reproducible draws (tests, simulations); random when absent. */
  seed?: number;
}

export const BANDIT_DEFAULTS: BanditSettings = { priorMean: 0.1, priorStrength: 10, popularitySpread: 2 };

/** Per-item prior α0, β0 from popularity (any scale: counts, or item biases, which may be negative). */
export function popularityPrior(popularity: ArrayLike<number>, s: BanditSettings): { alpha: Float64Array; beta: Float64Array } {
  const n = popularity.length;
  const pct = percentiles(popularity);
  const alpha = new Float64Array(n);
  const beta = new Float64Array(n);
  const spread = Math.max(1, s.popularitySpread);
  for (let i = 0; i < n; i++) {
    const mu = Math.min(0.95, Math.max(1e-4, s.priorMean * Math.pow(spread, 2 * pct[i] - 1)));
    alpha[i] = s.priorStrength * mu;
    beta[i] = s.priorStrength * (1 - mu);
  }
  return { alpha, beta };
}

/** Percentile in [0, 1] of each value (ties share their average rank; all equal → 0.5). */
function percentiles(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const out = new Float64Array(n).fill(0.5);
  if (n < 2) return out;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => Number(v[a]) - Number(v[b]));
  let r = 0;
  while (r < n) {
    let e = r;
    while (e + 1 < n && v[order[e + 1]] === v[order[r]]) e++;
    const p = (r + e) / 2 / (n - 1);
    for (let j = r; j <= e; j++) out[order[j]] = p;
    r = e + 1;
  }
  return out;
}

/** Samplers for Gamma and Beta variates from one uniform source (Marsaglia–Tsang). */
export class BetaSampler {
  private readonly normal: () => number;
  constructor(private readonly uniform: () => number) {
    this.normal = gaussian(uniform);
  }

  /** log of a Gamma(a, 1) draw, a > 0 (log space keeps tiny shapes from underflowing to 0/0). */
  logGamma(a: number): number {
    if (a < 1) {
      // Gamma(a) = Gamma(a + 1) · U^(1/a)
      let u = this.uniform();
      while (u === 0) u = this.uniform();
      return this.logGamma(a + 1) + Math.log(u) / a;
    }
    return Math.log(gammaAtLeastOne(a, this.uniform, this.normal));
  }

  beta(a: number, b: number): number {
    const lx = this.logGamma(a);
    const ly = this.logGamma(b);
    return 1 / (1 + Math.exp(ly - lx));
  }
}

interface Counts {
  successes: number;
  failures: number;
  trials: number;
}

/** Posterior counts by item id, shared by the per-model policies (one per loaded model version). */
export class ThompsonBandit {
  readonly settings: BanditSettings;
  readonly sampler: BetaSampler;
  private readonly counts = new Map<string, Counts>();
  private views: BanditPolicy[] = [];
  /** Bumped by every change of the posterior; part of the per-user draw seed. */
  version = 0;
  private readonly salt: number;

  constructor(settings: Partial<BanditSettings> = {}) {
    this.settings = { ...BANDIT_DEFAULTS, ...settings };
    const seed = this.settings.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.sampler = new BetaSampler(rng(seed));
    this.salt = this.settings.seed ?? 0x5eed;
  }

  /** The sampler for one user's draws at the current posterior (the shared stream without a user). */
  samplerFor(userId: string | undefined): BetaSampler {
    if (userId === undefined) return this.sampler;
    return new BetaSampler(rng(fnv1a(`${this.salt}:${this.version}:${userId}`)));
  }

  /** Replaces the counts with the store's (start-up, or a resync from a shared store). */
  load(arms: ArmState[]): void {
    this.counts.clear();
    for (const a of arms) this.counts.set(a.itemId, { successes: a.successes, failures: a.failures, trials: a.trials });
    for (const v of this.views) v.reset(this.counts);
    this.version++;
  }

  /** Applies updates that the store has already committed. */
  update(deltas: ArmDelta[]): void {
    for (const d of deltas) {
      const c = this.counts.get(d.itemId) ?? { successes: 0, failures: 0, trials: 0 };
      c.successes += d.successes;
      c.failures += d.failures;
      c.trials += 1;
      this.counts.set(d.itemId, c);
      for (const v of this.views) v.add(d);
    }
    if (deltas.length > 0) this.version++;
  }

  /** Posterior counts of one item (0, 0 if it never had a bandit-served impression). */
  countsOf(itemId: string): Counts {
    return this.counts.get(itemId) ?? { successes: 0, failures: 0, trials: 0 };
  }

  /** A policy over one model's catalog; the newest few stay subscribed to updates. */
  policyFor(model: Pick<Recommender, 'artifact' | 'itemIdx'>): BanditPolicy {
    const view = new BanditPolicy(model.artifact.itemIds, (id) => model.itemIdx(id), model.artifact.popularity, this.settings, (u) => this.samplerFor(u));
    view.reset(this.counts);
    // current, previous (rollback target) and one being loaded; older versions no longer answer.
    this.views = [...this.views.slice(-3), view];
    return view;
  }
}

/** Thompson sampling over one model's items (in that model's index space). */
export class BanditPolicy implements ColdStartPolicy {
  readonly alpha0: Float64Array;
  readonly beta0: Float64Array;
  readonly successes: Float64Array;
  readonly failures: Float64Array;
  private readonly theta: Float32Array;

  constructor(
    private readonly itemIds: string[],
    private readonly indexOf: (id: string) => number | undefined,
    popularity: ArrayLike<number>,
    settings: BanditSettings,
    private readonly samplerFor: (userId: string | undefined) => BetaSampler,
  ) {
    const prior = popularityPrior(popularity, settings);
    this.alpha0 = prior.alpha;
    this.beta0 = prior.beta;
    this.successes = new Float64Array(itemIds.length);
    this.failures = new Float64Array(itemIds.length);
    this.theta = new Float32Array(itemIds.length);
  }

  reset(counts: Map<string, Counts>): void {
    this.successes.fill(0);
    this.failures.fill(0);
    for (const [id, c] of counts) {
      const i = this.indexOf(id);
      if (i === undefined) continue;
      this.successes[i] = c.successes;
      this.failures[i] = c.failures;
    }
  }

  add(d: ArmDelta): void {
    const i = this.indexOf(d.itemId);
    if (i === undefined) return;
    this.successes[i] += d.successes;
    this.failures[i] += d.failures;
  }

  /** Posterior mean α/(α+β) of item index i. */
  mean(i: number): number {
    const a = this.alpha0[i] + this.successes[i];
    return a / (a + this.beta0[i] + this.failures[i]);
  }

  /** One Thompson draw per eligible item; the k best draws, each with its draw as the score. */
  rank(k: number, allow: Uint8Array | null, exclude: Int32Array | null, userId?: string): Ranked {
    const n = this.itemIds.length;
    const theta = this.theta;
    const sampler = this.samplerFor(userId);
    for (let i = 0; i < n; i++) {
      theta[i] = allow !== null && allow[i] === 0 ? NaN : sampler.beta(this.alpha0[i] + this.successes[i], this.beta0[i] + this.failures[i]);
    }
    const ex = exclude && exclude.length > 1 ? Int32Array.from(exclude).sort() : exclude;
    return selectTopK(theta, 0, n, k, ex, null);
  }
}

/** 32-bit FNV-1a hash of a string (draw seeds). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
