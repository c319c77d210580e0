// The recommender: external ids ⇄ indices, filters, exclude-seen, top-k through the Scorer, and the
// cold-start hand-off for users the model has never seen. It knows nothing about HTTP or gRPC.
import { badData, clip, quote } from '../errors.js';
import { LIMIT_DEFAULTS } from '../config/limits.js';
import type { Artifact } from '../model-format/artifact.js';
import { FilterIndex, type AllowedItems, type FilterValue } from './filter-index.js';
import type { Ranked, Scorer, TopKQuery } from './scorer.js';
import { selectTopK } from './topk.js';

export type { AllowedItems, FilterValue } from './filter-index.js';

export interface RecommenderOptions {
  /** Byte budget of the filter-mask cache (config.limits.filterCacheBytes). */
  filterCacheBytes?: number;
  /**
   * What the feedback loop adds to this model version, asked for once at construction (the fields it
   * fills are read-only afterwards): the bandit's cold-start and exploration policy, folded-in users.
   */
  learning?: (model: Recommender) => LearningState;
}

/** The feedback loop's part of a model version. */
export interface LearningState {
  coldStart?: ColdStartPolicy;
  explorer?: ColdStartPolicy | null;
  users?: UserStateSource | null;
}

export interface RecommendRequest {
  users: string[];
  k: number;
  excludeSeen: boolean;
  filter: Record<string, FilterValue> | null;
  /** Exploration slots: the last `explore` places of a personalized list come from `explorer`. */
  explore?: number;
}

export interface RecommendedItem {
  itemId: string;
  score: number;
  fields: Record<string, unknown> | null;
}

export type Strategy = 'personalized' | 'cold_start';

export interface Recommendation {
  userId: string;
  strategy: Strategy;
  items: RecommendedItem[];
}

/** Answers top-k for users the model does not know. Popularity by default; the bandit replaces it. */
export interface ColdStartPolicy {
  /**
   * `userId` lets a randomised policy answer one user consistently; others ignore it. Must not do
   * O(catalog) work per call: `allow.items` lists the allowed items for policies that need them.
   */
  rank(k: number, allow: AllowedItems | null, exclude: Int32Array | null, userId?: string): Ranked;
  /** Resolves once the policy can answer without blocking (e.g. its first draw pool is computed). */
  ready?(): Promise<void>;
}

// --- feedback hooks -----------------------------------------------------------------
/** What the feedback loop knows about one user beyond the model. */
export interface UserState {
  /**
   * Scores for every item (index space) from a vector re-solved after feedback (fold-in). The buffer
   * may be shared between users: rank it before the next call (and before any await).
   */
  scores?: () => Float32Array;
  /** The score of one item from the same vector. */
  score?: (item: number) => number;
  /** Items the user chose through feedback (sorted ascending), left out when exclude_seen. */
  seen?: Int32Array;
}

/** Installed by the feedback loop; a user it does not know is answered by the model as before. */
export interface UserStateSource {
  get(userId: string): UserState | undefined;
}

export class PopularityColdStart implements ColdStartPolicy {
  private readonly order: Int32Array;
  /** Popularity rank of each item (inverse of order). */
  private readonly rankOf: Int32Array;
  /** Per allowed set: its items in popularity order, so a selective filter costs O(k) per user, not a catalog walk. */
  private readonly allowedOrder = new WeakMap<Uint8Array, Int32Array>();
  constructor(private readonly popularity: Float64Array) {
    this.order = Int32Array.from(popularity.keys()).sort((a, b) => popularity[b] - popularity[a] || a - b);
    this.rankOf = new Int32Array(this.order.length);
    this.order.forEach((i, r) => (this.rankOf[i] = r));
  }
  rank(k: number, allow: AllowedItems | null, exclude: Int32Array | null): Ranked {
    const items: number[] = [];
    const excluded = exclude && exclude.length > 0 ? new Set(exclude) : null;
    let order = this.order;
    if (allow !== null) {
      let cached = this.allowedOrder.get(allow.mask);
      if (!cached) {
        cached = Int32Array.from(allow.items).sort((a, b) => this.rankOf[a] - this.rankOf[b]);
        this.allowedOrder.set(allow.mask, cached);
      }
      order = cached;
    }
    for (let r = 0; r < order.length && items.length < k; r++) {
      const i = order[r];
      if (!excluded?.has(i)) items.push(i);
    }
    return { items: Int32Array.from(items), scores: Float32Array.from(items, (i) => this.popularity[i]) };
  }
}

