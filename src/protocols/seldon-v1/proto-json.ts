// protobuf bytes ⇄ the proto3-JSON form the data plane speaks (src/protocol/seldon.ts). A gRPC request
// becomes exactly the object a REST caller would have posted for the same message, so both transports
// share one validator, one codec and one recommender below this file.
//
// Rules (proto3 JSON mapping, with two deliberate choices marked ★):
//   google.protobuf.Value / ListValue / Struct → plain JSON; Empty → {}; Any → {"@type", "value": base64}
//   bytes → base64; int64 family → decimal string; enums → names (unknown numbers stay numbers)
//   float (32-bit) → the shortest decimal that round-trips as float32 (0.3f → 0.3, not 0.30000001…)
//   ★ every non-oneof field of a present message is written, defaults included (like
//     MessageToDict(including_default_value_fields=True)): proto3 cannot tell 0/""/[] from "absent",
//     and the REST contract requires e.g. Tensor.shape/values and Metric.key/value to be present.
//   ★ oneof members are written only when set (they have presence), so `strData: ""` stays visible.
// Encoding back is lenient about keys the proto does not have (dropped, as Seldon's
// json_to_seldon_model_metadata ignores unknown fields) and strict about values of the wrong type.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { JsonValue } from './messages.js';
import { PROTO_DIR } from '../../util/paths.js';
import { directlyWritable, Refused, writeJson } from '../../transport/grpc/wire.js';

export type JsonObject = { [k: string]: JsonValue };

/** The prediction.proto types, resolved once. */
export interface SeldonProtos {
  root: protobuf.Root;
  type(name: string): protobuf.Type;
  services: protobuf.Service[];
}

let cached: SeldonProtos | null = null;

/** Loads proto/prediction.proto (and the TensorFlow protos it imports) with protobufjs. */
export function seldonProtos(): SeldonProtos {
  if (cached) return cached;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') || path.isAbsolute(target) ? target : path.join(PROTO_DIR, target);
  // Field names become lowerCamelCase, which is their proto3-JSON name.
  root.loadSync('prediction.proto', { keepCase: false });
  root.resolveAll();
  const ns = root.lookup('seldon.protos') as protobuf.Namespace;
  const services = ns.nestedArray.filter((n): n is protobuf.Service => n instanceof protobuf.Service);
  const types = new Map<string, protobuf.Type>();
  cached = {
    root,
    services,
    type(name) {
      let t = types.get(name);
      if (!t) types.set(name, (t = root.lookupType(name)));
      return t;
    },
  };
  return cached;
}

/** The text of prediction.proto (for docs and tests). */
export function predictionProtoText(): string {
  return readFileSync(path.join(PROTO_DIR, 'prediction.proto'), 'utf8');
}

// ---- bytes → JSON form ------------------------------------------------------------------------

/** Decodes one message and converts it to its JSON form; throws on malformed bytes. */
export function decodeToJson(type: protobuf.Type, bytes: Uint8Array): JsonObject {
  // A plain Uint8Array view, not a Buffer: protobufjs' Buffer reader silently truncates a string whose
  // length runs past the end, while its generic reader rejects it ("index out of range").
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return messageToJson(type, type.decode(view) as unknown as Record<string, unknown>);
}

/** protobufjs computes fullName by walking the parents on every read; the decoder reads it per field. */
const fullNames = new WeakMap<protobuf.ReflectionObject, string>();
function fullNameOf(t: protobuf.ReflectionObject): string {
  let n = fullNames.get(t);
  if (n === undefined) fullNames.set(t, (n = t.fullName));
  return n;
}

