// Every size a client controls, bounded once here and checked before any work or allocation on every
// path (express, the REST fast path, gRPC). Defaults fit the shipped pod (1 GiB, 2 cores); each limit
// is an env variable, and a refusal names it (`limitHint`) so an operator knows what to raise.
import { defaultsOf, intField, readSection, type Field, type Section } from './setting.js';

export interface Limits {
  /**
   * Most recommended items one answer may hold (users × k, k capped by the catalog): RECSERVE_MAX_RESULT_ITEMS.
   * max_users × max_k alone would allow a million items (hundreds of MB of JSON) in one legal request, and
   * encoding and writing an answer runs on the event loop: 120,000 items (13 MB) held it ≈ 400 ms,
   * 10,000 items (1.2 MB) ≈ 40 ms.
   */
  maxResultItems: number;
  /** Most (user, item) pairs one request may score: RECSERVE_MAX_PAIRS. */
  maxPairs: number;
  /** Most values in a data.tensor, and most entries in any one shape dimension: RECSERVE_MAX_TENSOR_VALUES. */
  maxTensorValues: number;
  /** Longest user id, item id or puid (characters): RECSERVE_MAX_ID_LENGTH. */
  maxIdLength: number;
  /** Deepest JSON nesting of a message (objects and arrays), checked before parsing: RECSERVE_MAX_JSON_DEPTH. */
  maxJsonDepth: number;
  /**
   * Most values (array elements and object members) in one message, counted before it is parsed or
   * decoded: RECSERVE_MAX_JSON_VALUES. A 5 MB body of 1.6 million `{}` was legal by size and depth, and
   * building it held the event loop for seconds; no legal message needs more than the tensor limit twice.
   */
  maxJsonValues: number;
  /** Most keys in meta.tags: RECSERVE_MAX_TAGS. */
  maxTags: number;
  /** Largest meta.tags as JSON text (bytes): RECSERVE_MAX_TAGS_BYTES. */
  maxTagsBytes: number;
  /** Most fields in one filter: RECSERVE_MAX_FILTER_FIELDS. */
  maxFilterFields: number;
  /** Most accepted values over all fields of one filter: RECSERVE_MAX_FILTER_VALUES. */
  maxFilterValues: number;
  /** Most item ids a feedback's truth may name: RECSERVE_MAX_TRUTH_ITEMS. */
  maxTruthItems: number;
  /** Most parts (fields and files) of a multipart body: RECSERVE_MAX_MULTIPART_PARTS. */
  maxMultipartParts: number;
  /** Open client connections on the REST port, and separately on the gRPC port; more are refused at accept: RECSERVE_MAX_CONNECTIONS. */
  maxConnections: number;
  /** Requests one HTTP/1.1 connection may have waiting for an answer (pipelining): RECSERVE_MAX_PIPELINED. */
  maxPipelined: number;
  /** Time a client has to send its request headers (ms): RECSERVE_HEADERS_TIMEOUT_MS. */
  headersTimeoutMs: number;
  /** Time a client has to send its whole request (ms): RECSERVE_REQUEST_TIMEOUT_MS. */
  requestTimeoutMs: number;
  /** Bytes the prediction memory (puid → what was shown) may hold: RECSERVE_PREDICTION_MEMORY_BYTES. */
  predictionMemoryBytes: number;
  /** Bytes the per-model filter-mask cache may hold: RECSERVE_FILTER_CACHE_BYTES. */
  filterCacheBytes: number;
  /** Most item ids in a request's similar_to or session `items`: RECSERVE_MAX_QUERY_ITEMS. */
  maxQueryItems: number;
  /** Most item ids in a request's exclude_items, and separately in its allow_items: RECSERVE_MAX_ITEM_LIST. */
  maxItemList: number;
  /**
   * Largest offset + k of a page: RECSERVE_MAX_PAGE_END. A page ranks its whole prefix (offset + k items
   * per user), so this bounds the ranking work of a deep page, not only its answer.
   */
  maxPageEnd: number;
  /**
   * Candidates diversify / rules / pins rerank: RECSERVE_RERANK_POOL. The pool is the top this-many items
   * whatever the page, so pages over a reranked list stay stable and non-overlapping; offset + k may not
   * exceed it when a request reranks.
   */
  rerankPool: number;
  /**
   * Most items one request may rank: RECSERVE_MAX_RANKED_ITEMS. Each list ranks offset + k items, or the
   * whole rerank pool when diversify, rules or pins apply (the model's defaults included), so the work of a
   * request is lists × that depth, not the answer's size: 1000 users × offset 990 answered 10,000 items but
   * ranked a million (11 s of every worker), and 1000 users × MMR over the pool held the event loop 30 s.
   */
  maxRankedItems: number;
  /** History items an explanation compares each recommended item with: RECSERVE_MAX_EXPLAIN_HISTORY. */
  maxExplainHistory: number;
  /**
   * Multiply-adds the explanations of one request may cost (explained items × history × factors):
   * RECSERVE_MAX_EXPLAIN_WORK. Each item's history is cut to the most recent items that fit, so the
   * history bound alone no longer lets k = 1000 × 200 history × 472 factors (94 M, ≈0.5 s) hold the event loop.
   */
  maxExplainWork: number;
  /** Most rules, and separately most pins, one request may give: RECSERVE_MAX_RULES. */
  maxRules: number;
}

