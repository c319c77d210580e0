// Exact top-k over int8 item factors, for catalogs large enough that reading the float32 factors for
// every request is the cost (a 1M × 64 catalog is 256 MB of float32, 64 MB of int8).
//
// Every item is scored approximately by onnxruntime's integer MatMul (one graph built at load from the
// model's item factors); each approximate score comes with a bound on how far the float32 score can be
// from it. Only the items whose upper bound can still reach the k-th best lower bound are rescored, in
// JavaScript, with the float32 arithmetic of the exporter's graph reproduced exactly (see exactScore).
// The answer is then the float32 answer, items, scores and tie order:
//   - at least k eligible items have a float32 score ≥ τ (the k-th best lower bound), so every item of
//     the float32 top-k scores ≥ τ;
//   - an item left out has a float32 score ≤ its upper bound < τ, strictly, so ties cannot bring it back;
//   - the rescored items get bit-identical float32 scores and are ordered as selectTopK orders them.
// Items ORT's TopK did not return are covered by one bound: each term of the per-item bound at its
// largest over those items. So that a few items far larger than the rest (one vector ×30 the others)
// cannot set that bound for everyone, the items largest in any term are picked at load ("outliers"):
// the graph hands back their approximate scores for every query, they are bounded one by one like
// TopK's candidates, and the bound for the rest uses each term's largest value outside them. When
// the rest cannot be shown out of reach, the caller asks for more candidates or scores in float32.
//
// This file holds the arithmetic and the graph; ort-scorer.ts runs it (it alone imports onnxruntime).
import { TensorProto_DataType } from '../gen/onnx/onnx_pb.js';
import type { Factors } from '../model-format/artifact.js';
import { AttrType, DataType, encodeModel, floatInitializer, int64Initializer, tensorValue, type OnnxModel } from '../model-format/onnx-format.js';
import type { Ranked } from './scorer.js';
import { contains } from './topk-graph.js';

/**
 * Item codes use 7 bits (±63). On AVX2 without VNNI, onnxruntime multiplies u8 × s8 with vpmaddubsw,
 * which saturates pair sums at 32,767; 255 × 63 × 2 = 32,130 never does, so the integer product is exact.
 */
export const ITEM_LEVELS = 63;
/** User codes: ±127, sent to ORT as uint8 with zero point 128. */
export const USER_LEVELS = 127;
const USER_ZERO_POINT = 128;
/** float(acc) must be exact: |acc| ≤ 127 · 63 · d < 2^24. */
export const MAX_FACTORS = 1024;
/** Scores must stay far from float32 overflow for the error analysis (and the emulation) to hold. */
const MAX_SCORE_MAGNITUDE = 2 ** 100;
/**
 * Relative bound on the float32 path's rounding: d FMAs, the bias add and the user-offset add, each one
 * rounding of unit 2^-24 (γ_{d+2} ≈ (d+2)·2^-24); 4× margin, which also covers the float64 rounding
 * of the bound arithmetic itself.
 */
const roundingUnit = (d: number) => (d + 4) * 2 ** -22;
/** Relative bound on MatMulIntegerToFloat's own rounding (scale product, multiply, bias add: 3 × 2^-24), 4× margin. */
const GRAPH_ROUNDING = 2 ** -20;
/** Covers the float64 rounding of the few additions that turn values and bounds into τ and upper bounds. */
const SUM_SLACK = 2 ** -50;
/**
 * Items taken as outliers per bound term: the largest ones in each term (union, at most 5×). Reading
 * their scores from the graph costs a Gather; bounding them, a few operations each per query.
 */
export const OUTLIERS_PER_TERM = 64;

export const INT8_USER_INPUT = 'recserve_int8_user';
export const INT8_SCALE_INPUT = 'recserve_int8_scale';
export const INT8_K_INPUT = 'recserve_int8_k';
export const INT8_VALUES = 'recserve_int8_values';
export const INT8_INDICES = 'recserve_int8_indices';
/** The outliers' approximate scores, N × outliers, in QuantizedCatalog.outliers order. */
export const INT8_OUTLIER_VALUES = 'recserve_int8_outlier_values';

