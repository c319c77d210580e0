// The recommender: external ids ⇄ indices, filters, exclude-seen, top-k through the Scorer, and the
// cold-start hand-off for users the model has never seen. It knows nothing about HTTP or gRPC.
import { badData, clip, quote, RecserveError } from '../errors.js';
import { LIMIT_DEFAULTS, LIMIT_ENV } from '../config/limits.js';
import type { Artifact } from '../model-format/artifact.js';
import { catalogSummaryBuilt, prepareCatalogSummary } from './catalog-summary.js';
import { because, COLD_START_REASON } from './explain.js';
import { FilterIndex, type AllowedItems, type FilterValue } from './filter-index.js';
import { applyRules, capValues, diversify, pinItems, type Candidate, type DiversifyOptions, type ItemMarks, type ItemSpace, type Pin, type ScoreRule } from './rerank.js';
import type { Ranked, Scorer, TopKQuery } from './scorer.js';
import { ItemSimilarity } from './similar.js';
import { selectTopK } from './topk.js';
import { significant } from '../util/round.js';

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
  /** Solves a session's items into scores; without one, session requests are refused. */
  session?: SessionSolver | null;
}

/** One item a caller names for a session request. */
export interface SessionItem {
  item: number;
  itemId: string;
  /** In [0, 1]: the reward a feedback on this item would carry (1: liked / chosen). */
  weight: number;
}

/**
 * Folds a session's items in for one request, nothing stored (the feedback loop's fold-in does it the
 * way it folds stored feedback): scores of every item (index space) from the session's vector, over
 * the user's training history when `userId` names a model user.
 */
export interface SessionSolver {
  sessionScores(userId: string | null, items: SessionItem[]): Float32Array;
  /** Does the whole-catalog work sessions share (e.g. an item Gram) before the version serves. */
  prepare?(): Promise<void>;
  /** Whether that work is done (a session request then pays only for its own items). */
  readonly prepared?: boolean;
}

/** What narrows the items any list may hold, and which page of the ranking is answered. */
export interface ItemOptions {
  k: number;
  filter: Record<string, FilterValue> | null;
  /** Ranks skipped before the page: the answer holds ranks offset+1 … offset+k. */
  offset?: number;
  /** Never returned (ids the model does not know are ignored). */
  excludeItems?: string[];
  /** Only these may be returned, within the filter (ids the model does not know are ignored). */
  allowItems?: string[];
  /** Diversity, boosts and pins over the top candidates; absent parts fall back to the model's defaults. */
  rerank?: RerankOptions;
}

/** What a request asks of the reranking stage (request JSON: diversify, rules, pins). */
export interface RerankOptions {
  diversify?: { field?: string; maxPerValue?: number; mmrLambda?: number };
  /** Replaces the model's rules (an empty list turns them off). */
  rules?: { field: string; value: FilterValue; multiply?: number; add?: number }[];
  /** Replaces the model's pins (an empty list turns them off); positions are 1-based. */
  pins?: { itemId: string; position: number }[];
}

export interface RecommendRequest extends ItemOptions {
  /** Empty only for an anonymous session (`session` without a user). */
  users: string[];
  excludeSeen: boolean;
  /** Exploration slots: the last `explore` places of a personalized list come from `explorer`. */
  explore?: number;
  /** Items folded in for this request only (nothing is stored), for the one user or for nobody. */
  session?: { items: string[]; weights: number[] | null };
  /** Each personalized item names the history items closest to it (`because`). */
  explain?: boolean;
}

/** The items nearest to `items` by cosine on the item factors. */
export interface SimilarRequest extends ItemOptions {
  items: string[];
}

/** A history item an explanation names. */
export interface BecauseItem {
  itemId: string;
  similarity: number;
  /** The item's catalog title, when it has one. */
  title?: unknown;
}

export interface RecommendedItem {
  itemId: string;
  /** The ranking score, unclamped, 6 significant digits. */
  score: number;
  /** Explicit models, personalized items: the score clamped to the rating range. */
  rating?: number;
  fields: Record<string, unknown> | null;
  /** With `explain`: the history items behind a personalized item, or why a cold-start one was chosen. */
  because?: BecauseItem[] | string;
}

