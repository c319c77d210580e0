// The recommender: external ids ⇄ indices, filters, exclude-seen, top-k through the Scorer, and the
// cold-start hand-off for users the model has never seen. It knows nothing about HTTP or gRPC.
import { badData } from '../errors.js';
import type { Artifact } from './artifact.js';
import type { Ranked, Scorer, TopKQuery } from './scorer.js';

export type FilterValue = string | number | boolean | (string | number | boolean)[];

export interface RecommendRequest {
  users: string[];
  k: number;
  excludeSeen: boolean;
  filter: Record<string, FilterValue> | null;
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
  rank(k: number, allow: Uint8Array | null, exclude: Int32Array | null): Ranked;
}

export class PopularityColdStart implements ColdStartPolicy {
  private readonly order: Int32Array;
  constructor(private readonly popularity: Float64Array) {
    this.order = Int32Array.from(popularity.keys()).sort((a, b) => popularity[b] - popularity[a] || a - b);
  }
  rank(k: number, allow: Uint8Array | null, exclude: Int32Array | null): Ranked {
    const items: number[] = [];
    const excluded = exclude ? new Set(exclude) : null;
    for (let r = 0; r < this.order.length && items.length < k; r++) {
      const i = this.order[r];
      if ((allow === null || allow[i] !== 0) && !excluded?.has(i)) items.push(i);
    }
    return { items: Int32Array.from(items), scores: Float32Array.from(items, (i) => this.popularity[i]) };
  }
}

const MAX_FILTER_CACHE = 256;

export class Recommender {
  private readonly userIndex: Map<string, number>;
  private readonly itemIndex: Map<string, number>;
  private readonly filterCache = new Map<string, Uint8Array>();
  coldStart: ColdStartPolicy;

  constructor(
    readonly artifact: Artifact,
    readonly scorer: Scorer,
  ) {
    this.userIndex = new Map(artifact.userIds.map((id, i) => [id, i]));
    this.itemIndex = new Map(artifact.itemIds.map((id, i) => [id, i]));
    this.coldStart = new PopularityColdStart(artifact.popularity);
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

  async recommend(req: RecommendRequest): Promise<Recommendation[]> {
    const allow = req.filter ? this.allowMask(req.filter) : null;
    const k = Math.min(req.k, this.nItems);
    const known: { pos: number; query: TopKQuery }[] = [];
    const out: Recommendation[] = new Array(req.users.length);
    req.users.forEach((userId, pos) => {
      const u = this.userIndex.get(userId);
      if (u === undefined) {
        out[pos] = this.toRecommendation(userId, 'cold_start', this.coldStart.rank(k, allow, null));
      } else {
        const exclude = req.excludeSeen ? (this.artifact.seen?.[u] ?? null) : null;
        known.push({ pos, query: { user: u, k, exclude, allow } });
      }
    });
    if (known.length > 0) {
      const ranked = await this.scorer.topK(known.map((x) => x.query));
      known.forEach(({ pos }, j) => {
        out[pos] = this.toRecommendation(req.users[pos], 'personalized', ranked[j]);
      });
    }
    return out;
  }

  /** Scores of (user, item) pairs; both ids must be known to the model. */
  async scorePairs(pairs: [string, string][]): Promise<number[]> {
    const users = new Int32Array(pairs.length);
    const items = new Int32Array(pairs.length);
    pairs.forEach(([u, i], r) => {
      const ui = this.userIndex.get(u);
      const ii = this.itemIndex.get(i);
      if (ui === undefined) throw badData(`row ${r}: unknown user_id "${u}"; pair scoring needs a known user (ask for recommendations to get the cold-start answer)`);
      if (ii === undefined) throw badData(`row ${r}: unknown item_id "${i}"`);
      users[r] = ui;
      items[r] = ii;
    });
    const scores = await this.scorer.scorePairs(users, items);
    return Array.from(scores, (s) => this.clamp(s));
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

  /** Items whose catalog fields match every filter entry (a list value matches any of its members). */
  allowMask(filter: Record<string, FilterValue>): Uint8Array {
    const key = JSON.stringify(filter);
    const cached = this.filterCache.get(key);
    if (cached) return cached;
    const catalog = this.artifact.catalog;
    if (!catalog) throw badData('filter: this model has no item catalog to filter on');
    const fields = new Set(catalog.flatMap((row) => Object.keys(row)));
    for (const f of Object.keys(filter)) {
      if (!fields.has(f)) throw badData(`filter: unknown catalog field "${f}" (fields: ${[...fields].join(', ')})`);
    }
    const mask = new Uint8Array(catalog.length);
    catalog.forEach((row, i) => {
      mask[i] = Object.entries(filter).every(([f, want]) => matches(row[f], want)) ? 1 : 0;
    });
    if (this.filterCache.size >= MAX_FILTER_CACHE) this.filterCache.delete(this.filterCache.keys().next().value!);
    this.filterCache.set(key, mask);
    return mask;
  }
}

function matches(value: unknown, want: FilterValue): boolean {
  const wanted = Array.isArray(want) ? want : [want];
  const have = Array.isArray(value) ? value : [value];
  return have.some((h) => wanted.some((w) => String(h) === String(w)));
}
