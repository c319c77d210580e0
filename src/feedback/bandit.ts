// Beta–Bernoulli Thompson sampling over items, for users the model does not know (cold start) and for
// the exploration slots known users may ask for. Each item i has a posterior Beta(α_i, β_i):
//
//   prior (popularity):  α0_i = κ·μ_i,  β0_i = κ·(1 − μ_i)
//   μ_i = μ̄ · s^(2·p_i − 1)       p_i ∈ [0, 1] the item's popularity percentile, s the spread
//                                   (least popular μ̄/s, median μ̄, most popular μ̄·s; κ pseudo-observations)
//   update per bandit-served row with reward r ∈ [0, 1]:  α_i += r,  β_i += 1 − r   (exactly — fractional)
//   rank: a Thompson draw θ_i ~ Beta(α_i, β_i) for every item; the k largest eligible draws.
//   score reported: the posterior mean α_i / (α_i + β_i), the item's expected reward. The draw only
//   orders the list (a random number on no stable scale is no use to a caller), so a cold-start list
//   is in draw order and its scores need not descend.
//
// Why a pool of draws: drawing θ for the whole catalog per user on the event loop made one request for
// 1,000 new users on a 50k-item catalog block the server for 10 s. Instead each posterior state gets
// M full draw vectors, computed on a worker thread (cold-start-pool.ts), each cut to its L best items
// sorted by draw (M × L × 8 bytes, within a budget). A user is answered from vector hash(user, pool)
// mod M: walk its sorted prefix, skipping filtered-out and excluded items, until k are found —
// O(k + skipped) on the main thread. If the prefix runs out (a very selective filter, or many
// exclusions) the rest comes from the filter's allowed-item list (O(allowed items), once per vector
// and filter, cached with the pool), ranked by draws of the same posterior below the prefix's last
// draw. What it trades: users in the same slot share a draw until the next refresh (M-way rather than
// per-user exploration between refreshes), and a refresh follows a posterior change after up to R ms
// (poolRefreshMs; also never more than a quarter of a core) — the previous pool serves meanwhile.
// A user sees the same list until the posterior changes (and the pool with it); REST and gRPC alike.
// rank() without a user id (simulations) still draws the whole catalog afresh per call.
//
// The fractional update is the expected Bernoulli update (a reward of 0.7 is 0.7 of a success and
// 0.3 of a failure); it keeps the posterior mean α/(α+β) consistent for the mean reward. Seldon's
// reference router instead computes int(reward·n) successes, so a 1-row reward of 0.7 counts as a
// failure — the pitfall this avoids. Counts are keyed by item id (so they survive model versions),
// persisted in the store's bandit_arms table in the same transaction as the interaction rows, and
// loaded back at start-up. Arms exist only for items some live model's catalog lists: updates for
// other ids are ignored, and stored counts for them are dropped when loaded.
import { BANDIT_DEFAULTS, type BanditPrior } from '../config/bandit.js';
import type { AllowedItems, ColdStartPolicy, Recommender } from '../model/recommender.js';
import type { Ranked } from '../model/scorer.js';
import { selectTopK } from '../model/topk.js';
import { rng } from '../util/random.js';
import { DrawWorker, POOL_DEFAULTS, RefreshingPool, type DrawPool, type PoolSettings } from './cold-start-pool.js';
import { BetaSampler, fnv1a } from './posterior-draws.js';
import type { ArmDelta, ArmState } from './store/index.js';

export { BetaSampler } from './posterior-draws.js';

/** The prior (config.feedback.bandit) and, optionally, the cold-start pool's shape. */
export interface BanditSettings extends BanditPrior, Partial<PoolSettings> {}

export { BANDIT_DEFAULTS } from '../config/bandit.js';

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

interface Counts {
  successes: number;
  failures: number;
  trials: number;
}

/** The logging surface the bandit needs (pino's Logger has it). */
export interface BanditLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** What a policy needs from its bandit. */
interface PolicyHost {
  readonly version: number;
  readonly salt: number;
  readonly sampler: BetaSampler;
  readonly worker: DrawWorker;
}

