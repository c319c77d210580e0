// Scorer over one onnxruntime-node session. It is the only file that imports onnxruntime-node; it runs
// in-process or inside a pool worker. Note that session.run() blocks the thread it runs on.
import ort from 'onnxruntime-node';
import type { Signature } from './signature.js';
import type { Ranked, Scorer, TopKQuery } from './scorer.js';
import { selectTopK } from './topk.js';
import { contains, graphCandidates, pickCandidates, TOPK_INDICES, TOPK_K_INPUT, TOPK_VALUES, withGraphTopK } from './topk-graph.js';
import { exactScore, INT8_INDICES, INT8_K_INPUT, INT8_OUTLIER_VALUES, INT8_SCALE_INPUT, INT8_USER_INPUT, INT8_VALUES, int8Graph, quantizeUsers, resolveQuery, userOffset, type QuantizedCatalog, type Resolution } from './int8-exact.js';
import { rng } from '../util/random.js';

// ORT's own warnings go to stderr as plain text; keep them to errors so the log stays JSON lines.
ort.env.logLevel = 'error';

export interface OrtScorerOptions {
  intraOpNumThreads?: number;
  /** Select top-k inside the graph for catalog models (topk-graph.ts); default true. Same answers. */
  graphTopK?: boolean;
}

export interface ModelScorerOptions extends OrtScorerOptions {
  /**
   * Score with int8 item factors and an exact float32 re-rank (int8-exact.ts): the same answers, without
   * a float32 session. Kept only when the model's own session reproduces the emulated scores at load.
   */
  int8?: QuantizedCatalog | null;
  /** Told why a model given int8 data keeps float32 scoring. */
  onInt8Refused?: (reason: string) => void;
}

/**
 * The scorer for one model: the int8 scorer when int8 data is given and passes the load-time check
 * against the model's float32 session (which is then released), otherwise that float32 session.
 */
export async function createModelScorer(onnx: Uint8Array, sig: Signature, nItems: number, opts: ModelScorerOptions = {}): Promise<Scorer> {
  const fp32 = await OrtScorer.create(onnx, sig, nItems, opts);
  if (!opts.int8 || sig.kind !== 'catalog' || nItems <= 0) return fp32;
  let int8: Int8ExactScorer;
  try {
    int8 = await Int8ExactScorer.create(opts.int8, opts.intraOpNumThreads ?? 1);
  } catch (e) {
    opts.onInt8Refused?.(`onnxruntime refused the int8 graph: ${(e as Error).message}`);
    return fp32;
  }
  const refused = await int8.check(fp32);
  if (refused === null) {
    await fp32.close();
    return int8;
  }
  await int8.close();
  opts.onInt8Refused?.(refused);
  return fp32;
}

/**
 * Null when int8 data answers as this model's float32 session does (the check createModelScorer runs),
 * else why not. Builds both scorers on this thread and releases them.
 */
export async function checkInt8(onnx: Uint8Array, sig: Signature, nItems: number, q: QuantizedCatalog): Promise<string | null> {
  let refused: string | null = null;
  const scorer = await createModelScorer(onnx, sig, nItems, { int8: q, onInt8Refused: (r) => (refused = r) });
  await scorer.close();
  return refused;
}

/** Counters of an Int8ExactScorer since it was built. */
export interface Int8Stats {
  queries: number;
  /** Items rescored in float32, summed over queries. */
  rescored: number;
  /** Queries answered by the float32 path after all (too few candidates could be shown complete). */
  fallbacks: number;
  /** ORT runs of the int8 graph (a retry with more candidates is another run). */
  runs: number;
}

/**
 * Load-time probe of the fallback rate: random users, k 10, no filters. A fallback costs a full exact
 * pass in JavaScript (about 4× a float32 query) after the runs that failed, so past about one query in
 * eight falling back the int8 scorer is no faster than float32.
 */
