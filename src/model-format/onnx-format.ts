// The part of the ONNX file format recserve reads and writes, through the code generated from
// proto/onnx/onnx.proto (src/gen/onnx). onnxruntime-node exposes neither `metadata_props` nor initializer
// values, and the trainer has to write models without Python, so we carry our own small schema. Callers
// see plain objects (below): 64-bit fields as numbers, absent fields and oneofs as undefined.
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  ModelProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../gen/onnx/onnx_pb.js';

/** ONNX TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: TensorProto_DataType.FLOAT,
  INT32: TensorProto_DataType.INT32,
  INT64: TensorProto_DataType.INT64,
  STRING: TensorProto_DataType.STRING,
  DOUBLE: TensorProto_DataType.DOUBLE,
} as const;
/** AttributeProto.AttributeType values used here. */
export const AttrType = {
  FLOAT: AttributeProto_AttributeType.FLOAT,
  INT: AttributeProto_AttributeType.INT,
  STRING: AttributeProto_AttributeType.STRING,
  TENSOR: AttributeProto_AttributeType.TENSOR,
  FLOATS: AttributeProto_AttributeType.FLOATS,
  INTS: AttributeProto_AttributeType.INTS,
} as const;

export interface OnnxDim { dimValue?: number | Long; dimParam?: string }
export interface OnnxValueInfo {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: OnnxDim[] } } };
}
export interface OnnxTensor {
  name?: string;
  dims?: (number | Long)[];
  dataType?: number;
  floatData?: number[];
  int64Data?: (number | Long)[];
  rawData?: Uint8Array;
  dataLocation?: number;
}
export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number | Long;
  s?: Uint8Array;
  t?: OnnxTensor;
  ints?: (number | Long)[];
}
export interface OnnxNode { input: string[]; output: string[]; name?: string; opType: string; attribute?: OnnxAttribute[]; domain?: string }
export interface OnnxGraph { node: OnnxNode[]; name: string; initializer: OnnxTensor[]; input: OnnxValueInfo[]; output: OnnxValueInfo[] }
export interface OnnxModel {
  irVersion: number | Long;
  producerName?: string;
  producerVersion?: string;
  graph: OnnxGraph;
  opsetImport: { domain?: string; version: number | Long }[];
  metadataProps?: { key: string; value: string }[];
}
type Long = { toNumber(): number };

export function toNumber(v: number | Long | undefined | null): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function decodeModel(bytes: Uint8Array): OnnxModel {
  const m = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: false });
  return {
    irVersion: Number(m.irVersion),
    producerName: m.producerName,
    producerVersion: m.producerVersion,
    graph: m.graph && graphOf(m.graph),
    opsetImport: m.opsetImport.map((o) => ({ domain: o.domain, version: Number(o.version) })),
    metadataProps: m.metadataProps.map(({ key, value }) => ({ key, value })),
  } as OnnxModel;
}

function graphOf(g: GraphProto): OnnxGraph {
  return {
    node: g.node.map(nodeOf),
    name: g.name,
    initializer: g.initializer.map(tensorOf),
    input: g.input.map(valueInfoOf),
    output: g.output.map(valueInfoOf),
  };
}

function nodeOf(n: NodeProto): OnnxNode {
  return { input: n.input, output: n.output, name: n.name, opType: n.opType, attribute: n.attribute.map(attributeOf), domain: n.domain };
}

function attributeOf(a: AttributeProto): OnnxAttribute {
  return { name: a.name, type: a.type, f: a.f, i: Number(a.i), s: a.s, t: a.t && tensorOf(a.t), ints: a.ints.map(Number) };
}

function tensorOf(t: TensorProto): OnnxTensor {
  return {
    name: t.name,
    dims: t.dims.map(Number),
    dataType: t.dataType,
    floatData: t.floatData,
    int64Data: t.int64Data.map(Number),
    rawData: t.rawData,
    dataLocation: t.dataLocation,
  };
}

function valueInfoOf(v: ValueInfoProto): OnnxValueInfo {
  const tensor = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  if (!tensor) return { name: v.name };
  const dim = tensor.shape?.dim.map((d): OnnxDim => {
    if (d.value.case === 'dimValue') return { dimValue: Number(d.value.value) };
    if (d.value.case === 'dimParam') return { dimParam: d.value.value };
    return {};
  });
  return { name: v.name, type: { tensorType: { elemType: tensor.elemType, ...(dim ? { shape: { dim } } : {}) } } };
}

/** Writes `model` (or a part of one: only the fields it sets are written). */
export function encodeModel(model: OnnxModel): Uint8Array {
  try {
    return toBinary(ModelProtoSchema, create(ModelProtoSchema, modelInit(model)));
  } catch (e) {
    throw new Error(`invalid ONNX model: ${(e as Error).message}`);
  }
}