/** Posterior counts by item id, shared by the per-model policies (one per loaded model version). */
export class ThompsonBandit implements PolicyHost {
  readonly settings: BanditSettings;
  /** The shared stream for draws without a user (simulations). */
  readonly sampler: BetaSampler;
  /** Computes the policies' draw pools off the event loop. */
  readonly worker: DrawWorker;
  private readonly counts = new Map<string, Counts>();
  /** Stored arms loaded before any model: applied (and pruned to its catalog) at the first policyFor. */
  private pending: ArmState[] | null = null;
  private views: BanditPolicy[] = [];
  /** Bumped by every change of the posterior; part of the draw seeds. */
  version = 0;
  readonly salt: number;
  /** `logger`: where dropped arms and draw-worker trouble are reported. */
  constructor(
    settings: Partial<BanditSettings> = {},
    private readonly logger: BanditLogger | null = null,
  ) {
    this.worker = new DrawWorker(logger);
    this.settings = { ...BANDIT_DEFAULTS, ...settings };
    const seed = this.settings.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.sampler = new BetaSampler(rng(seed));
    this.salt = this.settings.seed ?? 0x5eed;
  }

  /** Whether some live model's catalog lists the item (only those have arms). */
  knows(itemId: string): boolean {
    return this.views.some((v) => v.knows(itemId));
  }

  /**
   * Replaces the counts with the store's (start-up, or a resync from a shared store). Ids no live
   * model lists are dropped (counted and logged): junk written before arms were bounded by the
   * catalog must not become per-model state. Before any model is loaded the list is kept as given
   * and pruned when the first model arrives.
   */
  load(arms: ArmState[]): { kept: number; ignored: number; deferred: number } {
    this.counts.clear();
    this.version++;
    if (this.views.length === 0) {
      this.pending = arms;
      return { kept: 0, ignored: 0, deferred: arms.length };
    }
    this.pending = null;
    const result = this.keepKnown(arms);
    for (const v of this.views) {
      v.reset(this.counts);
      v.stale();
    }
    return { ...result, deferred: 0 };
  }

  private keepKnown(arms: ArmState[]): { kept: number; ignored: number } {
    let ignored = 0;
    for (const a of arms) {
      if (!this.knows(a.itemId)) {
        ignored++;
        continue;
      }
      this.counts.set(a.itemId, { successes: a.successes, failures: a.failures, trials: a.trials });
    }
    if (ignored > 0) this.logger?.warn({ ignored, kept: this.counts.size }, 'bandit: ignored stored arms for items no loaded model lists');
    return { kept: this.counts.size, ignored };
  }

  /** Applies updates that the store has already committed; returns how many named unknown items (ignored). */
  update(deltas: ArmDelta[]): number {
    let changed = 0;
    for (const d of deltas) {
      if (!this.knows(d.itemId)) continue;
      const c = this.counts.get(d.itemId) ?? { successes: 0, failures: 0, trials: 0 };
      c.successes += d.successes;
      c.failures += d.failures;
      c.trials += 1;
      this.counts.set(d.itemId, c);
      for (const v of this.views) v.add(d);
      changed++;
    }
    if (changed > 0) {
      this.version++;
      for (const v of this.views) v.stale();
    }
    return deltas.length - changed;
  }

  /**
   * Sets the counts of the given arms to the store's (another replica wrote them): absolute states, so
   * applying one twice, or an older one after a newer delta, converges on the next read. Ids no live
   * model lists are skipped, as in load(). Returns how many arms were set.
   */
  applyStates(states: ArmState[]): number {
    if (this.views.length === 0) {
      // No model yet: fold the states into the list the first model will prune.
      const byId = new Map((this.pending ?? []).map((a) => [a.itemId, a] as const));
      for (const a of states) byId.set(a.itemId, { ...a });
      this.pending = [...byId.values()];
      this.version++;
      return states.length;
    }
    let changed = 0;
    for (const a of states) {
      if (!this.knows(a.itemId)) continue;
      this.counts.set(a.itemId, { successes: a.successes, failures: a.failures, trials: a.trials });
      for (const v of this.views) v.set(a);
      changed++;
    }
    if (changed > 0) {
      this.version++;
      for (const v of this.views) v.stale();
    }
    return changed;
  }

