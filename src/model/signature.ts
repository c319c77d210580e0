// Works out what a model.onnx computes from its graph alone, so a bare `torch.onnx.export` loads
// with no configuration. Three shapes are recognised (DESIGN §3):
//   catalog: user int64[N]                  → float[N, n_items]
//   pair:    user int64[N], item int64[N]   → float[N] or [N, 1]
//   packed:  x int64[N, 2] (fastai: column 0 user, column 1 item) → float[N] or [N, 1]
import { DomainError } from '../errors.js';
import { DataType, shapeOf, toNumber, type OnnxGraph, type OnnxModel, type OnnxValueInfo } from '../model-format/onnx-format.js';

export type SignatureKind = 'catalog' | 'pair' | 'packed';

export interface Signature {
  kind: SignatureKind;
  /** Input holding user indices (for `packed`, the [N,2] input). */
  userInput: string;
  /** Input holding item indices (`pair` only). */
  itemInput?: string;
  output: string;
  /** Number of items the catalog output covers (catalog only; -1 when symbolic). */
  catalogSize?: number;
}

/** Overrides a model-settings.json may give (`signature` block). */
export interface SignatureOverride {
  kind?: SignatureKind;
  user_input?: string;
  item_input?: string;
  output?: string;
}

/** The ONNX graph's inputs and outputs do not say how to score with it (a model that cannot be served). */
export class SignatureError extends DomainError {
  constructor(message: string) {
    super('bad_data', message);
  }
}

const USER_NAME = /user|uid|^u$|^users?_?(id|idx|index)?$/i;
const ITEM_NAME = /item|iid|movie|product|^i$/i;

export function discoverSignature(model: OnnxModel, override: SignatureOverride = {}): Signature {
  const g = model.graph;
  const initNames = new Set(g.initializer.map((t) => t.name));
  // Some exporters list initializers as inputs too; only real feeds count.
  const inputs = g.input.filter((i) => !initNames.has(i.name));
  const outputs = g.output;
  const show = (v: OnnxValueInfo) => {
    const dims = (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined ? toNumber(d.dimValue) : (d.dimParam ?? '?')));
    return `${v.name}${JSON.stringify(dims)}:${elemName(v.type?.tensorType?.elemType)}`;
  };
  const describe = () => `inputs ${inputs.map(show).join(', ')}; outputs ${outputs.map(show).join(', ')}`;

  const byName = (name: string | undefined, what: string) => {
    if (name === undefined) return undefined;
    const found = inputs.find((i) => i.name === name) ?? outputs.find((o) => o.name === name);
    if (!found) throw new SignatureError(`model-settings.json names ${what} "${name}", which the graph does not have (${describe()})`);
    return found.name;
  };
  const output = byName(override.output, 'output') ?? outputs.find((o) => o.type?.tensorType?.elemType === DataType.FLOAT)?.name;
  if (!output) throw new SignatureError(`the graph has no float32 output to use as scores (${describe()})`);
  const outShape = shapeOf(outputs.find((o) => o.name === output)!);

  const intInputs = inputs.filter((i) => i.type?.tensorType?.elemType === DataType.INT64);
  let kind = override.kind;
  let userInput = byName(override.user_input, 'user_input');
  let itemInput = byName(override.item_input, 'item_input');

  if (!kind) {
    if (intInputs.length >= 2 || itemInput) kind = 'pair';
    else if (intInputs.length === 1 && shapeOf(intInputs[0]).length === 2 && shapeOf(intInputs[0])[1] === 2) kind = 'packed';
    else if (intInputs.length === 1 && outShape.length === 2 && outShape[1] !== 1) kind = 'catalog';
    else throw new SignatureError(`cannot tell whether this is a pair or a catalog scorer: ${describe()}. Set "signature" in model-settings.json`);
  }
  if (kind === 'pair') {
    if (!userInput) userInput = (intInputs.find((i) => USER_NAME.test(i.name)) ?? intInputs.find((i) => i.name !== itemInput))?.name;
    if (!itemInput) itemInput = (intInputs.find((i) => i.name !== userInput && ITEM_NAME.test(i.name)) ?? intInputs.find((i) => i.name !== userInput))?.name;
    if (!userInput || !itemInput) throw new SignatureError(`a pair scorer needs two int64 inputs (user, item): ${describe()}`);
    return { kind, userInput, itemInput, output };
  }
  if (!userInput) userInput = intInputs[0]?.name;
  if (!userInput) throw new SignatureError(`the graph has no int64 input for user indices: ${describe()}`);
  if (kind === 'packed') return { kind, userInput, output };
  return { kind, userInput, output, catalogSize: outShape[1] ?? -1 };
}

