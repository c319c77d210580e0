// Protobuf-level helpers for the gRPC fuzzer and the finding tests: the Seldon types from
// proto/prediction.proto (protobufjs), a lenient JSON → message-object coercion (so a mutated JSON message
// becomes a type-correct protobuf message carrying the junk), and hand-built wire bytes for what
// protobufjs will not write (10,000-deep values, out-of-range varints, wrong wire types).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { ALLOWED_GRPC_CODES, clipText, leakIn, MAX_ERROR_TEXT } from './answers.js';
import { Raw, serialize, type Tree } from './mutate.js';

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');

let root: protobuf.Root | null = null;
export function seldonType(name: 'SeldonMessage' | 'Feedback' | 'SeldonModelMetadataRequest' | 'SeldonModelMetadata' | 'SeldonMessageList'): protobuf.Type {
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') || path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
    root.loadSync('prediction.proto', { keepCase: false });
    root.resolveAll();
  }
  return root.lookupType(`seldon.protos.${name}`);
}

export function encode(type: 'SeldonMessage' | 'Feedback' | 'SeldonModelMetadataRequest', obj: Record<string, unknown>): Buffer {
  const t = seldonType(type);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

// ---- lenient coercion of a (mutated) JSON message into a protobufjs object ------------------------

/** A Tree as a plain JS value: Raw text is parsed when it is JSON, NaN/Infinity literals become numbers. */
function plain(t: Tree | undefined): unknown {
  if (t instanceof Raw) {
    const literal: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '1e999': Infinity, '-1e999': -Infinity };
    if (t.text in literal) return literal[t.text];
    try {
      return JSON.parse(t.text);
    } catch {
      return t.text;
    }
  }
  if (Array.isArray(t)) return t.map(plain);
  if (t !== null && typeof t === 'object') return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, plain(v)]));
  return t;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : Number(str(v)));
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
const map = <T>(v: unknown, f: (x: unknown) => T): Record<string, T> => (isObj(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, f(x)])) : {});

/** JSON → google.protobuf.Value object; nesting past `maxDepth` becomes an empty list (deep values are built by hand). */
export function toValue(v: unknown, depth = 0, maxDepth = 200): Record<string, unknown> {
  if (depth > maxDepth) return { listValue: { values: [] } };
  if (v === null || v === undefined) return { nullValue: 0 };
  if (Array.isArray(v)) return { listValue: { values: v.map((x) => toValue(x, depth + 1, maxDepth)) } };
  if (typeof v === 'object') return { structValue: { fields: map(v, (x) => toValue(x, depth + 1, maxDepth)) } };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return { stringValue: String(v) };
}

function seldonMessage(v: unknown): Record<string, unknown> {
  if (!isObj(v)) return { strData: str(v) };
  const out: Record<string, unknown> = {};
  if (isObj(v.status)) out.status = { code: num(v.status.code) | 0, info: str(v.status.info), reason: str(v.status.reason), status: num(v.status.status) | 0 };
  if (v.meta !== undefined) {
    const m = isObj(v.meta) ? v.meta : {};
    out.meta = {
      puid: str(m.puid),
      tags: map(m.tags, (x) => toValue(x)),
      routing: map(m.routing, (x) => num(x) | 0),
      requestPath: map(m.requestPath, str),
      metrics: list(m.metrics).map((x) => {
        const o = isObj(x) ? x : { key: x };
        return { key: str(o.key), type: ['COUNTER', 'GAUGE', 'TIMER'].includes(str(o.type)) ? str(o.type) : num(o.type) | 0, value: num(o.value), tags: map(o.tags, str) };
      }),
    };
  }
  if (v.data !== undefined) {
    const d = isObj(v.data) ? v.data : { ndarray: v.data };
    const data: Record<string, unknown> = { names: list(d.names).map(str) };
    if (isObj(d.tensor)) data.tensor = { shape: list(d.tensor.shape).map((x) => num(x)), values: list(d.tensor.values).map(num) };
    else if (d.tensor !== undefined) data.tensor = { shape: [], values: list(d.tensor).map(num) };
    else data.ndarray = { values: list(d.ndarray).map((x) => toValue(x)) };
    out.data = data;
  } else if (v.binData !== undefined) out.binData = Buffer.from(str(v.binData), 'base64');
  else if (v.strData !== undefined) out.strData = str(v.strData);
  else if (v.jsonData !== undefined) out.jsonData = toValue(v.jsonData);
  return out;
}

/** A mutated JSON message (SeldonMessage or Feedback form) as encoded bytes of that proto type. */
export function junkMessage(kind: 'SeldonMessage' | 'Feedback', tree: Tree): Buffer {
  const v = plain(tree);
  try {
    if (kind === 'Feedback') {
      const f = isObj(v) ? v : { request: v };
      const obj: Record<string, unknown> = { reward: num(f.reward) };
      for (const k of ['request', 'response', 'truth'] as const) if (f[k] !== undefined) obj[k] = seldonMessage(f[k]);
      return encode('Feedback', obj);
    }
    return encode('SeldonMessage', seldonMessage(v));
  } catch {
    // protobufjs refused the object (an odd enum, say): send the text as strData instead.
    return encode('SeldonMessage', { strData: serialize(tree).slice(0, 1 << 20) });
  }
}