  /** Posterior counts of one item (0, 0 if it never had a bandit-served impression). */
  countsOf(itemId: string): Counts {
    const c = this.counts.get(itemId) ?? this.pending?.find((a) => a.itemId === itemId);
    return c ? { successes: c.successes, failures: c.failures, trials: c.trials } : { successes: 0, failures: 0, trials: 0 };
  }

  /** Number of items with counts (bounded by the live catalogs). */
  get arms(): number {
    return this.counts.size;
  }

  /** A policy over one model's catalog; the newest few stay subscribed to updates. */
  policyFor(model: Pick<Recommender, 'artifact' | 'itemIdx'>): BanditPolicy {
    const view = new BanditPolicy(model.artifact.itemIds, (id) => model.itemIdx(id), model.artifact.popularity, this.settings, this);
    // current, previous (rollback target) and one being loaded; older versions no longer answer.
    this.views = [...this.views.slice(-3), view];
    if (this.pending) {
      const arms = this.pending;
      this.pending = null;
      this.keepKnown(arms);
    }
    view.reset(this.counts);
    void view.ready(); // the first pool starts now
    return view;
  }

  /** Stops the draw worker thread (a later draw starts a new one). */
  close(): Promise<void> {
    return this.worker.close();
  }
}

/** Most bytes of per-filter rankings (allowed prefixes and tails beyond them) one policy keeps per pool. */
const TAIL_CACHE_BYTES = 8 * 1024 * 1024;
const NO_FILTER = new Uint8Array(0);

/** Thompson sampling over one model's items (in that model's index space). */
export class BanditPolicy implements ColdStartPolicy {
  readonly alpha0: Float64Array;
  readonly beta0: Float64Array;
  readonly successes: Float64Array;
  readonly failures: Float64Array;
  /** The draw pool users are answered from. */
  readonly pool: RefreshingPool;
  private theta: Float32Array | null = null;
  /** Per pool: mask → vector → the allowed items beyond the vector's prefix, in draw order. */
  private tails = new Map<Uint8Array, Map<number, Int32Array>>();
  /** Per pool: mask → vector → the vector's prefix restricted to the allowed items. */
  private prefixes = new Map<Uint8Array, Map<number, Int32Array>>();
  /** Bytes of tails and prefixes (both dropped with their pool). */
  private tailBytes = 0;

  constructor(
    private readonly itemIds: string[],
    private readonly indexOf: (id: string) => number | undefined,
    popularity: ArrayLike<number>,
    settings: BanditSettings,
    private readonly host: PolicyHost,
  ) {
    const prior = popularityPrior(popularity, settings);
    this.alpha0 = prior.alpha;
    this.beta0 = prior.beta;
    this.successes = new Float64Array(itemIds.length);
    this.failures = new Float64Array(itemIds.length);
    const poolSettings: PoolSettings = {
      poolVectors: settings.poolVectors ?? POOL_DEFAULTS.poolVectors,
      poolPrefix: settings.poolPrefix ?? POOL_DEFAULTS.poolPrefix,
      poolRefreshMs: settings.poolRefreshMs ?? POOL_DEFAULTS.poolRefreshMs,
      poolBytes: settings.poolBytes ?? POOL_DEFAULTS.poolBytes,
    };
    this.pool = new RefreshingPool(
      { nItems: itemIds.length, version: () => host.version, posterior: () => this.posterior(), salt: host.salt },
      poolSettings,
      host.worker,
    );
    this.pool.onSwap = () => {
      this.tails = new Map();
      this.prefixes = new Map();
      this.tailBytes = 0;
    };
  }

  /** Bytes the per-filter caches hold, counted from what they hold: rankings and the masks they keep alive. */
  get cachedBytes(): number {
    const masks = new Set<Uint8Array>([...this.tails.keys(), ...this.prefixes.keys()]);
    let bytes = 0;
    for (const m of masks) bytes += m.byteLength;
    for (const perSlot of [...this.tails.values(), ...this.prefixes.values()]) for (const a of perSlot.values()) bytes += a.byteLength;
    return bytes;
  }

