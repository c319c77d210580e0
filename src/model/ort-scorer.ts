// Scorer over one onnxruntime-node session. It is the only file that imports onnxruntime-node; it runs
// in-process or inside a pool worker. Note that session.run() blocks the thread it runs on.
import ort from 'onnxruntime-node';
import type { Signature } from './signature.js';
import type { Ranked, Scorer, TopKQuery } from './scorer.js';
import { selectTopK } from './topk.js';
import { graphCandidates, pickCandidates, TOPK_INDICES, TOPK_K_INPUT, TOPK_VALUES, withGraphTopK } from './topk-graph.js';

// ORT's own warnings go to stderr as plain text; keep them to errors so the log stays JSON lines.
ort.env.logLevel = 'error';

export interface OrtScorerOptions {
  intraOpNumThreads?: number;
  /** Select top-k inside the graph for catalog models (topk-graph.ts); default true. Same answers. */
  graphTopK?: boolean;
}

export class OrtScorer implements Scorer {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly sig: Signature,
    readonly nItems: number,
    /** The session carries the appended TopK node. */
    readonly graphTopK: boolean,
  ) {}

  static async create(onnx: Uint8Array, sig: Signature, nItems: number, opts: OrtScorerOptions = {}): Promise<OrtScorer> {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: opts.intraOpNumThreads ?? 1,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
    };
    // --- top-k in the graph; a model that refuses the extra node is served as it is ---
    const augmented = opts.graphTopK === false || nItems <= 0 ? null : withGraphTopK(onnx, sig);
    if (augmented) {
      try {
        const session = await ort.InferenceSession.create(augmented, options);
        if (session.outputNames.includes(TOPK_VALUES) && session.outputNames.includes(TOPK_INDICES)) return new OrtScorer(session, sig, nItems, true);
        await session.release();
      } catch {
        // e.g. opset < 11 (no `largest`/`sorted`), or the names are taken: fall through.
      }
    }
    const session = await ort.InferenceSession.create(onnx, options);
    return new OrtScorer(session, sig, nItems, false);
  }

  async topK(queries: TopKQuery[]): Promise<Ranked[]> {
    if (queries.length === 0) return [];
    if (this.graphTopK) {
      const fromGraph = await this.topKInGraph(queries);
      if (fromGraph) return fromGraph;
    }
    const n = this.nItems;
    let scores: Float32Array;
    if (this.sig.kind === 'catalog') {
      scores = await this.catalogScores(Int32Array.from(queries, (q) => q.user));
      if (scores.length !== queries.length * n) {
        throw new Error(`model returned ${scores.length} scores for ${queries.length} users × ${n} items`);
      }
    } else {
      // A pair scorer ranks a user by scoring it against every item.
      const users = new Int32Array(queries.length * n);
      const items = new Int32Array(queries.length * n);
      queries.forEach((q, r) => {
        users.fill(q.user, r * n, (r + 1) * n);
        for (let i = 0; i < n; i++) items[r * n + i] = i;
      });
      scores = await this.scorePairs(users, items);
    }
    return queries.map((q, r) => selectTopK(scores, r * n, n, q.k, q.exclude, q.allow));
  }

  async scorePairs(users: Int32Array, items: Int32Array): Promise<Float32Array> {
    if (users.length === 0) return new Float32Array(0);
    const sig = this.sig;
    if (sig.kind === 'catalog') {
      const n = this.nItems;
      const all = await this.catalogScores(users);
      return Float32Array.from(items, (it, r) => all[r * n + it]);
    }
    let feeds: Record<string, ort.Tensor>;
    if (sig.kind === 'pair') {
      feeds = { [sig.userInput]: int64(users, [users.length]), [sig.itemInput!]: int64(items, [items.length]) };
    } else {
      const packed = new BigInt64Array(users.length * 2);
      for (let r = 0; r < users.length; r++) {
        packed[2 * r] = BigInt(users[r]);
        packed[2 * r + 1] = BigInt(items[r]);
      }
      feeds = { [sig.userInput]: new ort.Tensor('int64', packed, [users.length, 2]) };
    }
    const out = await this.session.run(feeds, [sig.output]);
    return asFloat32(out[sig.output]);
  }

  private async catalogScores(users: Int32Array): Promise<Float32Array> {
    const feeds: Record<string, ort.Tensor> = { [this.sig.userInput]: int64(users, [users.length]) };
    if (this.graphTopK) feeds[TOPK_K_INPUT] = K_ONE; // the appended node needs its k; 1 costs least
    const out = await this.session.run(feeds, [this.sig.output]);
    return asFloat32(out[this.sig.output]);
  }

  /** Top-k from the appended TopK node, or null when these queries need the full matrix. */
  private async topKInGraph(queries: TopKQuery[]): Promise<Ranked[] | null> {
    const kk = graphCandidates(queries, this.nItems);
    if (kk === 0) return null;
    const users = Int32Array.from(queries, (q) => q.user);
    const out = await this.session.run(
      { [this.sig.userInput]: int64(users, [users.length]), [TOPK_K_INPUT]: new ort.Tensor('int64', BigInt64Array.of(BigInt(kk)), [1]) },
      [TOPK_VALUES, TOPK_INDICES],
    );
    const values = asFloat32(out[TOPK_VALUES]);
    const indices = out[TOPK_INDICES].data as BigInt64Array;
    if (values.length !== queries.length * kk || indices.length !== values.length) {
      throw new Error(`model returned ${values.length} top-k candidates for ${queries.length} users × ${kk}`);
    }
    const ranked: Ranked[] = new Array(queries.length);
    for (let r = 0; r < queries.length; r++) {
      const picked = pickCandidates(values, indices, r * kk, kk, queries[r].k, queries[r].exclude);
      if (picked === null) return null; // NaN among the candidates
      ranked[r] = picked;
    }
    return ranked;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

const K_ONE = new ort.Tensor('int64', BigInt64Array.of(1n), [1]);

function int64(values: Int32Array, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}

function asFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float64') return Float32Array.from(t.data as Float64Array);
  throw new Error(`model output has type ${t.type}, expected float32`);
}