type ModelInit = MessageInitShape<typeof ModelProtoSchema>;
type Init<T> = Exclude<T, undefined>;
type GraphInit = Init<ModelInit['graph']>;
type NodeInit = Init<GraphInit['node']>[number];
type TensorInit = Init<GraphInit['initializer']>[number];
type ValueInfoInit = Init<GraphInit['input']>[number];
type AttributeInit = Init<NodeInit['attribute']>[number];

/** `o` without its undefined members: a proto2 field is written exactly when it is set. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const big = (v: number | Long | undefined): bigint | undefined => (v === undefined ? undefined : BigInt(toNumber(v)));

function modelInit(m: OnnxModel): ModelInit {
  return defined<ModelInit>({
    irVersion: big(m.irVersion),
    producerName: m.producerName,
    producerVersion: m.producerVersion,
    opsetImport: m.opsetImport?.map((o) => defined({ domain: o.domain, version: big(o.version) })),
    graph: m.graph && graphInit(m.graph),
    metadataProps: m.metadataProps?.map(({ key, value }) => ({ key, value })),
  });
}

function graphInit(g: OnnxGraph): GraphInit {
  return defined<GraphInit>({
    node: g.node?.map(nodeInit),
    name: g.name,
    initializer: g.initializer?.map(tensorInit),
    input: g.input?.map(valueInfoInit),
    output: g.output?.map(valueInfoInit),
  });
}

function nodeInit(n: OnnxNode): NodeInit {
  return defined<NodeInit>({ input: n.input, output: n.output, name: n.name, opType: n.opType, attribute: n.attribute?.map(attributeInit), domain: n.domain });
}

function attributeInit(a: OnnxAttribute): AttributeInit {
  return defined<AttributeInit>({ name: a.name, type: a.type, f: a.f, i: big(a.i), s: a.s, t: a.t && tensorInit(a.t), ints: a.ints?.map((x) => BigInt(toNumber(x))) });
}

function tensorInit(t: OnnxTensor): TensorInit {
  return defined<TensorInit>({
    name: t.name,
    dims: t.dims?.map((x) => BigInt(toNumber(x))),
    dataType: t.dataType,
    floatData: t.floatData,
    int64Data: t.int64Data?.map((x) => BigInt(toNumber(x))),
    rawData: t.rawData,
    dataLocation: t.dataLocation,
  });
}

function valueInfoInit(v: OnnxValueInfo): ValueInfoInit {
  const tt = v.type?.tensorType;
  if (!tt) return { name: v.name };
  const dim = tt.shape?.dim?.map((d) => ({
    value: d.dimValue !== undefined ? { case: 'dimValue' as const, value: BigInt(toNumber(d.dimValue)) } : d.dimParam !== undefined ? { case: 'dimParam' as const, value: d.dimParam } : { case: undefined },
  }));
  return { name: v.name, type: { value: { case: 'tensorType', value: defined({ elemType: tt.elemType, shape: dim && { dim } }) } } };
}

/** `metadata_props` as a plain record. */
export function metadataOf(model: OnnxModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, value } of model.metadataProps ?? []) out[key] = value;
  return out;
}

/** Dims of a value's declared shape: numbers for fixed dims, -1 for symbolic or unknown ones. */
export function shapeOf(v: OnnxValueInfo): number[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined ? toNumber(d.dimValue) : -1));
}

/** Reads a float32 initializer (raw little-endian bytes or float_data) into a Float32Array copy. */
export function floatTensor(t: OnnxTensor): { dims: number[]; data: Float32Array } {
  const dims = (t.dims ?? []).map(toNumber);
  if (t.dataType !== DataType.FLOAT) throw new Error(`initializer ${t.name} is not float32 (data_type ${t.dataType})`);
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) throw new Error(`initializer ${t.name} uses external data, which recserve does not read`);
  const size = dims.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  if (t.rawData && t.rawData.length > 0) {
    // Copy into an aligned buffer: the raw bytes sit at an arbitrary offset of the file.
    const copy = new Uint8Array(t.rawData.length);
    copy.set(t.rawData);
    data = new Float32Array(copy.buffer, 0, t.rawData.length / 4);
  } else {
    data = Float32Array.from(t.floatData ?? []);
  }
  if (data.length !== size) throw new Error(`initializer ${t.name} holds ${data.length} values for dims [${dims}]`);
  return { dims, data };
}

export function floatInitializer(name: string, dims: number[], data: Float32Array): OnnxTensor {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims, dataType: DataType.FLOAT, rawData: raw };
}

export function int64Initializer(name: string, dims: number[], values: number[]): OnnxTensor {
  return { name, dims, dataType: DataType.INT64, int64Data: values };
}

export function tensorValue(name: string, elemType: number, dims: (number | string)[]): OnnxValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
