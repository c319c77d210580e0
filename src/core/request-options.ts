// The recommendation options every protocol carries in the same JSON shape (Seldon v1 jsonData, V2
// parameters), read into the core's request once: item restrictions, the page, sessions, similar
// items, explanations and reranking. The JSON has been checked against openapi.yaml's
// RecommendRequest first (types, per-list sizes); the core (service.ts) bounds the totals.
import { badData } from '../errors.js';
import { limitHint, type Limits } from '../config/limits.js';
import type { BecauseItem, FilterValue, ItemOptions, RecommendRequest, RerankOptions } from '../model/recommender.js';

export type JsonId = string | number;

/** The option members of a RecommendRequest JSON (openapi.yaml). */
export interface OptionsJson {
  k?: number;
  offset?: number;
  filter?: Record<string, FilterValue>;
  exclude_items?: JsonId[];
  allow_items?: JsonId[];
  similar_to?: JsonId | JsonId[];
  items?: JsonId[];
  weights?: number[];
  explain?: boolean;
  diversify?: { field?: string; max_per_value?: number; mmr_lambda?: number };
  rules?: { field: string; value: FilterValue; multiply?: number; add?: number }[];
  pins?: { item_id: JsonId; position: number }[];
}

/** Members that make sense only for a user's recommendations (not for pair scoring). */
export const RECOMMEND_ONLY = ['offset', 'exclude_items', 'allow_items', 'similar_to', 'items', 'weights', 'explain', 'diversify', 'rules', 'pins'] as const;

const WEIGHTS_NEED_ITEMS = 'weights are the weights of session items; send them with items';

/** An id of the JSON as the core names items: numbers by their decimal text (the schema refuses other forms). */
type IdReader = (v: JsonId, at: string) => string;

/** Restrictions, page and reranking: what similar items and recommendations share. */
export function itemOptions(j: OptionsJson, k: number, filter: Record<string, FilterValue> | null, idOf: IdReader, where: string): ItemOptions {
  const out: ItemOptions = { k, filter };
  if (j.offset !== undefined) out.offset = j.offset;
  if (j.exclude_items) out.excludeItems = j.exclude_items.map((v, r) => idOf(v, `${where}/exclude_items/${r}`));
  if (j.allow_items) out.allowItems = j.allow_items.map((v, r) => idOf(v, `${where}/allow_items/${r}`));
  const rerank = rerankOptions(j, idOf, where);
  if (rerank) out.rerank = rerank;
  return out;
}

/** The query items of a similar-items request (one id or a list). */
export function similarItems(j: OptionsJson, idOf: IdReader, where: string): string[] {
  if (j.weights) throw badData(`${where}: ${WEIGHTS_NEED_ITEMS}`);
  const q = j.similar_to!;
  return Array.isArray(q) ? q.map((v, r) => idOf(v, `${where}/similar_to/${r}`)) : [idOf(q, `${where}/similar_to`)];
}

/** Session items and explanations, added to a recommendation request. */
export function recommendOptions(j: OptionsJson, request: RecommendRequest, idOf: IdReader, where: string): RecommendRequest {
  if (j.weights && !j.items) throw badData(`${where}: ${WEIGHTS_NEED_ITEMS}`);
  if (j.items) request.session = { items: j.items.map((v, r) => idOf(v, `${where}/items/${r}`)), weights: j.weights ?? null };
  if (j.explain !== undefined) request.explain = j.explain;
  return request;
}

function rerankOptions(j: OptionsJson, idOf: IdReader, where: string): RerankOptions | null {
  if (j.diversify === undefined && j.rules === undefined && j.pins === undefined) return null;
  const out: RerankOptions = {};
  if (j.diversify) {
    const { field, max_per_value: maxPerValue, mmr_lambda: mmrLambda } = j.diversify;
    if (field === undefined && mmrLambda === undefined) throw badData(`${where}/diversify needs a field (with max_per_value) or mmr_lambda`);
    if (maxPerValue !== undefined && field === undefined) throw badData(`${where}/diversify/max_per_value caps items per value of a field; name the field`);
    out.diversify = { ...(field !== undefined ? { field, maxPerValue: maxPerValue ?? 1 } : {}), ...(mmrLambda !== undefined ? { mmrLambda } : {}) };
  }
  if (j.rules) {
    j.rules.forEach((r, n) => {
      if (r.multiply === undefined && r.add === undefined) throw badData(`${where}/rules/${n} needs multiply or add (or both)`);
    });
    out.rules = j.rules.map((r) => ({ ...r }));
  }
  if (j.pins) out.pins = j.pins.map((p, r) => ({ itemId: idOf(p.item_id, `${where}/pins/${r}/item_id`), position: p.position }));
  return out;
}

/**
 * similar_to's length when it is a list, read before the schema: the schema's one-id-or-a-list form
 * would report an empty or long list as "must be string". `at` names the member (jsonData/similar_to).
 */
export function checkSimilarTo(q: unknown, limits: Limits, at: string): void {
  if (!Array.isArray(q)) return;
  if (q.length === 0) throw badData(`${at} is an empty list; name at least one item id`);
  if (q.length > limits.maxQueryItems) throw badData(`${at} lists ${q.length} items; at most ${limits.maxQueryItems}${limitHint(limits, 'maxQueryItems')}`);
}

/** Fields, value count and text sizes of a filter (the schema bounds each part; this bounds the sum). */
export function checkFilter(filter: Record<string, FilterValue>, limits: Limits, where: string): void {
  let values = 0;
  for (const v of Object.values(filter)) values += filterValueCount(v);
  if (values > limits.maxFilterValues) {
    throw badData(`${where} lists ${values} accepted values; at most ${limits.maxFilterValues} in all${limitHint(limits, 'maxFilterValues')}`);
  }
}

/** Values one filter entry (or rule value) names: a list's members, a condition's operands (its in/not lists counted in full). */
export function filterValueCount(v: FilterValue): number {
  if (Array.isArray(v)) return v.length;
  if (typeof v !== 'object' || v === null) return 1;
  let n = 0;
  for (const operand of Object.values(v as Record<string, unknown>)) n += Array.isArray(operand) ? operand.length : 1;
  return n;
}

/** An explanation's history item in the answers' JSON (v1 jsonData, V2's because text). */
export function becauseJson(b: BecauseItem): Record<string, unknown> {
  return b.title === undefined ? { item_id: b.itemId, similarity: b.similarity } : { item_id: b.itemId, similarity: b.similarity, title: b.title };
}
