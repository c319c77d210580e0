// The one interface between the recommender and whatever runs the model. The in-process ONNX scorer,
// the worker pool and the micro-batcher all implement it, so the recommender cannot tell them apart.

/** One user's ranking request, in index space. */
export interface TopKQuery {
  user: number;
  k: number;
  /** Item indices never to return (sorted ascending), e.g. the user's seen items. */
  exclude: Int32Array | null;
  /** Mask over the catalog: only items with a non-zero entry may be returned. */
  allow: Uint8Array | null;
}

/** Best items first. */
export interface Ranked {
  items: Int32Array;
  scores: Float32Array;
}

export interface Scorer {
  readonly nItems: number;
  /** Top-k items for each query; the answer at index i belongs to query i. */
  topK(queries: TopKQuery[]): Promise<Ranked[]>;
  /** Score of each (users[i], items[i]) pair. */
  scorePairs(users: Int32Array, items: Int32Array): Promise<Float32Array>;
  close(): Promise<void>;
}