/** The item-side terms of the error bound (see resolveQuery): scale, ‖v − s·q‖, ‖s·q‖, ‖v‖, |bias|. */
export interface ItemTerms {
  scale: number;
  residualNorm: number;
  codeNorm: number;
  norm: number;
  absBias: number;
}

/** What the int8 path needs, from the model's float32 factors plus per-item quantization data. */
export interface QuantizedCatalog {
  d: number;
  nItems: number;
  /** The float32 factors the exact path scores with (artifact.factors). */
  userFactors: Float32Array;
  itemFactors: Float32Array;
  userBias: Float32Array;
  itemBias: Float32Array;
  globalBias: number;
  /** Item codes laid out d × nItems (MatMulInteger's B). */
  codesByFactor: Int8Array;
  /** Per item: its float32 scale, ‖v − s·q‖, ‖s·q‖ and ‖v‖. */
  scales: Float32Array;
  residualNorm: Float64Array;
  codeNorm: Float64Array;
  norm: Float64Array;
  /** Items bounded one by one on every query, ascending; every other item is bounded by `rest`. */
  outliers: Int32Array;
  /** Each term's largest value over the items that are not outliers. */
  rest: ItemTerms;
}

/** Why a model keeps float32 scoring, or null when it can be quantized. */
export function int8Refusal(f: Factors, nItems: number): string | null {
  const d = f.factors;
  if (d < 1 || d > MAX_FACTORS) return `${d} factors (the int8 path takes 1 to ${MAX_FACTORS})`;
  if (f.itemFactors.length !== nItems * d || f.itemBias.length !== nItems) return 'the item factors do not match the catalog';
  const nUsers = f.userBias.length;
  if (f.userFactors.length !== nUsers * d) return 'the user factors do not match the users';
  const maxNorm = (m: Float32Array, rows: number) => {
    let best = 0;
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += m[r * d + k] * m[r * d + k];
      if (!Number.isFinite(s)) return Infinity;
      best = Math.max(best, s);
    }
    return Math.sqrt(best);
  };
  const maxAbs = (a: Float32Array) => a.reduce((m, x) => (Number.isFinite(x) ? Math.max(m, Math.abs(x)) : Infinity), 0);
  const bound = maxNorm(f.userFactors, nUsers) * maxNorm(f.itemFactors, nItems) + maxAbs(f.itemBias) + maxAbs(f.userBias) + Math.abs(f.globalBias);
  if (!(bound < MAX_SCORE_MAGNITUDE)) return 'factors are not finite or scores could reach float32 overflow';
  return null;
}

/** Quantizes each item symmetrically with its own scale; call only when int8Refusal gave null. */
export function quantizeCatalog(f: Factors, nItems: number, alloc: (bytes: number) => ArrayBufferLike = (b) => new ArrayBuffer(b)): QuantizedCatalog {
  const d = f.factors;
  const codesByFactor = new Int8Array(alloc(nItems * d));
  const scales = new Float32Array(alloc(nItems * 4));
  const residualNorm = new Float64Array(alloc(nItems * 8));
  const codeNorm = new Float64Array(alloc(nItems * 8));
  const norm = new Float64Array(alloc(nItems * 8));
  const v = f.itemFactors;
  for (let i = 0; i < nItems; i++) {
    const row = i * d;
    let top = 0;
    for (let k = 0; k < d; k++) top = Math.max(top, Math.abs(v[row + k]));
    const s = top === 0 ? 0 : Math.fround(top / ITEM_LEVELS);
    let r2 = 0;
    let c2 = 0;
    let n2 = 0;
    for (let k = 0; k < d; k++) {
      const x = v[row + k];
      const q = s === 0 ? 0 : Math.max(-ITEM_LEVELS, Math.min(ITEM_LEVELS, Math.round(x / s)));
      codesByFactor[k * nItems + i] = q;
      const approx = s * q;
      r2 += (x - approx) * (x - approx);
      c2 += approx * approx;
      n2 += x * x;
    }
    scales[i] = s;
    residualNorm[i] = Math.sqrt(r2);
    codeNorm[i] = Math.sqrt(c2);
    norm[i] = Math.sqrt(n2);
  }
  const terms: Record<keyof ItemTerms, (i: number) => number> = {
    scale: (i) => scales[i],
    residualNorm: (i) => residualNorm[i],
    codeNorm: (i) => codeNorm[i],
    norm: (i) => norm[i],
    absBias: (i) => Math.abs(f.itemBias[i]),
  };
  const picked = new Set<number>();
  const rest = {} as ItemTerms;
  for (const [name, term] of Object.entries(terms) as [keyof ItemTerms, (i: number) => number][]) {
    const largest = largestItems(nItems, term, OUTLIERS_PER_TERM);
    largest.items.forEach((i) => picked.add(i));
    rest[name] = largest.rest;
  }
  const outliers = new Int32Array(alloc(picked.size * 4));
  outliers.set(Array.from(picked).sort((a, b) => a - b));
  return {
    d,
    nItems,
    userFactors: f.userFactors,
    itemFactors: f.itemFactors,
    userBias: f.userBias,
    itemBias: f.itemBias,
    globalBias: f.globalBias,
    codesByFactor,
    scales,
    residualNorm,
    codeNorm,
    norm,
    outliers,
    rest,
  };
}