export function messageToJson(type: protobuf.Type, m: Record<string, unknown>): JsonObject {
  switch (fullNameOf(type)) {
    case '.google.protobuf.Struct':
      return structToJson(m);
    case '.google.protobuf.Empty':
      return {};
    case '.google.protobuf.Any':
      return { '@type': String(m.typeUrl ?? m.type_url ?? ''), value: base64(m.value as Uint8Array | undefined) };
  }
  const out: JsonObject = {};
  for (const field of type.fieldsArray) {
    const v = m[field.name];
    if (field.partOf) {
      // A oneof member is present only if it was set (and it keeps its value even when that is the default).
      if (v === undefined || v === null || !Object.prototype.hasOwnProperty.call(m, field.name)) continue;
      // Two members on the wire: the last one wins (protobufjs' virtual oneof getter names it).
      const chosen = m[field.partOf.name];
      if (chosen !== undefined && chosen !== field.name) continue;
      out[field.name] = singleToJson(field, v);
      continue;
    }
    if (field.map) {
      const obj: JsonObject = {};
      for (const [k, mv] of Object.entries((v ?? {}) as Record<string, unknown>)) obj[k] = singleToJson(field, mv);
      out[field.name] = obj;
    } else if (field.repeated) {
      out[field.name] = ((v ?? []) as unknown[]).map((x) => singleToJson(field, x));
    } else if (field.resolvedType instanceof protobuf.Type) {
      if (v !== undefined && v !== null) out[field.name] = singleToJson(field, v);
    } else {
      out[field.name] = singleToJson(field, v ?? defaultScalar(field));
    }
  }
  return out;
}

function singleToJson(field: protobuf.Field, v: unknown): JsonValue {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) {
    const name = fullNameOf(rt);
    if (name === '.google.protobuf.Value') return valueToJson(v as Record<string, unknown>);
    if (name === '.google.protobuf.ListValue') return listToJson(v as Record<string, unknown>);
    return messageToJson(rt, v as Record<string, unknown>);
  }
  if (rt instanceof protobuf.Enum) {
    const name = rt.valuesById[v as number];
    return name ?? (v as number);
  }
  switch (field.type) {
    case 'bytes':
      return base64(v as Uint8Array);
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return longToString(v);
    case 'float':
      return shortestFloat32(v as number);
    default:
      return v as JsonValue;
  }
}

function valueToJson(v: Record<string, unknown> | null | undefined): JsonValue {
  if (!v) return null;
  // `kind` is protobufjs' virtual oneof getter: the name of the member that was set.
  switch (v.kind) {
    case 'structValue':
      return structToJson(v.structValue as Record<string, unknown>);
    case 'listValue':
      return listToJson(v.listValue as Record<string, unknown>);
    case 'stringValue':
      return v.stringValue as string;
    case 'numberValue':
      return v.numberValue as number;
    case 'boolValue':
      return v.boolValue as boolean;
    default:
      return null; // nullValue, or a Value with no kind set
  }
}

function listToJson(l: Record<string, unknown> | null | undefined): JsonValue[] {
  return ((l?.values ?? []) as Record<string, unknown>[]).map(valueToJson);
}

function structToJson(s: Record<string, unknown> | null | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries((s?.fields ?? {}) as Record<string, Record<string, unknown>>)) out[k] = valueToJson(v);
  return out;
}

function defaultScalar(field: protobuf.Field): unknown {
  if (field.resolvedType instanceof protobuf.Enum) return 0;
  switch (field.type) {
    case 'string':
      return '';
    case 'bytes':
      return new Uint8Array(0);
    case 'bool':
      return false;
    default:
      return 0;
  }
}

function base64(b: Uint8Array | number[] | undefined): string {
  if (!b) return '';
  return (b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(b)).toString('base64');
}

function longToString(v: unknown): string {
  if (typeof v === 'object' && v !== null) return (v as { toString(): string }).toString();
  return String(v ?? 0);
}

/** The shortest decimal that reads back as the same float32 (what proto3 JSON printers write). */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const y = Number(f.toPrecision(p));
    if (Math.fround(y) === f) return y;
  }
  return f;
}

// ---- JSON form → bytes ------------------------------------------------------------------------

/**
 * Converts a JSON-form object to protobuf bytes; throws on a value of the wrong type. The direct writer
 * (wire.ts) writes the same bytes as encodeFromJsonReference without its two intermediate object trees;
 * when it refuses an input, the reference path runs and throws its own error, which names the bad field.
 */
