// Serve-time re-ranking of a scored candidate list (best first): diversity (a cap per catalog value
// and/or maximal marginal relevance on item-factor cosine), business rules (boost or bury by a catalog
// field value) and pinned positions. Pure functions over their inputs, no I/O; each is bounded by the
// candidate pool it is given (the caller bounds the pool).
import { badData } from '../errors.js';
import { normaliseFilterValue, type FilterValue } from './filter-index.js';

export interface Candidate {
  item: number;
  score: number;
}

export interface DiversifyOptions {
  /** Catalog field whose values are capped. */
  field?: string;
  /** At most this many picks per value of `field` (default 1; an item counts towards each member of a list). */
  maxPerValue?: number;
  /** In [0, 1]: 1 = pure relevance, lower trades relevance for dissimilarity to what was picked. */
  mmrLambda?: number;
}

export interface ItemSpace {
  catalog: Record<string, unknown>[] | null;
  itemFactors: Float32Array | null;
  factors: number;
}

/** The normalised values of an item's field (a list field gives several; none means uncapped). */
export function capValues(row: Record<string, unknown> | undefined, field: string): string[] {
  const raw = row?.[field];
  if (raw === undefined) return [];
  const out = new Set<string>();
  for (const m of Array.isArray(raw) ? raw : [raw]) {
    const v = normaliseFilterValue(m);
    if (v !== null) out.add(v);
  }
  return [...out];
}

/** Cosine of items a and b (candidates ja and jb, whose factor norms are given); 0 for a zero vector. */
function cosine(f: Float32Array, d: number, a: number, b: number, norms: Float64Array, ja: number, jb: number): number {
  if (norms[ja] === 0 || norms[jb] === 0) return 0;
  let dot = 0;
  for (let x = 0; x < d; x++) dot += f[a * d + x] * f[b * d + x];
  return dot / (norms[ja] * norms[jb]);
}

/**
 * Picks up to `n` candidates honouring the per-value cap and/or MMR (cosine on item factors); order =
 * pick order, each keeping its score. MMR takes, at each step, the candidate maximising
 * λ·relevance − (1 − λ)·(its largest cosine to a pick so far), relevance being the score min-max
 * scaled to [0, 1] over `cands`; ties go to the earlier candidate, so λ = 1 is the input order.
 * Cost: O(|cands|) with the cap alone, O(n · |cands| · factors) with MMR.
 */
export function diversify(cands: Candidate[], n: number, opts: DiversifyOptions, space: ItemSpace): Candidate[] {
  const lambda = opts.mmrLambda ?? 1;
  if (!(lambda >= 0 && lambda <= 1)) throw badData(`diversify.mmr_lambda must be within [0, 1], got ${lambda}`);
  const cap = opts.maxPerValue;
  if (cap !== undefined && !(Number.isInteger(cap) && cap >= 1)) throw badData(`diversify.max_per_value must be an integer ≥ 1, got ${cap}`);
  if (cap !== undefined && opts.field === undefined) throw badData('diversify.max_per_value needs diversify.field');
  if (opts.field !== undefined && space.catalog === null) throw badData('diversify.field: this model has no catalog');
  if (lambda < 1 && space.itemFactors === null) throw badData('diversify.mmr_lambda: this model has no item factors to compare items by');
  const field = opts.field;
  const limit = cap ?? (field !== undefined ? 1 : Infinity);
  const taken = new Map<string, number>();
  const values = field === undefined ? null : cands.map((c) => capValues(space.catalog![c.item], field));
  const fits = (j: number) => values === null || values[j].every((v) => (taken.get(v) ?? 0) < limit);
  const take = (j: number, out: Candidate[]) => {
    out.push(cands[j]);
    if (values) for (const v of values[j]) taken.set(v, (taken.get(v) ?? 0) + 1);
  };
  const out: Candidate[] = [];
  if (lambda === 1) {
    for (let j = 0; j < cands.length && out.length < n; j++) if (fits(j)) take(j, out);
    return out;
  }
  const f = space.itemFactors!;
  const d = space.factors;
  const norms = Float64Array.from(cands, (c) => {
    let s = 0;
    for (let x = 0; x < d; x++) s += f[c.item * d + x] ** 2;
    return Math.sqrt(s);
  });
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of cands) {
    lo = Math.min(lo, c.score);
    hi = Math.max(hi, c.score);
  }
  const relevance = (j: number) => (hi > lo ? (cands[j].score - lo) / (hi - lo) : 1);
  /** Largest cosine of each candidate to the picks so far (-Infinity before the first pick). */
  const closest = new Float64Array(cands.length).fill(-Infinity);
  const picked = new Uint8Array(cands.length);
  while (out.length < n) {
    let best = -1;
    let bestValue = -Infinity;
    for (let j = 0; j < cands.length; j++) {
      if (picked[j] || !fits(j)) continue;
      const sim = closest[j] === -Infinity ? 0 : closest[j];
      const value = lambda * relevance(j) - (1 - lambda) * sim;
      if (value > bestValue) [best, bestValue] = [j, value];
    }
    if (best < 0) break;
    picked[best] = 1;
    take(best, out);
    for (let j = 0; j < cands.length; j++) {
      if (picked[j]) continue;
      closest[j] = Math.max(closest[j], cosine(f, d, cands[j].item, cands[best].item, norms, j, best));
    }
  }
  return out;
}