/** Every limit is a whole number ≥ 1. */
export const LIMITS: Section<Limits> = {
  maxResultItems: intField('RECSERVE_MAX_RESULT_ITEMS', 10_000, 1),
  maxPairs: intField('RECSERVE_MAX_PAIRS', 1000, 1),
  maxTensorValues: intField('RECSERVE_MAX_TENSOR_VALUES', 100_000, 1),
  maxIdLength: intField('RECSERVE_MAX_ID_LENGTH', 256, 1),
  maxJsonDepth: intField('RECSERVE_MAX_JSON_DEPTH', 32, 1),
  maxJsonValues: intField('RECSERVE_MAX_JSON_VALUES', 250_000, 1),
  maxTags: intField('RECSERVE_MAX_TAGS', 64, 1),
  maxTagsBytes: intField('RECSERVE_MAX_TAGS_BYTES', 16 * 1024, 1),
  maxFilterFields: intField('RECSERVE_MAX_FILTER_FIELDS', 16, 1),
  maxFilterValues: intField('RECSERVE_MAX_FILTER_VALUES', 1000, 1),
  maxTruthItems: intField('RECSERVE_MAX_TRUTH_ITEMS', 200, 1),
  maxMultipartParts: intField('RECSERVE_MAX_MULTIPART_PARTS', 16, 1),
  maxConnections: intField('RECSERVE_MAX_CONNECTIONS', 4096, 1),
  maxPipelined: intField('RECSERVE_MAX_PIPELINED', 4, 1),
  headersTimeoutMs: intField('RECSERVE_HEADERS_TIMEOUT_MS', 10_000, 1),
  requestTimeoutMs: intField('RECSERVE_REQUEST_TIMEOUT_MS', 30_000, 1),
  predictionMemoryBytes: intField('RECSERVE_PREDICTION_MEMORY_BYTES', 64 * 1024 * 1024, 1),
  filterCacheBytes: intField('RECSERVE_FILTER_CACHE_BYTES', 32 * 1024 * 1024, 1),
  maxQueryItems: intField('RECSERVE_MAX_QUERY_ITEMS', 100, 1),
  maxItemList: intField('RECSERVE_MAX_ITEM_LIST', 1000, 1),
  maxPageEnd: intField('RECSERVE_MAX_PAGE_END', 1000, 1),
  rerankPool: intField('RECSERVE_RERANK_POOL', 500, 1),
  maxRankedItems: intField('RECSERVE_MAX_RANKED_ITEMS', 10_000, 1),
  maxExplainHistory: intField('RECSERVE_MAX_EXPLAIN_HISTORY', 200, 1),
  maxExplainWork: intField('RECSERVE_MAX_EXPLAIN_WORK', 20_000_000, 1),
  maxRules: intField('RECSERVE_MAX_RULES', 32, 1),
};

export const LIMIT_DEFAULTS: Limits = defaultsOf(LIMITS);

/** The env variable of each limit (refusals and the served contract name them). */
export const LIMIT_ENV = Object.fromEntries(Object.entries(LIMITS).map(([key, field]) => [key, (field as Field<number>).env])) as Record<keyof Limits, string>;

export function loadLimits(env: NodeJS.ProcessEnv): Limits {
  return readSection(LIMITS, env);
}

/** " (limit RECSERVE_X=n)": appended to a refusal so the caller knows which limit and how to change it. */
export function limitHint(limits: Limits, key: keyof Limits): string {
  return ` (limit ${LIMIT_ENV[key]}=${limits[key]})`;
}
