// Scorer over one onnxruntime-node session. It is the only file that imports onnxruntime-node; it runs
// in-process or inside a pool worker. Note that session.run() blocks the thread it runs on.
import ort from 'onnxruntime-node';
import type { Signature } from './signature.js';
import type { Ranked, Scorer, TopKQuery } from './scorer.js';
import { selectTopK } from './topk.js';
import { contains, graphCandidates, pickCandidates, TOPK_INDICES, TOPK_K_INPUT, TOPK_VALUES, withGraphTopK } from './topk-graph.js';
import { exactScore, INT8_INDICES, INT8_K_INPUT, INT8_SCALE_INPUT, INT8_USER_INPUT, INT8_VALUES, int8Graph, quantizeUsers, resolveQuery, type QuantizedCatalog } from './int8-exact.js';

// ORT's own warnings go to stderr as plain text; keep them to errors so the log stays JSON lines.
ort.env.logLevel = 'error';

export interface OrtScorerOptions {
  intraOpNumThreads?: number;
  /** Select top-k inside the graph for catalog models (topk-graph.ts); default true. Same answers. */
  graphTopK?: boolean;
  /**
   * Score top-k with int8 item factors and an exact float32 re-rank (int8-exact.ts): same answers.
   * Kept only when the model's own session reproduces the emulated float32 scores at load.
   */
  int8?: QuantizedCatalog | null;
  /** Told why a model given int8 data keeps float32 scoring. */
  onInt8Refused?: (reason: string) => void;
}

/** Counters of the int8 path since the scorer was built. */
export interface Int8Stats {
  queries: number;
  /** Items rescored in float32, summed over queries. */
  rescored: number;
  /** Queries answered by the float32 path after all (too few candidates could be shown complete). */
  fallbacks: number;
  /** ORT runs of the int8 graph (a retry with more candidates is another run). */
  runs: number;
}

interface Int8Path {
  session: ort.InferenceSession;
  q: QuantizedCatalog;
  /** Most candidates asked of TopK before a query goes to the float32 path. */
  maxCandidates: number;
  /** Share of the catalog each allow mask lets through, to size the first candidate count. */
  maskShare: WeakMap<Uint8Array, number>;
  stats: Int8Stats;
}