/** Boost (multiply > 1 / add > 0) or bury (multiply < 1 / add < 0) the items the rule's value matches. */
export interface ScoreRule {
  field: string;
  value: FilterValue;
  multiply?: number;
  add?: number;
}

/** float32's largest finite value: rule scores saturate here, as answers carry scores as float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** 1 at the items a rule matches, by item index: a catalog mask, or marks over the candidates alone. */
export type ItemMarks = { readonly [item: number]: number | undefined };

/**
 * New scores: s·multiply + add for items the rule's marks hold (rules apply in order), in float64 and
 * saturated at ±FLOAT32_MAX after each rule (32 legal ×100 rules reach 1e64·s, past float32, which
 * answers would carry as null or Infinity); re-sorted best first, ties keep input order. `maskOf` gives
 * each rule's marks (at least over the candidates).
 */
export function applyRules(cands: Candidate[], rules: ScoreRule[], maskOf: (rule: ScoreRule) => ItemMarks): Candidate[] {
  const masks = rules.map(maskOf);
  const scored = cands.map((c, order) => {
    let s = c.score;
    rules.forEach((r, j) => {
      if (masks[j][c.item] === 1) s = Math.min(FLOAT32_MAX, Math.max(-FLOAT32_MAX, s * (r.multiply ?? 1) + (r.add ?? 0)));
    });
    return { item: c.item, score: s, order };
  });
  scored.sort((a, b) => b.score - a.score || a.order - b.order);
  return scored.map(({ item, score }) => ({ item, score }));
}

export interface Pin {
  item: number;
  /** 1-based position in the final list. */
  position: number;
}

/**
 * Places each pinned item at its position (removing it from elsewhere), shifting the others down;
 * length ≤ n. A pinned item keeps its score when `list` holds it, else its score is NaN (callers that
 * report scores put the pinned items' candidates in `list`). When two pins name one position the
 * first listed takes it and the other the next free one; an item pinned twice keeps its first pin;
 * pins beyond n are dropped, and pins beyond the end of a short list close up after it.
 */
export function pinItems(list: Candidate[], pins: Pin[], n: number): Candidate[] {
  if (pins.length === 0) return list.slice(0, n);
  const scoreOf = new Map<number, number>();
  for (const c of list) if (!scoreOf.has(c.item)) scoreOf.set(c.item, c.score);
  const slots: (Candidate | undefined)[] = new Array(n);
  const pinned = new Set<number>();
  const ordered = pins.map((p, order) => ({ ...p, order })).sort((a, b) => a.position - b.position || a.order - b.order);
  for (const p of ordered) {
    if (pinned.has(p.item) || !(p.position >= 1)) continue;
    let slot = Math.floor(p.position) - 1;
    while (slot < n && slots[slot] !== undefined) slot++;
    if (slot >= n) continue;
    slots[slot] = { item: p.item, score: scoreOf.get(p.item) ?? NaN };
    pinned.add(p.item);
  }
  const rest = list.filter((c) => !pinned.has(c.item));
  const out: Candidate[] = [];
  let r = 0;
  for (let slot = 0; slot < n; slot++) {
    const c = slots[slot] ?? rest[r++];
    if (c !== undefined) out.push(c);
  }
  return out;
}