  knows(itemId: string): boolean {
    return this.indexOf(itemId) !== undefined;
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

  /** One arm's absolute counts (see ThompsonBandit.applyStates). */
  set(a: ArmDelta): void {
    const i = this.indexOf(a.itemId);
    if (i === undefined) return;
    this.successes[i] = a.successes;
    this.failures[i] = a.failures;
  }

  add(d: ArmDelta): void {
    const i = this.indexOf(d.itemId);
    if (i === undefined) return;
    this.successes[i] += d.successes;
    this.failures[i] += d.failures;
  }

  /** The posterior changed: the pool is recomputed as its schedule allows. */
  stale(): void {
    this.pool.stale();
  }

  /** Resolves once a draw pool exists (the registry waits for it before a version serves). */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  /** Resolves once the pool reflects the current posterior (tests, simulations). */
  settled(): Promise<void> {
    return this.pool.settled();
  }

  private posterior(): { alpha: Float64Array; beta: Float64Array } {
    const n = this.itemIds.length;
    const alpha = new Float64Array(n);
    const beta = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      alpha[i] = this.alpha0[i] + this.successes[i];
      beta[i] = this.beta0[i] + this.failures[i];
    }
    return { alpha, beta };
  }

  /** Posterior mean α/(α+β) of item index i. */
  mean(i: number): number {
    const a = this.alpha0[i] + this.successes[i];
    return a / (a + this.beta0[i] + this.failures[i]);
  }

  /**
   * The k best draws among eligible items, in draw order, each scored by its posterior mean (the
   * draws stay internal). With a user: from the
   * user's vector of the pool, O(k + skipped) (see the top of this file); without: a fresh draw of
   * the whole catalog (simulations only — the server always names the user).
   */
  rank(k: number, allow: AllowedItems | Uint8Array | null, exclude: Int32Array | null, userId?: string): Ranked {
    const mask = allow === null ? null : allow instanceof Uint8Array ? allow : allow.mask;
    const ex = exclude && exclude.length > 1 && !ascending(exclude) ? Int32Array.from(exclude).sort() : exclude;
    if (userId === undefined) return this.freshDraw(k, mask, ex);
    const empty: Ranked = { items: new Int32Array(0), scores: new Float32Array(0) };
    if (k <= 0 || (allow !== null && !(allow instanceof Uint8Array) && allow.allowedCount === 0)) return empty;
    const pool = this.pool.now();
    const L = pool.prefix;
    if (L === 0) return empty;
    const slot = fnv1a(`${pool.seed}:${userId}`) % pool.vectors;
    const items: number[] = [];
    const scores: number[] = [];
    // The vector's prefix, cut to the allowed items once per (filter, vector): a selective filter
    // then costs each user O(k + excluded), not a walk over L mostly-disallowed items.
    const prefix = mask === null ? pool.items.subarray(slot * L, (slot + 1) * L) : this.allowedPrefix(pool, slot, mask);
    for (let r = 0; r < prefix.length && items.length < k; r++) {
      const i = prefix[r];
      if (isExcluded(ex, i)) continue;
      items.push(i);
      scores.push(this.mean(i));
    }
    if (items.length < k && L < this.itemIds.length) {
      const tail = this.tail(pool, slot, allow);
      for (let r = 0; r < tail.length && items.length < k; r++) {
        const i = tail[r];
        if (isExcluded(ex, i)) continue;
        items.push(i);
        scores.push(this.mean(i));
      }
    }
    return { items: Int32Array.from(items), scores: Float32Array.from(scores) };
  }