export class OrtScorer implements Scorer {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly sig: Signature,
    readonly nItems: number,
    /** The session carries the appended TopK node. */
    readonly graphTopK: boolean,
    private int8: Int8Path | null = null,
  ) {}

  /** Counters of the int8 path, or null when this scorer scores in float32 only. */
  get int8Stats(): Int8Stats | null {
    return this.int8 ? { ...this.int8.stats } : null;
  }

  static async create(onnx: Uint8Array, sig: Signature, nItems: number, opts: OrtScorerOptions = {}): Promise<OrtScorer> {
    const scorer = await OrtScorer.createFloat(onnx, sig, nItems, opts);
    if (opts.int8 && sig.kind === 'catalog' && nItems > 0) {
      const refused = await scorer.attachInt8(opts.int8, opts.intraOpNumThreads ?? 1);
      if (refused) opts.onInt8Refused?.(refused);
    }
    return scorer;
  }

  private static async createFloat(onnx: Uint8Array, sig: Signature, nItems: number, opts: OrtScorerOptions): Promise<OrtScorer> {
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
    return this.int8 ? this.topKInt8(queries) : this.topKFloat(queries);
  }

  private async topKFloat(queries: TopKQuery[]): Promise<Ranked[]> {
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

  /**
   * Builds the int8 session, or says why not. The exact re-rank reproduces the exporter's float32
   * arithmetic (exactScore); a model whose session computes otherwise (another graph under the same
   * initializer names, another kernel) must keep float32, so both are compared bit for bit here, and
   * the int8 graph's values are checked against their error bound.
   */
  private async attachInt8(q: QuantizedCatalog, threads: number): Promise<string | null> {
    if (q.nItems !== this.nItems) return `int8 data for ${q.nItems} items, the model has ${this.nItems}`;
    const nUsers = q.userBias.length;
    if (nUsers === 0) return 'the model has no users';
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(int8Graph(q), {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
      });
    } catch (e) {
      return `onnxruntime refused the int8 graph: ${(e as Error).message}`;
    }
    // Sample users: the first, the last, the one with the largest factors, one in the middle.
    let widest = 0;
    let widestNorm = -1;
    for (let u = 0; u < nUsers; u++) {
      let s = 0;
      for (let k = 0; k < q.d; k++) s += q.userFactors[u * q.d + k] ** 2;
      if (s > widestNorm) [widest, widestNorm] = [u, s];
    }
    const users = Int32Array.from(new Set([0, nUsers - 1, widest, nUsers >> 1]));
    const scores = await this.catalogScores(users);
    const stride = Math.max(1, Math.floor(this.nItems / 8192));
    for (let r = 0; r < users.length; r++) {
      for (let i = 0; i < this.nItems; i += i + stride < this.nItems ? stride : Math.max(1, this.nItems - 1 - i)) {
        if (!Object.is(scores[r * this.nItems + i], exactScore(q, users[r], i))) {
          await session.release();
          return `the session's float32 scores differ from the exporter's arithmetic (user ${users[r]}, item ${i})`;
        }
      }
    }
    const path: Int8Path = { session, q, maxCandidates: Math.min(this.nItems, Math.max(2048, this.nItems >> 5)), maskShare: new WeakMap(), stats: { queries: 0, rescored: 0, fallbacks: 0, runs: 0 } };
    // The approximate scores of the sample must hold to their bound, or the integer product is not what was assumed.
    const probe = queries(users);
    const answers = await OrtScorer.runInt8(path, probe, path.maxCandidates);
    for (let r = 0; r < users.length; r++) {
      const want = await this.topKFloat([probe[r]]);
      const got = answers.resolve(r);
      if (got.kind === 'more') continue;
      if (!sameRanking(got.ranked, want[0])) {
        await session.release();
        return `int8 candidates missed the float32 top-k of user ${users[r]}`;
      }
    }
    this.int8 = path;
    return null;
  }

  private async topKInt8(queries: TopKQuery[]): Promise<Ranked[]> {
    const path = this.int8!;
    const out: Ranked[] = new Array(queries.length);
    const wanted = queries.map((q) => this.firstCandidates(path, q));
    let pending = queries.map((_, j) => j).filter((j) => wanted[j] <= path.maxCandidates);
    const toFloat = queries.map((_, j) => j).filter((j) => wanted[j] > path.maxCandidates);
    path.stats.queries += queries.length;
    while (pending.length > 0) {
      const kk = Math.max(...pending.map((j) => wanted[j]));
      const batch = pending.map((j) => queries[j]);
      const run = await OrtScorer.runInt8(path, batch, kk);
      const next: number[] = [];
      pending.forEach((j, r) => {
        const res = run.resolve(r);
        if (res.kind === 'done') {
          out[j] = res.ranked;
          path.stats.rescored += res.rescored;
        } else if (kk >= path.maxCandidates) {
          toFloat.push(j);
        } else {
          wanted[j] = Math.min(path.maxCandidates, kk * 4);
          next.push(j);
        }
      });
      pending = next;
    }
    if (toFloat.length > 0) {
      path.stats.fallbacks += toFloat.length;
      const ranked = await this.topKFloat(toFloat.map((j) => queries[j]));
      toFloat.forEach((j, r) => (out[j] = ranked[r]));
    }
    return out;
  }

  /** Candidates to ask for first: k and the exclusions, scaled up by the mask's selectivity, plus a margin. */
  private firstCandidates(path: Int8Path, q: TopKQuery): number {
    let share = 1;
    if (q.allow !== null) {
      share = path.maskShare.get(q.allow) ?? -1;
      if (share < 0) {
        let allowed = 0;
        for (let i = 0; i < q.allow.length; i++) if (q.allow[i] !== 0) allowed++;
        share = allowed / Math.max(1, q.allow.length);
        path.maskShare.set(q.allow, share);
      }
    }
    const base = q.k + (q.exclude === null ? 0 : q.exclude.length);
    const kk = Math.ceil((base + Math.max(32, q.k)) / Math.max(share, 1e-9));
    return Math.min(this.nItems, kk);
  }

  /** One run of the int8 graph asking for kk candidates per query; resolve(r) decides query r. */
  private static async runInt8(path: Int8Path, queries: TopKQuery[], kk: number) {
    const { q } = path;
    const users = queries.map((x) => x.user);
    const quantized = quantizeUsers(q, users);
    const out = await path.session.run(
      {
        [INT8_USER_INPUT]: new ort.Tensor('uint8', quantized.codes, [users.length, q.d]),
        [INT8_SCALE_INPUT]: new ort.Tensor('float32', Float32Array.of(quantized.scale), []),
        [INT8_K_INPUT]: new ort.Tensor('int64', BigInt64Array.of(BigInt(kk)), [1]),
      },
      [INT8_VALUES, INT8_INDICES],
    );
    path.stats.runs++;
    const values = asFloat32(out[INT8_VALUES]);
    const indices = out[INT8_INDICES].data as BigInt64Array;
    if (values.length !== users.length * kk || indices.length !== values.length) {
      throw new Error(`int8 graph returned ${values.length} candidates for ${users.length} users × ${kk}`);
    }
    return {
      resolve: (r: number) => {
        const { exclude, allow, k } = queries[r];
        const eligible = (i: number) => (allow === null || allow[i] !== 0) && (exclude === null || !contains(exclude, i));
        return resolveQuery(q, quantized, r, users[r], k, values, indices, r * kk, kk, eligible);
      },
    };
  }

  async close(): Promise<void> {
    await this.int8?.session.release();
    await this.session.release();
  }
}

/** One plain top-10 query per user (the load-time check). */
function queries(users: Int32Array): TopKQuery[] {
  return Array.from(users, (user) => ({ user, k: 10, exclude: null, allow: null }));
}

function sameRanking(a: Ranked, b: Ranked): boolean {
  return a.items.length === b.items.length && a.items.every((x, j) => x === b.items[j] && Object.is(a.scores[j], b.scores[j]));
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