/** The m items with the largest values (ties: any), and the largest value among the others (0 if none). */
function largestItems(n: number, value: (i: number) => number, m: number): { items: Int32Array; rest: number } {
  if (n <= m) return { items: Int32Array.from({ length: n }, (_, i) => i), rest: 0 };
  // A min-heap of the m + 1 largest: its root is the largest value outside the other m.
  const size = m + 1;
  const heapItem = new Int32Array(size);
  const heapValue = new Float64Array(size);
  const siftDown = (at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let low = at;
      if (l < size && heapValue[l] < heapValue[low]) low = l;
      if (r < size && heapValue[r] < heapValue[low]) low = r;
      if (low === at) return;
      [heapValue[at], heapValue[low]] = [heapValue[low], heapValue[at]];
      [heapItem[at], heapItem[low]] = [heapItem[low], heapItem[at]];
      at = low;
    }
  };
  for (let i = 0; i < size; i++) [heapItem[i], heapValue[i]] = [i, value(i)];
  for (let at = (size >> 1) - 1; at >= 0; at--) siftDown(at);
  for (let i = size; i < n; i++) {
    const x = value(i);
    if (x <= heapValue[0]) continue;
    [heapItem[0], heapValue[0]] = [i, x];
    siftDown(0);
  }
  return { items: heapItem.subarray(1), rest: heapValue[0] };
}

/**
 * The approximate scorer: approx = (user codes − 128) · item codes · scale · item scale + item bias,
 * then TopK, and the outliers' approx gathered apart. The user scale is one scalar per run (MatMulIntegerToFloat takes a per-tensor A scale).
 */
export function int8Graph(q: QuantizedCatalog): Uint8Array {
  const { d, nItems } = q;
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const model = {
    irVersion: 8,
    producerName: 'recserve-int8',
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graph: {
      name: 'recserve_int8_scorer',
      input: [tensorValue(INT8_USER_INPUT, TensorProto_DataType.UINT8, ['N', d]), tensorValue(INT8_SCALE_INPUT, DataType.FLOAT, []), tensorValue(INT8_K_INPUT, DataType.INT64, [1])],
      output: [
        tensorValue(INT8_VALUES, DataType.FLOAT, ['N', 'K']),
        tensorValue(INT8_INDICES, DataType.INT64, ['N', 'K']),
        tensorValue(INT8_OUTLIER_VALUES, DataType.FLOAT, ['N', q.outliers.length]),
      ],
      initializer: [
        { name: 'item_codes', dims: [d, nItems], dataType: TensorProto_DataType.INT8, rawData: bytes(q.codesByFactor) },
        floatInitializer('item_scales', [nItems], q.scales),
        floatInitializer('item_bias', [nItems], q.itemBias),
        { name: 'user_zero_point', dims: [], dataType: TensorProto_DataType.UINT8, rawData: Uint8Array.of(USER_ZERO_POINT) },
        int64Initializer('outlier_items', [q.outliers.length], Array.from(q.outliers)),
      ],
      node: [
        {
          opType: 'MatMulIntegerToFloat',
          domain: 'com.microsoft',
          name: 'approx',
          input: [INT8_USER_INPUT, 'item_codes', INT8_SCALE_INPUT, 'item_scales', 'user_zero_point', '', 'item_bias'],
          output: ['approx'],
        },
        { opType: 'TopK', name: 'approx_topk', input: ['approx', INT8_K_INPUT], output: [INT8_VALUES, INT8_INDICES] },
        { opType: 'Gather', name: 'outlier_approx', input: ['approx', 'outlier_items'], output: [INT8_OUTLIER_VALUES], attribute: [{ name: 'axis', type: AttrType.INT, i: 1 }] },
      ],
    },
  };
  return encodeModel(model as unknown as OnnxModel);
}