  private allowedPrefix(pool: DrawPool, slot: number, mask: Uint8Array): Int32Array {
    const cached = this.prefixes.get(mask)?.get(slot);
    if (cached) return cached;
    const L = pool.prefix;
    const items: number[] = [];
    for (let r = slot * L; r < (slot + 1) * L; r++) if (mask[pool.items[r]] !== 0) items.push(pool.items[r]);
    const allowed = Int32Array.from(items);
    // A new key charges its mask too: the map keeps the request's catalog-sized mask alive.
    const bytes = allowed.byteLength + 64 + (this.prefixes.has(mask) ? 0 : mask.byteLength);
    if (this.tailBytes + bytes <= TAIL_CACHE_BYTES) {
      let perSlot = this.prefixes.get(mask);
      if (!perSlot) this.prefixes.set(mask, (perSlot = new Map()));
      perSlot.set(slot, allowed);
      this.tailBytes += bytes;
    }
    return allowed;
  }

  /**
   * The allowed items outside vector `slot`'s prefix, ranked by draws of the same posterior held
   * below the prefix's last draw (where they would have been). O(allowed items), once per vector,
   * filter and pool.
   */
  private tail(pool: DrawPool, slot: number, allow: AllowedItems | Uint8Array | null): Int32Array {
    const key = allow === null ? NO_FILTER : allow instanceof Uint8Array ? allow : allow.mask;
    const cached = this.tails.get(key)?.get(slot);
    if (cached) return cached;
    const n = this.itemIds.length;
    const L = pool.prefix;
    const base = slot * L;
    const inPrefix = new Set(pool.items.subarray(base, base + L));
    const floor = pool.scores[base + L - 1];
    let candidates: ArrayLike<number>;
    if (allow === null) candidates = { length: n } as ArrayLike<number>;
    else if (allow instanceof Uint8Array) candidates = allowedList(allow);
    else candidates = allow.items;
    const uniform = rng(fnv1a(`${pool.seed}:${slot}:tail`));
    const sampler = new BetaSampler(uniform);
    const order: number[] = [];
    const draws: number[] = [];
    for (let j = 0; j < candidates.length; j++) {
      const i = allow === null ? j : candidates[j];
      if (inPrefix.has(i)) continue;
      const a = this.alpha0[i] + this.successes[i];
      const b = this.beta0[i] + this.failures[i];
      // θ | θ < floor by rejection; an item that keeps drawing above it is rare, give it a draw below.
      let theta = sampler.beta(a, b);
      for (let t = 0; t < 4 && theta >= floor; t++) theta = sampler.beta(a, b);
      if (theta >= floor) theta = floor * uniform();
      order.push(i);
      draws.push(theta);
    }
    const idx = Array.from(order.keys()).sort((x, y) => draws[y] - draws[x] || order[x] - order[y]);
    const ranked = Int32Array.from(idx, (x) => order[x]);
    const bytes = ranked.byteLength + (this.tails.has(key) ? 0 : key.byteLength);
    if (this.tailBytes + bytes <= TAIL_CACHE_BYTES) {
      let perSlot = this.tails.get(key);
      if (!perSlot) this.tails.set(key, (perSlot = new Map()));
      perSlot.set(slot, ranked);
      this.tailBytes += bytes;
    }
    return ranked;
  }

  private freshDraw(k: number, mask: Uint8Array | null, exclude: Int32Array | null): Ranked {
    const n = this.itemIds.length;
    const theta = (this.theta ??= new Float32Array(n));
    const sampler = this.host.sampler;
    for (let i = 0; i < n; i++) {
      theta[i] = mask !== null && mask[i] === 0 ? NaN : sampler.beta(this.alpha0[i] + this.successes[i], this.beta0[i] + this.failures[i]);
    }
    const drawn = selectTopK(theta, 0, n, k, exclude, null);
    return { items: drawn.items, scores: Float32Array.from(drawn.items, (i) => this.mean(i)) };
  }
}

function ascending(a: Int32Array): boolean {
  for (let j = 1; j < a.length; j++) if (a[j] < a[j - 1]) return false;
  return true;
}

/** Binary search in an ascending list. */
function isExcluded(exclude: Int32Array | null, i: number): boolean {
  if (exclude === null) return false;
  let lo = 0;
  let hi = exclude.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = exclude[mid];
    if (v === i) return true;
    if (v < i) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

function allowedList(mask: Uint8Array): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) out.push(i);
  return Int32Array.from(out);
}
