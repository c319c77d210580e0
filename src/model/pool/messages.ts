// Every message between the pool (main thread) and its inference workers, typed in one place.
// Requests carry index-space queries packed into a few typed arrays; answers come back packed the
// same way and their buffers are transferred, not copied. Shared, read-only data (the ONNX bytes,
// the seen lists, filter masks) lives in SharedArrayBuffers, so it crosses threads without copies.
import type { QuantizedCatalog } from '../int8-exact.js';
import type { Signature } from '../signature.js';

/** Passed once per worker as workerData. */
export interface WorkerInit {
  /** The model.onnx bytes, in a SharedArrayBuffer so every worker (and a replacement) reads one copy. */
  onnx: Uint8Array;
  signature: Signature;
  nItems: number;
  intraOpNumThreads: number;
  /** Seen lists of the model version: user u's items are seenItems[seenOffsets[u] .. seenOffsets[u+1]). */
  seenOffsets: Int32Array | null;
  seenItems: Int32Array | null;
  /**
   * int8 scoring data (int8-exact.ts) already checked against the model's float32 session, every array in
   * shared memory: the worker scores with it alone and `onnx` is empty. Null scores in float32 from `onnx`.
   */
  int8: QuantizedCatalog | null;
  /** Worker number, for logs and metrics. */
  index: number;
  /**
   * Nice value the worker thread gives itself (Linux applies setpriority to the calling thread), so
   * the event-loop thread wins the CPU whenever both want it: I/O first, scoring with what is left.
   */
  niceness: number;
}

/** How one query names the items it must not get. */
export const ExcludeKind = {
  None: 0,
  /** The user's seen list of this model version, already in the worker. */
  Seen: 1,
  /** Listed in the request's excludeItems, at excludeOffsets[q] .. excludeOffsets[q+1]. */
  Inline: 2,
} as const;

export interface TopKRequest {
  type: 'topk';
  id: number;
  users: Int32Array;
  ks: Int32Array;
  excludeKind: Uint8Array;
  /** nQueries + 1 offsets into excludeItems (only Inline queries take room). */
  excludeOffsets: Int32Array;
  excludeItems: Int32Array;
  /** Per query: null, or an index into masks. */
  maskOf: Int32Array;
  /** Distinct allow masks of this request, each a view of a SharedArrayBuffer (shared, not copied). */
  masks: Uint8Array[];
}

export interface PairsRequest {
  type: 'pairs';
  id: number;
  users: Int32Array;
  items: Int32Array;
}

export type WorkerRequest = TopKRequest | PairsRequest;

export interface TopKResult {
  type: 'topk';
  id: number;
  /** nQueries + 1 offsets into items/scores. */
  offsets: Int32Array;
  items: Int32Array;
  scores: Float32Array;
  /** Time the worker spent on this request (ms), for utilisation. */
  busyMs: number;
}

export interface PairsResult {
  type: 'pairs';
  id: number;
  scores: Float32Array;
  busyMs: number;
}

export interface ErrorResult {
  type: 'error';
  id: number;
  name: string;
  message: string;
}

/** A log line from the worker, written by the pool's logger so worker output never vanishes. */
export interface LogMessage {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields?: Record<string, unknown>;
}

/** Sent once the session is built; the pool only routes work to ready workers. */
export interface ReadyMessage {
  type: 'ready';
  loadMs: number;
}

export type WorkerReply = TopKResult | PairsResult | ErrorResult | LogMessage | ReadyMessage;