export class Recommender {
  private readonly userIndex: Map<string, number>;
  private readonly itemIndex: Map<string, number>;
  /** Built once here (model load), null without a catalog. */
  private readonly filters: FilterIndex | null;
  readonly coldStart: ColdStartPolicy;
  /** Feedback loop: folded-in users, and the policy filling exploration slots. */
  readonly users: UserStateSource | null;
  readonly explorer: ColdStartPolicy | null;

  constructor(
    readonly artifact: Artifact,
    readonly scorer: Scorer,
    options: RecommenderOptions = {},
  ) {
    this.userIndex = new Map(artifact.userIds.map((id, i) => [id, i]));
    this.itemIndex = new Map(artifact.itemIds.map((id, i) => [id, i]));
    this.filters = artifact.catalog ? new FilterIndex(artifact.catalog, options.filterCacheBytes ?? LIMIT_DEFAULTS.filterCacheBytes) : null;
    const learnt = options.learning?.(this) ?? {};
    this.coldStart = learnt.coldStart ?? new PopularityColdStart(artifact.popularity);
    this.explorer = learnt.explorer ?? null;
    this.users = learnt.users ?? null;
  }

  /** Resolves once the cold-start and exploration policies can answer without blocking (the registry awaits it before a swap). */
  async ready(): Promise<void> {
    await this.coldStart.ready?.();
    if (this.explorer && this.explorer !== this.coldStart) await this.explorer.ready?.();
  }

  get version(): string {
    return this.artifact.version;
  }
  get name(): string {
    return this.artifact.name;
  }
  get nItems(): number {
    return this.artifact.itemIds.length;
  }

  userIdx(id: string): number | undefined {
    return this.userIndex.get(id);
  }
  itemIdx(id: string): number | undefined {
    return this.itemIndex.get(id);
  }

  /** How this version answers a user: personally when it knows the user or has folded them in, else cold start. */
  strategyFor(userId: string): Strategy {
    return this.userIndex.has(userId) || this.users?.get(userId)?.scores ? 'personalized' : 'cold_start';
  }

  async recommend(req: RecommendRequest): Promise<Recommendation[]> {
    const allow = req.filter ? this.allowed(req.filter) : null;
    // Nothing matches: every list is empty, with no ranking work at all.
    const k = allow !== null && allow.allowedCount === 0 ? 0 : Math.min(req.k, this.nItems);
    const known: { pos: number; query: TopKQuery }[] = [];
    const out: Recommendation[] = new Array(req.users.length);
    let foldedScored = 0;
    for (let pos = 0; pos < req.users.length; pos++) {
      const userId = req.users[pos];
      const u = this.userIndex.get(userId);
      // A folded-in user is ranked from its re-solved vector, on this thread: O(items × factors) each, so
      // between such users the event loop gets a turn (probes and other requests are never held for a batch).
      const state = this.users?.get(userId);
      if (state?.scores) {
        if (foldedScored++ > 0) await new Promise<void>((resolve) => setImmediate(resolve));
        const exclude = req.excludeSeen ? mergeSorted(u === undefined ? null : (this.artifact.seen?.[u] ?? null), state.seen ?? null) : null;
        out[pos] = this.explored(req, userId, selectTopK(state.scores(), 0, this.nItems, k, exclude, allow?.mask ?? null), allow, exclude);
        continue;
      }
      if (u === undefined) {
        const exclude = req.excludeSeen ? (state?.seen ?? null) : null; // items a new user already gave feedback on
        out[pos] = this.toRecommendation(userId, 'cold_start', this.coldStart.rank(k, allow, exclude, userId));
      } else {
        const exclude = req.excludeSeen ? (this.artifact.seen?.[u] ?? null) : null;
        known.push({ pos, query: { user: u, k, exclude, allow: allow?.mask ?? null } });
      }
    }
    if (known.length > 0 && k === 0) {
      for (const { pos } of known) out[pos] = { userId: req.users[pos], strategy: 'personalized', items: [] };
    } else if (known.length > 0) {
      const ranked = await this.scorer.topK(known.map((x) => x.query));
      known.forEach(({ pos, query }, j) => {
        out[pos] = this.explored(req, req.users[pos], ranked[j], allow, query.exclude);
      });
    }
    return out;
  }

