// Every size a client controls, bounded once here and checked before any work or allocation on every
// path (express, the REST fast path, gRPC). Defaults fit the shipped pod (1 GiB, 2 cores); each limit
// is an env variable, and a refusal names it (`limitHint`) so an operator knows what to raise.
import { int } from './env.js';

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
}

export const LIMIT_DEFAULTS: Limits = {
  maxResultItems: 10_000,
  maxPairs: 1000,
  maxTensorValues: 100_000,
  maxIdLength: 256,
  maxJsonDepth: 32,
  maxJsonValues: 250_000,
  maxTags: 64,
  maxTagsBytes: 16 * 1024,
  maxFilterFields: 16,
  maxFilterValues: 1000,
  maxTruthItems: 200,
  maxMultipartParts: 16,
  maxConnections: 4096,
  maxPipelined: 4,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  predictionMemoryBytes: 64 * 1024 * 1024,
  filterCacheBytes: 32 * 1024 * 1024,
};

/** The env variable of each limit (the README table and refusals name them). */
export const LIMIT_ENV: Record<keyof Limits, string> = {
  maxResultItems: 'RECSERVE_MAX_RESULT_ITEMS',
  maxPairs: 'RECSERVE_MAX_PAIRS',
  maxTensorValues: 'RECSERVE_MAX_TENSOR_VALUES',
  maxIdLength: 'RECSERVE_MAX_ID_LENGTH',
  maxJsonDepth: 'RECSERVE_MAX_JSON_DEPTH',
  maxJsonValues: 'RECSERVE_MAX_JSON_VALUES',
  maxTags: 'RECSERVE_MAX_TAGS',
  maxTagsBytes: 'RECSERVE_MAX_TAGS_BYTES',
  maxFilterFields: 'RECSERVE_MAX_FILTER_FIELDS',
  maxFilterValues: 'RECSERVE_MAX_FILTER_VALUES',
  maxTruthItems: 'RECSERVE_MAX_TRUTH_ITEMS',
  maxMultipartParts: 'RECSERVE_MAX_MULTIPART_PARTS',
  maxConnections: 'RECSERVE_MAX_CONNECTIONS',
  maxPipelined: 'RECSERVE_MAX_PIPELINED',
  headersTimeoutMs: 'RECSERVE_HEADERS_TIMEOUT_MS',
  requestTimeoutMs: 'RECSERVE_REQUEST_TIMEOUT_MS',
  predictionMemoryBytes: 'RECSERVE_PREDICTION_MEMORY_BYTES',
  filterCacheBytes: 'RECSERVE_FILTER_CACHE_BYTES',
};

export function loadLimits(env: NodeJS.ProcessEnv): Limits {
  const out = {} as Limits;
  for (const key of Object.keys(LIMIT_DEFAULTS) as (keyof Limits)[]) {
    out[key] = int(env[LIMIT_ENV[key]], LIMIT_DEFAULTS[key], LIMIT_ENV[key], 1);
  }
  return out;
}

/** " (limit RECSERVE_X=n)": appended to a refusal so the caller knows which limit and how to change it. */
export function limitHint(limits: Limits, key: keyof Limits): string {
  return ` (limit ${LIMIT_ENV[key]}=${limits[key]})`;
}
