// Top-k inside the ONNX graph. A catalog model's output is every user's score for every
// item; copying that matrix out of onnxruntime and scanning it in JavaScript cost more than the
// matrix product itself (50,000 items: ~0.2 ms per user against ~0.1 ms). Appending one TopK node
// lets onnxruntime select the candidates natively and hand back only k' per user.
//
// The node is appended without re-encoding the model: protobuf merges a second occurrence of an
// embedded message field into the first and concatenates repeated fields, so `model bytes +
// ModelProto{graph{node, input, output}}` is the same model plus the node, whatever else it carries.
//
// ONNX TopK (opset ≥ 11) returns the k largest, best first, equal values by lower index — the same
// order as selectTopK. Exclusions are honoured by asking for k + |exclude| candidates and dropping the
// excluded ones; filter masks and NaN scores fall back to the full matrix and selectTopK.
import { AttrType, DataType, encodeModel, tensorValue, type OnnxModel } from '../model-format/onnx-format.js';
import type { Ranked } from './scorer.js';
import type { Signature } from './signature.js';

export const TOPK_K_INPUT = 'recserve_topk_k';
export const TOPK_VALUES = 'recserve_topk_values';
export const TOPK_INDICES = 'recserve_topk_indices';

/** The model with TopK(output, k) appended as two extra outputs, or null for non-catalog models. */
export function withGraphTopK(onnx: Uint8Array, sig: Signature): Uint8Array | null {
  if (sig.kind !== 'catalog') return null;
  const patch = encodeModel({
    graph: {
      node: [
        {
          opType: 'TopK',
          name: 'recserve_topk',
          input: [sig.output, TOPK_K_INPUT],
          output: [TOPK_VALUES, TOPK_INDICES],
          attribute: [
            { name: 'axis', type: AttrType.INT, i: -1 },
            { name: 'largest', type: AttrType.INT, i: 1 },
            { name: 'sorted', type: AttrType.INT, i: 1 },
          ],
        },
      ],
      input: [tensorValue(TOPK_K_INPUT, DataType.INT64, [1])],
      output: [tensorValue(TOPK_VALUES, DataType.FLOAT, ['N', 'recserve_k']), tensorValue(TOPK_INDICES, DataType.INT64, ['N', 'recserve_k'])],
    },
  } as unknown as OnnxModel);
  const out = new Uint8Array(onnx.byteLength + patch.byteLength);
  out.set(onnx, 0);
  out.set(patch, onnx.byteLength);
  return out;
}

/** Candidates per user to ask TopK for, or 0 when the full matrix is the better (or only) way. */
export function graphCandidates(queries: readonly { k: number; exclude: Int32Array | null; allow: Uint8Array | null }[], nItems: number): number {
  let kk = 0;
  for (const q of queries) {
    if (q.allow !== null) return 0;
    kk = Math.max(kk, q.k + (q.exclude === null ? 0 : q.exclude.length));
  }
  kk = Math.min(kk, nItems);
  // Asking for a large share of the catalog gains little over scanning it.
  return kk > 0 && kk <= Math.max(256, nItems >> 3) ? kk : 0;
}

/**
 * The best k of one user's kk candidates (best first) that are not excluded (sorted ascending).
 * Null when a candidate is NaN: the order around NaN is not defined, so the caller must fall back.
 */
export function pickCandidates(values: Float32Array, indices: BigInt64Array, offset: number, kk: number, k: number, exclude: Int32Array | null): Ranked | null {
  const cap = Math.max(0, Math.min(k, kk));
  const items = new Int32Array(cap);
  const scores = new Float32Array(cap);
  let n = 0;
  for (let j = 0; j < kk && n < cap; j++) {
    const s = values[offset + j];
    if (!(s === s)) return null;
    const item = Number(indices[offset + j]);
    if (exclude !== null && contains(exclude, item)) continue;
    items[n] = item;
    scores[n] = s;
    n++;
  }
  return n === cap ? { items, scores } : { items: items.slice(0, n), scores: scores.slice(0, n) };
}

/** Whether a sorted list holds x (binary search). */
export function contains(sorted: Int32Array, x: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid];
    if (v === x) return true;
    if (v < x) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