  /** Scores of (user, item) pairs; both ids must be known to the model (or the user folded in). */
  async scorePairs(pairs: [string, string][]): Promise<number[]> {
    const users = new Int32Array(pairs.length);
    const items = new Int32Array(pairs.length);
    const folded = new Map<number, number>(); // row → score from a folded-in vector
    pairs.forEach(([u, i], r) => {
      const ui = this.userIndex.get(u);
      const ii = this.itemIndex.get(i);
      const state = this.users?.get(u);
      if (state?.score && ii !== undefined) {
        folded.set(r, state.score(ii));
        return;
      }
      if (ui === undefined) throw badData(`row ${r}: unknown user_id ${quote(clip(u, 64))}; pair scoring needs a known user (ask for recommendations to get the cold-start answer)`);
      if (ii === undefined) throw badData(`row ${r}: unknown item_id ${quote(clip(i, 64))}`);
      users[r] = ui;
      items[r] = ii;
    });
    if (folded.size === pairs.length) return pairs.map((_, r) => this.clamp(folded.get(r)!));
    const scores = await this.scorer.scorePairs(users, items);
    return Array.from(scores, (s, r) => this.clamp(folded.get(r) ?? s));
  }

  /**
   * A personalized list, with its last `req.explore` places filled by the explorer. Those
   * items carry `exploration: true` among their fields and the explorer's score (a sampled reward rate).
   */
  private explored(req: RecommendRequest, userId: string, ranked: Ranked, allow: AllowedItems | null, exclude: Int32Array | null): Recommendation {
    const slots = Math.min(req.explore ?? 0, ranked.items.length);
    const rec = this.toRecommendation(userId, 'personalized', slots > 0 && this.explorer ? { items: ranked.items.slice(0, ranked.items.length - slots), scores: ranked.scores.slice(0, ranked.items.length - slots) } : ranked);
    if (slots === 0 || !this.explorer) return rec;
    const keep = rec.items.length;
    const taken = Int32Array.from(ranked.items.subarray(0, keep));
    const drawn = this.explorer.rank(ranked.items.length - keep, allow, mergeSorted(exclude, taken.sort()), userId);
    for (let r = 0; r < drawn.items.length; r++) {
      const i = drawn.items[r];
      rec.items.push({ itemId: this.artifact.itemIds[i], score: drawn.scores[r], fields: { ...(this.artifact.catalog?.[i] ?? {}), exploration: true } });
    }
    return rec;
  }

  private toRecommendation(userId: string, strategy: Strategy, ranked: Ranked): Recommendation {
    const items: RecommendedItem[] = new Array(ranked.items.length);
    for (let r = 0; r < ranked.items.length; r++) {
      const i = ranked.items[r];
      items[r] = {
        itemId: this.artifact.itemIds[i],
        score: strategy === 'personalized' ? this.clamp(ranked.scores[r]) : ranked.scores[r],
        fields: this.artifact.catalog?.[i] ?? null,
      };
    }
    return { userId, strategy, items };
  }

  /** Explicit models report scores inside the rating range; ranking uses the unclamped scores. */
  private clamp(s: number): number {
    const rr = this.artifact.ratingRange;
    return rr ? Math.min(rr[1], Math.max(rr[0], s)) : s;
  }

  /**
   * Items whose catalog fields match every filter entry (a list value matches any of its members;
   * strings case-insensitively): from the per-model index, O(Σ matching items). See filter-index.ts.
   */
  allowed(filter: Record<string, FilterValue>): AllowedItems {
    if (!this.filters) throw badData('filter: this model has no item catalog to filter on');
    return this.filters.allowed(filter);
  }

  /** The allowed items as a mask over the catalog. */
  allowMask(filter: Record<string, FilterValue>): Uint8Array {
    return this.allowed(filter).mask;
  }
}

/** Union of two ascending index lists (either may be null). */
function mergeSorted(a: Int32Array | null, b: Int32Array | null): Int32Array | null {
  if (!a || a.length === 0) return b;
  if (!b || b.length === 0) return a;
  return Int32Array.from(new Set([...a, ...b])).sort();
}