/** Users of one run, quantized with one shared scale. */
export interface QuantizedUsers {
  /** n × d, code + 128. */
  codes: Uint8Array;
  /** float32 scale shared by the run. */
  scale: number;
  /** Per user: ‖u‖, ‖u − scale·q‖, Σ|q|. */
  norm: Float64Array;
  residualNorm: Float64Array;
  codeL1: Float64Array;
}

export function quantizeUsers(q: QuantizedCatalog, users: ArrayLike<number>): QuantizedUsers {
  const { d, userFactors: uf } = q;
  const n = users.length;
  let top = 0;
  for (let r = 0; r < n; r++) for (let k = 0; k < d; k++) top = Math.max(top, Math.abs(uf[users[r] * d + k]));
  const scale = top === 0 ? 1 : Math.fround(top / USER_LEVELS);
  const codes = new Uint8Array(n * d);
  const norm = new Float64Array(n);
  const residualNorm = new Float64Array(n);
  const codeL1 = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const row = users[r] * d;
    let n2 = 0;
    let e2 = 0;
    let l1 = 0;
    for (let k = 0; k < d; k++) {
      const x = uf[row + k];
      const c = Math.max(-USER_LEVELS, Math.min(USER_LEVELS, Math.round(x / scale)));
      codes[r * d + k] = c + USER_ZERO_POINT;
      const e = x - scale * c;
      n2 += x * x;
      e2 += e * e;
      l1 += Math.abs(c);
    }
    norm[r] = Math.sqrt(n2);
    residualNorm[r] = Math.sqrt(e2);
    codeL1[r] = l1;
  }
  return { codes, scale, norm, residualNorm, codeL1 };
}

/** What one query's approximate candidates gave. */
export type Resolution =
  | { kind: 'done'; ranked: Ranked; rescored: number }
  /** Items ORT did not return might still reach the top k: ask again with more candidates. */
  | { kind: 'more' };

/** One run of the int8 graph: per user, the kk best approximate scores (best first) and the outliers'. */
export interface ApproxRun {
  kk: number;
  values: Float32Array;
  indices: BigInt64Array;
  outlierValues: Float32Array;
}

/**
 * Resolves query r of a run: bounds, the candidates (TopK's and the outliers) that can still reach
 * the k-th best, their exact float32 scores, and the top k.
 */