export type Strategy = 'personalized' | 'cold_start';

export interface Recommendation {
  userId: string;
  strategy: Strategy;
  items: RecommendedItem[];
}

export interface SimilarItems {
  /** The query items, as asked. */
  similarTo: string[];
  items: RecommendedItem[];
}

/** Set when a filter or allow_items restricted the items: how many they allowed, and whether nothing came back. */
export interface Restriction {
  allowed: number;
  /**
   * The restriction (with the exclusions) left no candidate in any list: every ranked list is empty
   * before the page is cut, so a page past the end of a non-empty list does not say so.
   */
  nothingMatched: boolean;
}

/** Bounds of one answer's work that the server's limits set (config.limits). */
export interface AnswerBounds {
  /** History items an explanation compares each item with. */
  explainHistory: number;
  /** Multiply-adds one request's explanations may cost: the history is cut further to fit (explainHistoryOf). */
  explainWork: number;
  /** Top candidates reranked (diversify, rules, pins), whatever the page: pages over a reranked list stay stable. */
  rerankPool: number;
}

const DEFAULT_BOUNDS: AnswerBounds = { explainHistory: LIMIT_DEFAULTS.maxExplainHistory, explainWork: LIMIT_DEFAULTS.maxExplainWork, rerankPool: LIMIT_DEFAULTS.rerankPool };

/** How one answer ranks, decided once for all its lists. */
interface Plan {
  allow: AllowedItems | null;
  /** Ranks each list needs: the page's end, or the rerank pool. */
  depth: number;
  /** exclude_items as indices. */
  excluded: Int32Array | null;
  rerank: { rules: ScoreRule[]; pins: Pin[]; diversify: DiversifyOptions | null } | null;
  /** Each rule's test of one item, parsed once per answer (a rule costs O(pool) per list, not O(catalog)). */
  ruleMatchers: Map<ScoreRule, (item: number) => boolean>;
}

/** A list ranked for one user, reranked when the plan says so; `base` holds the model's scores when rules changed them. */
interface Listed {
  ranked: Ranked;
  base: Map<number, number> | null;
}

/** Turns one user's ranked list into its answer (finish), noting whether the list had any candidate. */
type Finisher = (userId: string, strategy: Strategy, listed: Listed, exclude: Int32Array | null, history: (() => Int32Array) | null) => Recommendation;

/** 6 significant digits: what every score of an answer carries (no float32 noise in JSON). */
const roundScore = (s: number): number => significant(s, 6);