// ---- wire bytes by hand ---------------------------------------------------------------------------

export function varint(n: number | bigint): Buffer {
  let x = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (x > 127n) {
    out.push(Number(x & 127n) | 128);
    x >>= 7n;
  }
  out.push(Number(x));
  return Buffer.from(out);
}

export const tag = (field: number, wireType: number) => varint((field << 3) | wireType);
export const lengthDelimited = (field: number, body: Buffer) => Buffer.concat([tag(field, 2), varint(body.length), body]);

/** SeldonMessage{data{tensor{shape (packed, raw varints: any 64-bit value), values: []}}}. */
export function tensorShapeMessage(shape: (number | bigint)[]): Buffer {
  const packed = Buffer.concat(shape.map(varint));
  const tensor = lengthDelimited(1, packed);
  return lengthDelimited(3 /* data */, lengthDelimited(2 /* tensor */, tensor));
}

/**
 * SeldonMessage{jsonData: Value nested `depth` levels (lists or structs)}, built from the inside out
 * without recursion, so 10,000 levels cost 10,000 small buffers.
 */
export function deepJsonData(depth: number, kind: 'list' | 'struct'): Buffer {
  const headers: Buffer[] = [];
  let inner = 0; // byte length of the Value below the current level (the innermost Value is empty)
  for (let i = 0; i < depth; i++) {
    if (kind === 'list') {
      // Value{list_value(6): ListValue{values(1): inner}}
      const list = Buffer.concat([tag(1, 2), varint(inner)]);
      const listLen = list.length + inner;
      const value = Buffer.concat([tag(6, 2), varint(listLen)]);
      headers.push(Buffer.concat([value, list]));
      inner = value.length + listLen;
    } else {
      // Value{struct_value(5): Struct{fields(1): entry{key(1)="a", value(2): inner}}}
      const entryHead = Buffer.concat([tag(1, 2), varint(1), Buffer.from('a'), tag(2, 2), varint(inner)]);
      const entryLen = entryHead.length + inner;
      const struct = Buffer.concat([tag(1, 2), varint(entryLen)]);
      const structLen = struct.length + entryLen;
      const value = Buffer.concat([tag(5, 2), varint(structLen)]);
      headers.push(Buffer.concat([value, struct, entryHead]));
      inner = value.length + structLen;
    }
  }
  headers.reverse();
  return Buffer.concat([tag(6 /* jsonData */, 2), varint(inner), ...headers]);
}

// ---- calls on one channel ---------------------------------------------------------------------------

export const M = (service: string, rpc: string) => `/seldon.protos.${service}/${rpc}`;
const DEADLINE_MS = 10_000;
/** Trailers carry the status details and seldon-reason: a few KB at most. */
const MAX_TRAILER_BYTES = 4096;

export interface GrpcAnswer {
  code: number;
  details: string;
  trailerBytes: number;
  trailerText: string;
  ms: number;
  bytes?: Buffer;
}

/** One unary call with identity serializers on `client`'s channel; never rejects. */
export function rawUnary(client: grpc.Client, method: string, bytes: Buffer, deadlineMs = DEADLINE_MS): Promise<GrpcAnswer> {
  const started = Date.now();
  const id = (b: Buffer) => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, id, id, bytes, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
      const md = err?.metadata?.getMap() ?? {};
      const trailerText = Object.entries(md)
        .map(([k, v]) => `${k}: ${Buffer.isBuffer(v) ? v.toString('base64') : v}`)
        .join('\n');
      resolve({ code: err ? err.code : 0, details: err?.details ?? '', trailerBytes: trailerText.length, trailerText, ms: Date.now() - started, bytes: res ?? undefined });
    });
  });
}

/** Everything wrong with one answer to a hostile call; empty when fine. */
export function grpcProblems(a: GrpcAnswer): string[] {
  const problems: string[] = [];
  if (!ALLOWED_GRPC_CODES.has(a.code)) problems.push(`${grpc.status[a.code] ?? a.code} ${JSON.stringify(clipText(a.details, 120))}`);
  if (a.details.length > MAX_ERROR_TEXT) problems.push(`details of ${a.details.length} chars`);
  if (a.trailerBytes > MAX_TRAILER_BYTES) problems.push(`trailers of ${a.trailerBytes} bytes`);
  const leak = leakIn(a.details) ?? leakIn(a.trailerText);
  if (leak) problems.push(`leak: ${leak}`);
  return problems;
}

export const GOOD = encode('SeldonMessage', { jsonData: { structValue: { fields: { user_id: { stringValue: '1' }, k: { numberValue: 2 } } } } });

/** A valid predict on the same channel must answer OK with recommendations. */
export async function goodCall(client: grpc.Client): Promise<string | null> {
  const a = await rawUnary(client, M('Model', 'Predict'), GOOD);
  if (a.code !== 0) return `${grpc.status[a.code]} ${clipText(a.details, 120)}`;
  const msg = seldonType('SeldonMessage').toObject(seldonType('SeldonMessage').decode(a.bytes!), { defaults: false }) as { jsonData?: unknown };
  return msg.jsonData ? null : 'no jsonData in the answer';
}