const PROBE_USERS = 32;
const MAX_PROBE_FALLBACK_SHARE = 1 / 8;

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

  /** Every item's score for each user (users × nItems), catalog models only. */
  async catalogScores(users: Int32Array): Promise<Float32Array> {
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

/**
 * Top-k from int8 item factors with the exact float32 re-rank (int8-exact.ts), and pair scores from the
 * same float32 emulation: the float32 session's answers without holding its weights. Queries whose
 * candidates cannot be shown complete within maxCandidates are scored exactly in JavaScript over their
 * eligible items (cheap for the selective masks that cause it, a full pass otherwise).
 */
export class Int8ExactScorer implements Scorer {
  readonly nItems: number;
  private readonly stats: Int8Stats = { queries: 0, rescored: 0, fallbacks: 0, runs: 0 };
  /** Share of the catalog each allow mask lets through, to size the first candidate count. */
  private readonly maskShare = new WeakMap<Uint8Array, number>();
  /** Most candidates asked of TopK before a query is scored in full. */
  private readonly maxCandidates: number;
  private closed = false;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly q: QuantizedCatalog,
  ) {
    this.nItems = q.nItems;
    this.maxCandidates = Math.min(q.nItems, Math.max(2048, q.nItems >> 5));
  }

  static async create(q: QuantizedCatalog, intraOpNumThreads = 1): Promise<Int8ExactScorer> {
    const session = await ort.InferenceSession.create(int8Graph(q), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
    });
    return new Int8ExactScorer(session, q);
  }

  /** Counters since the scorer was built. */
  get int8Stats(): Int8Stats {
    return { ...this.stats };
  }

  /**
   * Null when this scorer answers as the model's float32 session does; else why not. The re-rank
   * reproduces the exporter's float32 arithmetic (exactScore): a model whose session computes otherwise
   * (another graph under the same initializer names, another kernel) must keep float32. Sample users'
   * scores are compared bit for bit, and their top-k through the int8 candidates.
   */
  async check(fp32: OrtScorer): Promise<string | null> {
    const { q } = this;
    if (q.nItems !== fp32.nItems) return `int8 data for ${q.nItems} items, the model has ${fp32.nItems}`;
    const nUsers = q.userBias.length;
    if (nUsers === 0) return 'the model has no users';
    // Sample users: the first, the last, the one with the largest factors, one in the middle.
    let widest = 0;
    let widestNorm = -1;
    for (let u = 0; u < nUsers; u++) {
      let s = 0;
      for (let k = 0; k < q.d; k++) s += q.userFactors[u * q.d + k] ** 2;
      if (s > widestNorm) [widest, widestNorm] = [u, s];
    }
    const users = Int32Array.from(new Set([0, nUsers - 1, widest, nUsers >> 1]));
    const n = this.nItems;
    const scores = await fp32.catalogScores(users);
    const stride = Math.max(1, Math.floor(n / 8192));
    for (let r = 0; r < users.length; r++) {
      for (let i = 0; i < n; i += i + stride < n ? stride : Math.max(1, n - 1 - i)) {
        if (!Object.is(scores[r * n + i], exactScore(q, users[r], i))) return `the session's float32 scores differ from the exporter's arithmetic (user ${users[r]}, item ${i})`;
      }
    }
    const probe = Array.from(users, (user): TopKQuery => ({ user, k: 10, exclude: null, allow: null }));
    const [got, want] = [await this.topK(probe), await fp32.topK(probe)];
    for (let r = 0; r < users.length; r++) if (!sameRanking(got[r], want[r])) return `int8 candidates missed the float32 top-k of user ${users[r]}`;
    // Exact is not enough: items whose factors dwarf the rest can leave most queries to the full pass.
    const pick = rng(nUsers);
    const probeUsers = new Set(Array.from({ length: PROBE_USERS }, () => Math.floor(pick() * nUsers)));
    const { inFull } = await this.fromCandidates(Array.from(probeUsers, (user): TopKQuery => ({ user, k: 10, exclude: null, allow: null })));
    this.stats.queries = this.stats.rescored = this.stats.fallbacks = this.stats.runs = 0;
    if (inFull.length > probeUsers.size * MAX_PROBE_FALLBACK_SHARE) {
      return `int8 candidates could not settle ${inFull.length} of ${probeUsers.size} probe users (a few items' factors far larger than the rest?); float32 is faster`;
    }
    return null;
  }

  async topK(queries: TopKQuery[]): Promise<Ranked[]> {
    this.refuseClosed();
    this.stats.queries += queries.length;
    const { out, inFull } = await this.fromCandidates(queries);
    this.stats.fallbacks += inFull.length;
    for (const j of inFull) out[j] = this.exactTopK(queries[j]);
    return out;
  }

  /** Answers from the int8 candidates, asking for more as needed; inFull lists the queries they could not settle. */
  private async fromCandidates(queries: TopKQuery[]): Promise<{ out: Ranked[]; inFull: number[] }> {
    const out: Ranked[] = new Array(queries.length);
    const wanted = queries.map((q) => this.firstCandidates(q));
    let pending = queries.map((_, j) => j).filter((j) => wanted[j] <= this.maxCandidates);
    const inFull = queries.map((_, j) => j).filter((j) => wanted[j] > this.maxCandidates);
    while (pending.length > 0) {
      const kk = Math.max(...pending.map((j) => wanted[j]));
      const run = await this.run(pending.map((j) => queries[j]), kk);
      const next: number[] = [];
      pending.forEach((j, r) => {
        const res = run(r);
        if (res.kind === 'done') {
          out[j] = res.ranked;
          this.stats.rescored += res.rescored;
        } else if (kk >= this.maxCandidates) {
          inFull.push(j);
        } else {
          wanted[j] = Math.min(this.maxCandidates, kk * 4);
          next.push(j);
        }
      });
      pending = next;
    }
    return { out, inFull };
  }

  async scorePairs(users: Int32Array, items: Int32Array): Promise<Float32Array> {
    this.refuseClosed();
    return Float32Array.from(items, (item, r) => exactScore(this.q, users[r], item));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }

  private refuseClosed(): void {
    if (this.closed) throw new Error('the int8 scorer is closed');
  }

  /** Candidates to ask for first: k and the exclusions, scaled up by the mask's selectivity, plus a margin. */
  private firstCandidates(q: TopKQuery): number {
    let share = 1;
    if (q.allow !== null) {
      share = this.maskShare.get(q.allow) ?? -1;
      if (share < 0) {
        let allowed = 0;
        for (let i = 0; i < q.allow.length; i++) if (q.allow[i] !== 0) allowed++;
        share = allowed / Math.max(1, q.allow.length);
        this.maskShare.set(q.allow, share);
      }
    }
    const base = q.k + (q.exclude === null ? 0 : q.exclude.length);
    return Math.min(this.nItems, Math.ceil((base + Math.max(32, q.k)) / Math.max(share, 1e-9)));
  }

  /** One run of the int8 graph asking for kk candidates per query; the function resolves query r. */
  private async run(queries: TopKQuery[], kk: number): Promise<(r: number) => Resolution> {
    const { q } = this;
    const users = queries.map((x) => x.user);
    const quantized = quantizeUsers(q, users);
    const out = await this.session.run(
      {
        [INT8_USER_INPUT]: new ort.Tensor('uint8', quantized.codes, [users.length, q.d]),
        [INT8_SCALE_INPUT]: new ort.Tensor('float32', Float32Array.of(quantized.scale), []),
        [INT8_K_INPUT]: new ort.Tensor('int64', BigInt64Array.of(BigInt(kk)), [1]),
      },
      [INT8_VALUES, INT8_INDICES, INT8_OUTLIER_VALUES],
    );
    this.stats.runs++;
    const approx = { kk, values: asFloat32(out[INT8_VALUES]), indices: out[INT8_INDICES].data as BigInt64Array, outlierValues: asFloat32(out[INT8_OUTLIER_VALUES]) };
    if (approx.values.length !== users.length * kk || approx.indices.length !== approx.values.length || approx.outlierValues.length !== users.length * q.outliers.length) {
      throw new Error(`int8 graph returned ${approx.values.length} candidates and ${approx.outlierValues.length} outlier scores for ${users.length} users × ${kk}`);
    }
    return (r) => {
      const { exclude, allow, k } = queries[r];
      const eligible = (i: number) => (allow === null || allow[i] !== 0) && (exclude === null || !contains(exclude, i));
      return resolveQuery(q, quantized, r, users[r], k, approx, eligible);
    };
  }

  /** The float32 top-k by scoring every eligible item exactly (ineligible ones stay NaN, never returned). */
  private exactTopK(query: TopKQuery): Ranked {
    const n = this.nItems;
    const scores = new Float32Array(n).fill(NaN);
    const off = userOffset(this.q, query.user);
    for (let i = 0; i < n; i++) if (query.allow === null || query.allow[i] !== 0) scores[i] = exactScore(this.q, query.user, i, off);
    return selectTopK(scores, 0, n, query.k, query.exclude, query.allow);
  }
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