function elemName(t: number | undefined): string {
  const names: Record<number, string> = { 1: 'float32', 6: 'int32', 7: 'int64', 8: 'string', 11: 'float64' };
  return t === undefined ? '?' : (names[t] ?? `type${t}`);
}

/**
 * Row counts of the embedding tables the user and item indices are looked up in, found by following
 * the graph from each index source to the first Gather over a rank-2 initializer. A bare PyTorch
 * export carries no id maps, so these counts bound the valid indices.
 */
export function embeddingRows(model: OnnxModel, sig: Signature): { users?: number; items?: number } {
  const g = model.graph;
  const dims = new Map(g.initializer.map((t) => [t.name ?? '', (t.dims ?? []).map(toNumber)]));
  const constInt = constantInts(g);
  let userSrc = [sig.userInput];
  let itemSrc = sig.itemInput ? [sig.itemInput] : [];
  if (sig.kind === 'packed') {
    // fastai's x[:, 0] / x[:, 1] export as Gather(x, const, axis=1) (or Slice); split by the constant.
    userSrc = [];
    itemSrc = [];
    for (const n of g.node) {
      if (n.input[0] !== sig.userInput) continue;
      const col = n.opType === 'Gather' ? constInt.get(n.input[1]) : n.opType === 'Slice' ? constInt.get(n.input[1]) : undefined;
      if (col === 0) userSrc.push(n.output[0]);
      else if (col === 1) itemSrc.push(n.output[0]);
    }
  }
  return { users: tableRows(g, userSrc, dims), items: tableRows(g, itemSrc, dims) };
}

function tableRows(g: OnnxGraph, sources: string[], dims: Map<string, number[]>): number | undefined {
  const reach = new Set(sources);
  let rows: number | undefined;
  // Nodes are topologically sorted in a valid ONNX graph: one forward pass follows the data.
  for (const n of g.node) {
    if (!n.input.some((i) => reach.has(i))) continue;
    if (n.opType === 'Gather' && reach.has(n.input[1]) && dims.get(n.input[0])?.length === 2) {
      rows = Math.max(rows ?? 0, dims.get(n.input[0])![0]);
      continue; // the looked-up rows are factors, not indices
    }
    if (['Gather', 'Mul', 'Add', 'MatMul', 'Gemm', 'ReduceSum', 'Sigmoid'].includes(n.opType)) continue;
    for (const o of n.output) reach.add(o); // Cast, Reshape, Squeeze, Unsqueeze, Identity … keep indices
  }
  return rows;
}

function constantInts(g: OnnxGraph): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of g.initializer) {
    const v = t.int64Data?.[0] ?? (t.rawData && t.rawData.length >= 8 ? Number(new DataView(t.rawData.buffer, t.rawData.byteOffset).getBigInt64(0, true)) : undefined);
    if (v !== undefined && (t.dims ?? []).length <= 1) out.set(t.name ?? '', toNumber(v));
  }
  for (const n of g.node) {
    if (n.opType !== 'Constant') continue;
    const t = n.attribute?.find((a) => a.name === 'value')?.t;
    const raw = t?.rawData;
    const v = t?.int64Data?.[0] ?? (raw && raw.length >= 8 ? Number(new DataView(raw.buffer, raw.byteOffset).getBigInt64(0, true)) : undefined);
    if (v !== undefined) out.set(n.output[0], toNumber(v));
  }
  return out;
}