/** A turn for the event loop before O(items × factors) work on this thread. */
const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

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
  /** Cosine on the item factors (similar items, explanations); null without readable factors. */
  private readonly similarity: ItemSimilarity | null;
  /** The feedback loop's session solver (fold-in); null: session requests are refused. */
  readonly session: SessionSolver | null;
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
    this.similarity = artifact.factors ? new ItemSimilarity(artifact.factors, artifact.itemIds.length) : null;
    const learnt = options.learning?.(this) ?? {};
    this.coldStart = learnt.coldStart ?? new PopularityColdStart(artifact.popularity);
    this.explorer = learnt.explorer ?? null;
    this.users = learnt.users ?? null;
    this.session = learnt.session ?? null;
  }

  /**
   * Resolves once no request pays for whole-catalog work (the registry awaits it before a version
   * serves): the cold-start and exploration policies, the similarity unit vectors, the catalog summary
   * metadata answers with and the session solver's shared work, each computed in slices with turns for
   * the event loop (the version being replaced still serves meanwhile).
   */
  async ready(): Promise<void> {
    await this.coldStart.ready?.();
    if (this.explorer && this.explorer !== this.coldStart) await this.explorer.ready?.();
    await this.similarity?.prepare();
    await prepareCatalogSummary(this.artifact);
    await this.session?.prepare?.();
  }

  /** Whether ready()'s whole-catalog work is done (each part is also computed on first use if not). */
  get prepared(): { similarity: boolean; catalogSummary: boolean; session: boolean } {
    return { similarity: this.similarity?.built ?? true, catalogSummary: catalogSummaryBuilt(this.artifact), session: this.session?.prepared ?? true };
  }

  /** Bytes this version's filter-mask cache holds (0 without a catalog): filters grow it, rules never do. */
  get filterCacheBytes(): number {
    return this.filters?.cachedBytes ?? 0;
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
    return (await this.answer(req)).recommendations;
  }

  /** Top-k (one page of it) per user, and what the filter and allow_items left. */
  async answer(req: RecommendRequest, asked: AnswerBounds = DEFAULT_BOUNDS): Promise<{ recommendations: Recommendation[]; restriction: Restriction | null }> {
    if (req.explain && !this.similarity) throw badData('explain: this model has no readable item factors to compare items with');
    const bounds = req.explain ? { ...asked, explainHistory: this.explainHistoryOf(req, asked) } : asked;
    const plan = this.plan(req, bounds);
    let candidates = false; // whether any list had a candidate before its page was cut
    const finished = (userId: string, strategy: Strategy, listed: Listed, exclude: Int32Array | null, history: (() => Int32Array) | null) => {
      if (listed.ranked.items.length > 0) candidates = true;
      return this.finish(req, plan, userId, strategy, listed, exclude, history);
    };
    const out: Recommendation[] = req.session ? [await this.sessionList(req, plan, bounds, finished)] : new Array(req.users.length);
    const known: { pos: number; query: TopKQuery; state: UserState | undefined }[] = [];
    const { allow, depth, excluded } = plan;
    // Reranking (MMR above all: end × pool × factors) and explanations (k × history × factors) cost
    // per user on this thread: the event loop gets a turn between such users.
    const costly = plan.rerank !== null || req.explain === true;
    let foldedScored = 0;
    for (let pos = 0; pos < (req.session ? 0 : req.users.length); pos++) {
      const userId = req.users[pos];
      const u = this.userIndex.get(userId);
      // A folded-in user is ranked from its re-solved vector, on this thread: O(items × factors) each, so
      // between such users the event loop gets a turn (probes and other requests are never held for a batch).
      const state = this.users?.get(userId);
      if (state?.scores) {
        if (foldedScored++ > 0 || (costly && pos > 0)) await yieldTurn();
        const exclude = mergeSorted(req.excludeSeen ? mergeSorted(u === undefined ? null : (this.artifact.seen?.[u] ?? null), state.seen ?? null) : null, excluded);
        const ranked = selectTopK(state.scores(), 0, this.nItems, depth, exclude, allow?.mask ?? null);
        const listed = this.reranked(req, plan, ranked, exclude, (i) => state.score?.(i) ?? 0);
        out[pos] = finished(userId, 'personalized', listed, exclude, () => this.history(u, state, null, bounds));
        continue;
      }
      if (u === undefined) {
        if (plan.rerank && pos > 0) await yieldTurn();
        const exclude = mergeSorted(req.excludeSeen ? (state?.seen ?? null) : null, excluded); // items a new user already gave feedback on
        const listed = this.reranked(req, plan, this.coldStart.rank(depth, allow, exclude, userId), exclude, (i) => this.artifact.popularity[i]);
        out[pos] = finished(userId, 'cold_start', listed, exclude, null);
      } else {
        const exclude = mergeSorted(req.excludeSeen ? (this.artifact.seen?.[u] ?? null) : null, excluded);
        known.push({ pos, query: { user: u, k: depth, exclude, allow: allow?.mask ?? null }, state });
      }
    }
    if (known.length > 0) {
      const ranked = depth === 0 ? known.map(() => EMPTY) : await this.scorer.topK(known.map((x) => x.query));
      const pinned = await this.pinnedScores(plan, known.map((x, j) => ({ user: x.query.user, ranked: ranked[j] })));
      for (let j = 0; j < known.length; j++) {
        const { pos, query, state } = known[j];
        if (costly && j > 0) await yieldTurn();
        const listed = this.reranked(req, plan, ranked[j], query.exclude, (i) => pinned[j].get(i) ?? 0);
        out[pos] = finished(req.users[pos], 'personalized', listed, query.exclude, () => this.history(query.user, state, null, bounds));
      }
    }
    return { recommendations: out, restriction: allow === null ? null : { allowed: allow.allowedCount, nothingMatched: !candidates } };
  }

  /**
   * The session's list: its items folded in for this request only (the SessionSolver), over the user's
   * history when `users` names one. Session items are left out when exclude_seen, like seen ones.
   */
  private async sessionList(req: RecommendRequest, plan: Plan, bounds: AnswerBounds, finished: Finisher): Promise<Recommendation> {
    const { items, weights } = req.session!;
    const userId = req.users[0] ?? null;
    const session: SessionItem[] = items.map((itemId, r) => {
      const item = this.itemIndex.get(itemId);
      if (item === undefined) throw new RecserveError('not_found', `items/${r}: unknown item_id ${quote(clip(itemId, 64))}`);
      return { item, itemId, weight: weights?.[r] ?? 1 };
    });
    const solver = this.sessionSolver();
    const u = userId === null ? undefined : this.userIndex.get(userId);
    const state = userId === null ? undefined : this.users?.get(userId);
    const sessionSeen = Int32Array.from(new Set(session.map((s) => s.item))).sort();
    const exclude = mergeSorted(req.excludeSeen ? mergeSorted(mergeSorted(u === undefined ? null : (this.artifact.seen?.[u] ?? null), state?.seen ?? null), sessionSeen) : null, plan.excluded);
    await yieldTurn();
    const scores = solver.sessionScores(userId, session);
    const ranked = selectTopK(scores, 0, this.nItems, plan.depth, exclude, plan.allow?.mask ?? null);
    const order = Int32Array.from(session, (s) => s.item).reverse(); // the latest session items explain first
    return finished(userId ?? '', 'personalized', this.reranked(req, plan, ranked, exclude, (i) => scores[i]), exclude, () => this.history(u, state, order, bounds));
  }

  private sessionSolver(): SessionSolver {
    if (!this.session) throw badData('items: this model has no readable item factors to fold session items in with');
    return this.session;
  }

  /** The items nearest to the query items by mean cosine on the item factors (the query items left out). */
  async similar(req: SimilarRequest, bounds: AnswerBounds = DEFAULT_BOUNDS): Promise<{ similar: SimilarItems; restriction: Restriction | null }> {
    if (!this.similarity) throw badData('similar_to: this model has no readable item factors to compare items with');
    const query = Int32Array.from(req.items, (id, r) => {
      const i = this.itemIndex.get(id);
      if (i === undefined) throw new RecserveError('not_found', `similar_to${req.items.length > 1 ? `/${r}` : ''}: unknown item_id ${quote(clip(id, 64))}`);
      return i;
    });
    const plan = this.plan(req, bounds);
    const exclude = mergeSorted(Int32Array.from(new Set(query)).sort(), plan.excluded);
    const scores = await this.similarity.meanCosineTo(query);
    const listed = this.reranked(req, plan, selectTopK(scores, 0, this.nItems, plan.depth, exclude, plan.allow?.mask ?? null), exclude, (i) => scores[i]);
    const items = this.itemsOf(this.page(req, listed.ranked), false, null, null);
    return { similar: { similarTo: req.items, items }, restriction: plan.allow === null ? null : { allowed: plan.allow.allowedCount, nothingMatched: listed.ranked.items.length === 0 } };
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
    // Pair scores stay the model's prediction of a rating: clamped to the range for explicit models.
    if (folded.size === pairs.length) return pairs.map((_, r) => roundScore(this.clamp(folded.get(r)!)));
    const scores = await this.scorer.scorePairs(users, items);
    return Array.from(scores, (s, r) => roundScore(this.clamp(folded.get(r) ?? s)));
  }

  /**
   * Restrictions, depth and reranking of one answer. A reranked answer ranks the same top `rerankPool`
   * candidates whatever the page, so its pages stay stable and non-overlapping; the page must end within it.
   */
  private plan(req: ItemOptions, bounds: AnswerBounds): Plan {
    const allow = this.restrict(req);
    const end = (req.offset ?? 0) + req.k;
    const rerank = this.rerankOf(req.rerank);
    if (rerank && end > bounds.rerankPool) {
      throw badData(`offset + k = ${end}: a reranked list (diversify, rules or pins) is the top ${bounds.rerankPool} candidates, so pages end there (limit ${LIMIT_ENV.rerankPool}=${bounds.rerankPool})`);
    }
    const depth = allow !== null && allow.allowedCount === 0 ? 0 : this.depthOf(end, rerank !== null, bounds.rerankPool);
    const ruleMatchers = new Map<ScoreRule, (item: number) => boolean>();
    rerank?.rules.forEach((rule, n) => ruleMatchers.set(rule, this.ruleMatcher(rule, n)));
    return { allow, depth, excluded: this.indicesOf(req.excludeItems), rerank, ruleMatchers };
  }

  /** Items each list of the request ranks (before a filter narrows it): what the request's ranking work is bounded by. */
  rankDepth(req: ItemOptions, rerankPool: number): number {
    return this.depthOf((req.offset ?? 0) + req.k, this.reranks(req), rerankPool);
  }

  /** Whether the request's lists are reranked: diversify, rules or pins, the model's defaults included. */
  reranks(req: ItemOptions): boolean {
    return this.rerankOf(req.rerank) !== null;
  }

  private depthOf(end: number, reranks: boolean, rerankPool: number): number {
    return Math.min(reranks ? rerankPool : end, this.nItems);
  }

  /** Whether rule `n` applies to an item; its errors name the rule (not the filter). */
  private ruleMatcher(rule: ScoreRule, n: number): (item: number) => boolean {
    if (!this.filters) throw badData(`rules/${n}: this model has no item catalog to match rules on`);
    if (!this.filters.fieldNames().includes(rule.field)) throw badData(`rules/${n}/field: ${quote(clip(rule.field, 64))} is not a catalog field of this model`);
    try {
      return this.filters.matcher(rule.field, rule.value);
    } catch (e) {
      if (!(e instanceof RecserveError) || e.kind !== 'bad_data') throw e;
      // The filter index names the condition as a filter's (`filter.year: …`); this one is the rule's value.
      throw badData(`rules/${n}/value: ${e.message.replace(/^filter(\.[^:]*)?: /, '')}`);
    }
  }

  /** The request's diversify, rules and pins (rules and pins default to the model's); null when nothing reranks. */
  private rerankOf(asked: RerankOptions | undefined): Plan['rerank'] {
    const { settings } = this.artifact;
    const rules = asked?.rules ?? settings.rules ?? [];
    const pins: Pin[] = [];
    for (const p of asked?.pins ?? settings.pins ?? []) {
      const item = this.itemIndex.get(p.itemId);
      if (item !== undefined) pins.push({ item, position: p.position }); // like exclude_items: an unknown id is ignored
    }
    const div = asked?.diversify ?? null;
    if (div?.field !== undefined && !this.filters?.fieldNames().includes(div.field)) throw badData(`diversify.field: ${quote(clip(div.field, 64))} is not a catalog field of this model`);
    return rules.length === 0 && pins.length === 0 && div === null ? null : { rules, pins, diversify: div };
  }

  /**
   * Rules, diversity and pins over a ranked pool (the list is the pool's, whatever the page), then cut at
   * the page's end. Pins honour the filter,
   * allow_items and exclusions; a pinned item outside the pool is scored by `scoreOf`.
   */
  private reranked(req: ItemOptions, plan: Plan, ranked: Ranked, exclude: Int32Array | null, scoreOf: (item: number) => number): Listed {
    if (!plan.rerank || ranked.items.length === 0) return { ranked, base: null };
    const { rules, pins, diversify: div } = plan.rerank;
    const end = Math.min((req.offset ?? 0) + req.k, this.nItems);
    let cands: Candidate[] = Array.from(ranked.items, (item, r) => ({ item, score: ranked.scores[r] }));
    const base = new Map(cands.map((c) => [c.item, c.score]));
    if (rules.length > 0) cands = applyRules(cands, rules, (rule) => this.ruleMarks(plan, rule, cands));
    const pooled = new Map(cands.map((c) => [c.item, c.score]));
    const usable = pins.filter((p) => (plan.allow === null || plan.allow.mask[p.item] === 1) && !exclude?.includes(p.item));
    // Picks are greedy, so the first end + pins of them are those of the whole pool's list: each pin takes
    // at most one of them away from the page.
    if (div) cands = diversify(cands, Math.min(end + usable.length, cands.length), div, this.itemSpace());
    // A pinned item diversity left out, or outside the pool, still carries its score.
    const listed = new Set(cands.map((c) => c.item));
    for (const p of usable) {
      if (listed.has(p.item)) continue;
      let s = pooled.get(p.item);
      if (s === undefined) base.set(p.item, (s = scoreOf(p.item)));
      cands.push({ item: p.item, score: s });
    }
    // Pins apply over the whole pool, not the page: a pinned item leaves its natural rank on every page, so
    // pages of any size concatenate to one list holding it once, at its position.
    cands = (usable.length > 0 ? pinItems(cands, usable, plan.depth) : cands).slice(0, end);
    return { ranked: { items: Int32Array.from(cands, (c) => c.item), scores: Float32Array.from(cands, (c) => c.score) }, base: rules.length > 0 ? base : null };
  }

  /** The candidates a rule matches, tested one by one (a pool of ≤ rerankPool, never a catalog mask). */
  private ruleMarks(plan: Plan, rule: ScoreRule, cands: Candidate[]): ItemMarks {
    const matches = plan.ruleMatchers.get(rule)!;
    const marks: Record<number, number> = {};
    for (const c of cands) if (matches(c.item)) marks[c.item] = 1;
    return marks;
  }

  /** Model scores of the pinned items each known user's pool lacks, in one scorer call. */
  private async pinnedScores(plan: Plan, lists: { user: number; ranked: Ranked }[]): Promise<Map<number, number>[]> {
    const out = lists.map(() => new Map<number, number>());
    const pins = plan.rerank?.pins ?? [];
    if (pins.length === 0 || plan.depth === 0) return out;
    const rows: { list: number; item: number }[] = [];
    lists.forEach((l, j) => {
      for (const p of pins) if (!l.ranked.items.includes(p.item)) rows.push({ list: j, item: p.item });
    });
    if (rows.length === 0) return out;
    const scores = await this.scorer.scorePairs(Int32Array.from(rows, (r) => lists[r.list].user), Int32Array.from(rows, (r) => r.item));
    rows.forEach((r, q) => out[r.list].set(r.item, scores[q]));
    return out;
  }

  private itemSpace(): ItemSpace {
    const f = this.artifact.factors;
    return { catalog: this.artifact.catalog, itemFactors: f?.itemFactors ?? null, factors: f?.factors ?? 0 };
  }

  /** The page of a ranked prefix. */
  private page(req: ItemOptions, ranked: Ranked): Ranked {
    const from = req.offset ?? 0;
    const to = from + req.k;
    if (from === 0 && ranked.items.length <= to) return ranked;
    return { items: ranked.items.slice(from, to), scores: ranked.scores.slice(from, to) };
  }

  /** One user's list from its ranked prefix: the page, with exploration slots filled when asked (explore()). */
  private finish(req: RecommendRequest, plan: Plan, userId: string, strategy: Strategy, listed: Listed, exclude: Int32Array | null, history: (() => Int32Array) | null): Recommendation {
    const { ranked, base } = listed;
    const page = this.page(req, ranked);
    const personal = strategy === 'personalized';
    const why = req.explain ? (personal && history ? history() : EMPTY_HISTORY) : null;
    const items = this.itemsOf(page, personal, why, base);
    const slots = personal && this.explorer ? Math.min(req.explore ?? 0, page.items.length) : 0;
    if (slots > 0) this.explore(req, plan, userId, ranked, items, slots, exclude, why !== null);
    return { userId, strategy, items };
  }

  /**
   * Exploration slots (personalized lists): the last `slots` places of the page that hold no pinned item
   * get the explorer's draws, so pins keep their positions. With a diversify field, a draw is taken only
   * while it stays within max_per_value, counted over the list up to the page's end; a place no such
   * draw fills keeps its item. Nothing of that list (earlier pages included) is drawn again. Exploration
   * items carry `exploration: true` among their fields and the explorer's score (a sampled reward rate).
   */
  private explore(req: RecommendRequest, plan: Plan, userId: string, ranked: Ranked, items: RecommendedItem[], slots: number, exclude: Int32Array | null, explain: boolean): void {
    const from = req.offset ?? 0;
    const end = from + items.length;
    const pinned = new Set(plan.rerank?.pins.map((p) => p.item) ?? []);
    const places: number[] = []; // page places, last first
    for (let r = items.length - 1; r >= 0 && places.length < slots; r--) if (!pinned.has(ranked.items[from + r])) places.push(r);
    if (places.length === 0) return;
    const listed = ranked.items.subarray(0, end);
    const cap = this.capOf(plan, listed);
    // With a cap, draw the pool's depth so that enough draws fit: O(depth) for the explorer, not a catalog walk.
    const drawn = this.explorer!.rank(cap ? plan.depth : places.length, plan.allow, mergeSorted(exclude, Int32Array.from(listed).sort()), userId);
    const filled: number[] = [];
    const chosen: number[] = []; // indices into drawn
    const used = new Uint8Array(drawn.items.length);
    for (const r of places) {
      cap?.remove(ranked.items[from + r]); // the place's own item no longer counts (a skipped draw may fit now)
      let j = 0;
      while (j < drawn.items.length && (used[j] === 1 || (cap !== null && !cap.fits(drawn.items[j])))) j++;
      if (j === drawn.items.length) {
        cap?.add(ranked.items[from + r]); // nothing fits here: the place keeps its item
        continue;
      }
      cap?.add(drawn.items[j]);
      used[j] = 1;
      filled.push(r);
      chosen.push(j);
    }
    chosen.sort((x, y) => x - y);
    // The draws in the explorer's order, over the filled places top to bottom.
    filled.reverse().forEach((r, n) => {
      const i = drawn.items[chosen[n]];
      const item: RecommendedItem = { itemId: this.artifact.itemIds[i], score: roundScore(drawn.scores[chosen[n]]), fields: { ...(this.artifact.catalog?.[i] ?? {}), exploration: true } };
      if (explain) item.because = COLD_START_REASON;
      items[r] = item;
    });
  }

  /** The diversify field's per-value counts over `listed`, when the plan caps a field (null otherwise). */
  private capOf(plan: Plan, listed: Int32Array): { fits(item: number): boolean; add(item: number): void; remove(item: number): void } | null {
    const div = plan.rerank?.diversify;
    const catalog = this.artifact.catalog;
    if (div?.field === undefined || !catalog) return null;
    const field = div.field;
    const limit = div.maxPerValue ?? 1;
    const counts = new Map<string, number>();
    const change = (item: number, by: number) => {
      for (const v of capValues(catalog[item], field)) counts.set(v, (counts.get(v) ?? 0) + by);
    };
    for (const i of listed) change(i, 1);
    return { fits: (item) => capValues(catalog[item], field).every((v) => (counts.get(v) ?? 0) < limit), add: (item) => change(item, 1), remove: (item) => change(item, -1) };
  }

  /**
   * Answer items: the unclamped score, the clamped rating (explicit models, personalized items) and,
   * with `history`, the explanation (history items for a personalized item, the cold-start reason else).
   */
  private itemsOf(ranked: Ranked, personal: boolean, history: Int32Array | null, base: Map<number, number> | null): RecommendedItem[] {
    const rr = personal ? this.artifact.ratingRange : null;
    const items: RecommendedItem[] = new Array(ranked.items.length);
    for (let r = 0; r < ranked.items.length; r++) {
      const i = ranked.items[r];
      const s = ranked.scores[r];
      const item: RecommendedItem = { itemId: this.artifact.itemIds[i], score: roundScore(s), fields: this.artifact.catalog?.[i] ?? null };
      // The rating is the model's, before any rule moved the score.
      if (rr) item.rating = roundScore(this.clamp(base?.get(i) ?? s));
      if (history) item.because = personal ? this.because(i, history) : COLD_START_REASON;
      items[r] = item;
    }
    return items;
  }

  private because(item: number, history: Int32Array): BecauseItem[] {
    return because(this.similarity!, item, history).map(({ item: h, similarity }) => {
      const title = this.artifact.catalog?.[h]?.title;
      return title === undefined ? { itemId: this.artifact.itemIds[h], similarity: roundScore(similarity) } : { itemId: this.artifact.itemIds[h], similarity: roundScore(similarity), title };
    });
  }

  /**
   * History items each explained item is compared with: the bound, cut so that explained items ×
   * history × factors stays within the work bound (the page's items of every list count, as asked).
   */
  private explainHistoryOf(req: RecommendRequest, bounds: AnswerBounds): number {
    const lists = req.session ? 1 : req.users.length;
    const explained = lists * Math.min(req.k, this.nItems) * (this.artifact.factors?.factors ?? 0);
    return explained === 0 ? bounds.explainHistory : Math.min(bounds.explainHistory, Math.floor(bounds.explainWork / explained));
  }

  /** What explains a user's items: session items (latest first), then feedback, then training history; at most the bound. */
  private history(u: number | undefined, state: UserState | undefined, session: Int32Array | null, bounds: AnswerBounds): Int32Array {
    const out = new Set<number>();
    for (const list of [session, state?.seen ?? null, u === undefined ? null : (this.artifact.seen?.[u] ?? null)]) {
      if (!list) continue;
      for (const i of list) {
        if (out.size === bounds.explainHistory) return Int32Array.from(out);
        out.add(i);
      }
    }
    return Int32Array.from(out);
  }

  /** Explicit models report ratings inside the rating range; ranking uses the unclamped scores. */
  private clamp(s: number): number {
    const rr = this.artifact.ratingRange;
    return rr ? Math.min(rr[1], Math.max(rr[0], s)) : s;
  }

  /** The filter's items, narrowed to allow_items when the request lists them; null when neither is given. */
  private restrict(req: ItemOptions): AllowedItems | null {
    const byFilter = req.filter ? this.allowed(req.filter) : null;
    if (!req.allowItems) return byFilter;
    const mask = new Uint8Array(this.nItems);
    const items: number[] = [];
    for (const id of req.allowItems) {
      const i = this.itemIndex.get(id);
      if (i === undefined || mask[i] === 1 || (byFilter !== null && byFilter.mask[i] === 0)) continue;
      mask[i] = 1;
      items.push(i);
    }
    return { mask, items: Int32Array.from(items).sort(), allowedCount: items.length };
  }

  /** Ascending indices of the ids the model knows (the others are ignored); null for none. */
  private indicesOf(ids: string[] | undefined): Int32Array | null {
    if (!ids || ids.length === 0) return null;
    const out = new Set<number>();
    for (const id of ids) {
      const i = this.itemIndex.get(id);
      if (i !== undefined) out.add(i);
    }
    return out.size === 0 ? null : Int32Array.from(out).sort();
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

const EMPTY: Ranked = { items: new Int32Array(0), scores: new Float32Array(0) };
const EMPTY_HISTORY = new Int32Array(0);

/** Union of two ascending index lists (either may be null). */
function mergeSorted(a: Int32Array | null, b: Int32Array | null): Int32Array | null {
  if (!a || a.length === 0) return b;
  if (!b || b.length === 0) return a;
  return Int32Array.from(new Set([...a, ...b])).sort();
}