export function resolveQuery(q: QuantizedCatalog, users: QuantizedUsers, r: number, user: number, k: number, run: ApproxRun, eligible: (item: number) => boolean): Resolution {
  const cap = Math.min(k, q.nItems);
  if (cap <= 0) return { kind: 'done', ranked: { items: new Int32Array(0), scores: new Float32Array(0) }, rescored: 0 };
  const { kk } = run;
  const nOutliers = q.outliers.length;
  const off = userOffset(q, user);
  const normU = users.norm[r];
  const errU = users.residualNorm[r];
  const e = roundingUnit(q.d);
  // The graph's own rounding: |acc|·scale·s_i ≤ Σ|q_u|·(63·s_i)·scale, plus the bias.
  const perScale = GRAPH_ROUNDING * users.codeL1[r] * users.scale * ITEM_LEVELS * (1 + 2 ** -20);
  const absOff = Math.abs(off);
  const bound = (scale: number, residualNorm: number, codeNorm: number, norm: number, absBias: number) =>
    perScale * scale + GRAPH_ROUNDING * absBias + normU * residualNorm + errU * codeNorm + e * (normU * norm + absBias + absOff);

  // τ: the k-th best lower bound among the eligible candidates, each item counted once (an outlier
  // that TopK returned is taken from the outliers' values). Any cap of them give a valid τ; an
  // outlier joins the sort only when its lower bound beats τ from TopK's candidates.
  const slots = kk + nOutliers;
  const items = new Int32Array(slots).fill(-1);
  const uppers = new Float64Array(slots);
  const lowers = new Float64Array(slots);
  let nLowers = 0;
  let tau = -Infinity;
  const kthLower = () => (nLowers >= cap ? lowers.subarray(0, nLowers).sort()[nLowers - cap] : -Infinity);
  const candidate = (slot: number, i: number, value: number) => {
    const approx = value + off;
    const b = bound(q.scales[i], q.residualNorm[i], q.codeNorm[i], q.norm[i], Math.abs(q.itemBias[i])) + Math.abs(approx) * SUM_SLACK;
    items[slot] = i;
    uppers[slot] = approx + b;
    if (approx - b > tau) lowers[nLowers++] = approx - b;
  };
  for (let j = 0; j < kk; j++) {
    const i = Number(run.indices[r * kk + j]);
    if (eligible(i) && !contains(q.outliers, i)) candidate(j, i, run.values[r * kk + j]);
  }
  tau = kthLower();
  const fromTopK = nLowers;
  for (let o = 0; o < nOutliers; o++) {
    const i = q.outliers[o];
    if (eligible(i)) candidate(kk + o, i, run.outlierValues[r * nOutliers + o]);
  }
  if (nLowers > fromTopK) tau = kthLower();
  // Items neither returned nor outliers score at most the smallest value returned (TopK) plus the rest's bound.
  const { rest } = q;
  const last = run.values[r * kk + kk - 1] + off;
  const restBound = bound(rest.scale, rest.residualNorm, rest.codeNorm, rest.norm, rest.absBias);
  const complete = kk >= q.nItems || (kk > 0 && last + restBound + Math.abs(last) * SUM_SLACK < tau);
  if (!complete) return { kind: 'more' };

  const candItems: number[] = [];
  const candScores: number[] = [];
  for (let j = 0; j < slots; j++) {
    const i = items[j];
    if (i < 0 || uppers[j] < tau) continue;
    candItems.push(i);
    candScores.push(exactScore(q, user, i, off));
  }
  const order = candItems.map((_, j) => j).sort((a, b) => candScores[b] - candScores[a] || candItems[a] - candItems[b]);
  const take = Math.min(cap, order.length);
  const topItems = new Int32Array(take);
  const topScores = new Float32Array(take);
  for (let j = 0; j < take; j++) {
    topItems[j] = candItems[order[j]];
    topScores[j] = candScores[order[j]];
  }
  return { kind: 'done', ranked: { items: topItems, scores: topScores }, rescored: candItems.length };
}

/** fl(user bias + global bias): the exporter's user_offset node. */
export function userOffset(q: QuantizedCatalog, user: number): number {
  return add32(q.userBias[user], q.globalBias);
}

/**
 * The exporter's float32 score, bit for bit as onnxruntime computes it on x86 (MLAS SGEMM): the dot
 * product as one FMA chain from zero in factor order, then + item bias (Gemm's C), then + user offset.
 * OrtScorer checks this against the model's own session at load and keeps float32 when they differ.
 */
export function exactScore(q: QuantizedCatalog, user: number, item: number, off = userOffset(q, user)): number {
  const d = q.d;
  const u = q.userFactors;
  const v = q.itemFactors;
  const ur = user * d;
  const vr = item * d;
  let acc = 0;
  for (let k = 0; k < d; k++) acc = fma32(u[ur + k], v[vr + k], acc);
  return add32(add32(acc, q.itemBias[item]), off);
}

/** float32 fused multiply-add, correctly rounded, for float32 a, b, c. */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 + 24 bits fit a double
  const s = p + c;
  const r = Math.fround(s);
  // Rounding the exact value to double, then to float32, differs from rounding it to float32 once only
  // when s lands exactly halfway between two floats and the double sum was inexact.
  const other = 2 * s - r; // exact: the other neighbour when s is a midpoint
  if (other === r || Math.fround(other) !== other) return r;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb); // TwoSum: the exact sum is s + err
  if (err === 0) return r;
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}

/** float32 a + b, correctly rounded. */
export function add32(a: number, b: number): number {
  return fma32(a, 1, b);
}