export function encodeFromJson(type: protobuf.Type, json: unknown): Uint8Array {
  if (directlyWritable(type)) {
    try {
      return writeJson(type, json);
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
    }
  }
  return encodeFromJsonReference(type, json);
}

/** JSON form → protobufjs plain objects → fromObject → encode: the definition the direct writer follows. */
export function encodeFromJsonReference(type: protobuf.Type, json: unknown): Uint8Array {
  const obj = jsonToProtoObject(type, json, type.name);
  return type.encode(type.fromObject(obj)).finish();
}

/** JSON form → the plain-object form protobufjs' fromObject takes (WKTs expanded). */
function jsonToProtoObject(type: protobuf.Type, json: unknown, at: string): Record<string, unknown> {
  switch (type.fullName) {
    case '.google.protobuf.Struct':
      return structToProto(json, at);
    case '.google.protobuf.Value':
      return valueToProto(json, at);
    case '.google.protobuf.ListValue':
      return listToProto(json, at);
    case '.google.protobuf.Any': {
      const a = expectObject(json, at);
      return { type_url: String(a['@type'] ?? ''), value: Buffer.from(String(a.value ?? ''), 'base64') };
    }
  }
  const src = expectObject(json, at);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const v = field.name in src ? src[field.name] : src[snake(field.name)];
    if (v === undefined) continue;
    // JSON null means "absent", except for a google.protobuf.Value, where it is the null value.
    if (v === null && (field.repeated || field.resolvedType?.fullName !== '.google.protobuf.Value')) continue;
    const where = `${at}.${field.name}`;
    if (field.map) {
      const entries: Record<string, unknown> = {};
      for (const [k, mv] of Object.entries(expectObject(v, where))) entries[k] = singleToProto(field, mv, `${where}.${k}`);
      out[field.name] = entries;
    } else if (field.repeated) {
      if (!Array.isArray(v)) throw new Error(`${where} must be an array, got ${typeof v}`);
      out[field.name] = v.map((x, i) => singleToProto(field, x, `${where}[${i}]`));
    } else {
      out[field.name] = singleToProto(field, v, where);
    }
  }
  return out;
}

function singleToProto(field: protobuf.Field, v: unknown, at: string): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return jsonToProtoObject(rt, v, at);
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string' && v in rt.values) return rt.values[v];
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    throw new Error(`${at}: ${JSON.stringify(v)} is not a ${rt.name}`);
  }
  switch (field.type) {
    case 'bytes':
      if (typeof v !== 'string') throw new Error(`${at} must be a base64 string`);
      return Buffer.from(v, 'base64');
    case 'string':
      if (typeof v !== 'string') throw new Error(`${at} must be a string, got ${typeof v}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new Error(`${at} must be a boolean, got ${typeof v}`);
      return v;
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
      throw new Error(`${at} must be a whole number, got ${JSON.stringify(v)}`);
    default:
      if (typeof v !== 'number') throw new Error(`${at} must be a number, got ${typeof v}`);
      return v;
  }
}

function valueToProto(v: unknown, at: string): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 0 };
  switch (typeof v) {
    case 'number':
      return { numberValue: v };
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'object':
      return Array.isArray(v) ? { listValue: listToProto(v, at) } : { structValue: structToProto(v, at) };
    default:
      throw new Error(`${at}: a ${typeof v} is not a JSON value`);
  }
}

function listToProto(v: unknown, at: string): Record<string, unknown> {
  if (!Array.isArray(v)) throw new Error(`${at} must be an array`);
  return { values: v.map((x, i) => valueToProto(x, `${at}[${i}]`)) };
}

function structToProto(v: unknown, at: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(expectObject(v, at))) if (x !== undefined) fields[k] = valueToProto(x, `${at}.${k}`);
  return { fields };
}

function expectObject(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at} must be an object`);
  return v as Record<string, unknown>;
}

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
