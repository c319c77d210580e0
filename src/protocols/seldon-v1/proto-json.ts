// protobuf bytes ⇄ the proto3-JSON form the data plane speaks, through the code generated from
// proto/prediction.proto (src/gen, @bufbuild/protobuf: fromBinary/toJson, fromJson/toBinary). A gRPC request
// becomes exactly the object a REST caller would have posted for the same message, so both transports
// share one validator, one codec and one recommender below this file.
//
// The library's proto3 JSON mapping, with these choices on top:
//   ★ every non-oneof field of a present message is written, defaults included (alwaysEmitImplicit, like
//     MessageToDict(including_default_value_fields=True)): proto3 cannot tell 0/""/[] from "absent",
//     and the REST contract requires e.g. Tensor.shape/values and Metric.key/value to be present;
//     oneof members are written only when set (they have presence), so `strData: ""` stays visible.
//   ★ google.protobuf.Any is {"@type", "value": base64} both ways: recserve knows no packed type to
//     expand (the library's mapping needs the type in a registry), and pass-through echoes it as it came.
//   ★ float (32-bit) → the shortest decimal that round-trips as float32 (0.3f → 0.3, not 0.30000001…).
//   ★ a google.protobuf.Value with no kind set reads as null (as Python's json_format reads it).
// Encoding back ignores keys the proto does not have (as Seldon's json_to_seldon_model_metadata does),
// and is strict about values of the wrong type; an answer is first read as it is, and if the library
// refuses it, as its JSON text has it (see asJsonText). Answers
// are written by the direct writer (wire.ts) where it can, to the same bytes.
import {
  create,
  createRegistry,
  fromBinary,
  fromJson,
  ScalarType,
  toBinary,
  toJson,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescService,
  type Message,
} from '@bufbuild/protobuf';
import { AnySchema, NullValue, type Any, type Value } from '@bufbuild/protobuf/wkt';
import { file_prediction } from '../../gen/prediction_pb.js';
import type { JsonValue } from './messages.js';
import { Refused, writeJson } from './wire.js';

export type JsonObject = { [k: string]: JsonValue };

/** The prediction.proto types and services, from the generated code. */
export interface SeldonProtos {
  /** prediction.proto and every file it imports, dependencies first. */
  files: DescFile[];
  type(name: string): DescMessage;
  services: DescService[];
}

let cached: SeldonProtos | null = null;

export function seldonProtos(): SeldonProtos {
  if (cached) return cached;
  const files = withDependencies(file_prediction);
  const registry = createRegistry(...files);
  cached = {
    files,
    services: file_prediction.services,
    type(name) {
      const t = registry.getMessage(name);
      if (!t) throw new Error(`no message type ${name} in prediction.proto or its imports`);
      return t;
    },
  };
  return cached;
}

/** `file` and everything it imports, each once, every file after its dependencies. */
export function withDependencies(...roots: DescFile[]): DescFile[] {
  const out: DescFile[] = [];
  const seen = new Set<string>();
  const add = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    f.dependencies.forEach(add);
    out.push(f);
  };
  roots.forEach(add);
  return out;
}

const JSON_WRITE = { alwaysEmitImplicit: true } as const;
const JSON_READ = { ignoreUnknownFields: true } as const;
// Unknown fields are dropped: the JSON form has no place for them, and keeping them costs memory.
const BINARY_READ = { readUnknownFields: false } as const;

// ---- which fields need more than the library's mapping ----------------------------------------

const ANY = 'google.protobuf.Any';
const VALUE = 'google.protobuf.Value';

/** Fields of a message that hold (or lead to) an Any, and for reading also floats. */
interface Special {
  read: DescField[];
  write: DescField[];
}
const specials = new WeakMap<DescMessage, Special>();

function specialOf(desc: DescMessage, visiting = new Set<DescMessage>()): Special {
  const known = specials.get(desc);
  if (known) return known;
  // A type met again on its own path adds nothing new (Value ⇄ Struct/ListValue hold neither).
  if (visiting.has(desc)) return { read: [], write: [] };
  visiting.add(desc);
  const s: Special = { read: [], write: [] };
  for (const f of desc.fields) {
    const sub = messageOf(f);
    if (sub) {
      const inner = sub.typeName === ANY ? null : specialOf(sub, visiting);
      if (!inner || inner.read.length) s.read.push(f);
      if (!inner || inner.write.length) s.write.push(f);
    } else if (scalarOf(f) === ScalarType.FLOAT) {
      s.read.push(f);
    }
  }
  visiting.delete(desc);
  specials.set(desc, s);
  return s;
}

function messageOf(f: DescField): DescMessage | undefined {
  if (f.fieldKind === 'message') return f.message;
  if (f.fieldKind === 'list' && f.listKind === 'message') return f.message;
  if (f.fieldKind === 'map' && f.mapKind === 'message') return f.message;
  return undefined;
}

function scalarOf(f: DescField): ScalarType | undefined {
  if (f.fieldKind === 'scalar') return f.scalar;
  if (f.fieldKind === 'list' && f.listKind === 'scalar') return f.scalar;
  return undefined;
}

type Fields = Record<string, unknown>;

/** The field's value on a message, undefined when a oneof member or a message field is not set. */
function getField(msg: Fields, f: DescField): unknown {
  if (f.oneof) {
    const o = msg[f.oneof.localName] as { case?: string; value?: unknown };
    return o.case === f.localName ? o.value : undefined;
  }
  return msg[f.localName];
}

function setField(msg: Fields, f: DescField, value: unknown): void {
  if (f.oneof) msg[f.oneof.localName] = value === undefined ? { case: undefined } : { case: f.localName, value };
  else msg[f.localName] = value;
}

// ---- bytes → JSON form ------------------------------------------------------------------------

/** Decodes one message and converts it to its JSON form; throws on malformed bytes. */
export function decodeToJson(desc: DescMessage, bytes: Uint8Array): JsonObject {
  try {
    return messageToJson(desc, fromBinary(desc, bytes, BINARY_READ));
  } catch (e) {
    // Rare: a Value with no kind (the library refuses it); read it as null, as the JSON form has it.
    // Decoded again: the first conversion took fields out of the message it was given.
    if (!(e instanceof Error && /must have a value/.test(e.message))) throw e;
    const msg = fromBinary(desc, bytes, BINARY_READ);
    fillEmptyValues(desc, msg as unknown as Fields);
    return messageToJson(desc, msg);
  }
}

function messageToJson(desc: DescMessage, msg: Message): JsonObject {
  const special = specialOf(desc).read;
  if (special.length === 0) return toJson(desc, msg, JSON_WRITE) as JsonObject;
  // The library writes the rest; the special fields are taken out first and written here.
  const fields = msg as unknown as Fields;
  const taken = new Map<DescField, unknown>();
  for (const f of special) {
    const v = getField(fields, f);
    taken.set(f, v);
    if (messageOf(f) && v !== undefined) setField(fields, f, f.fieldKind === 'list' ? [] : f.fieldKind === 'map' ? {} : undefined);
  }
  const out = toJson(desc, msg, JSON_WRITE) as JsonObject;
  for (const [f, v] of taken) if (v !== undefined) out[f.jsonName] = specialToJson(f, v);
  return out;
}

function specialToJson(f: DescField, v: unknown): JsonValue {
  const sub = messageOf(f);
  if (!sub) return f.fieldKind === 'list' ? (v as number[]).map(shortestFloat32) : shortestFloat32(v as number);
  const one = (m: Message): JsonValue => (sub.typeName === ANY ? anyToJson(m as Any) : messageToJson(sub, m));
  if (f.fieldKind === 'list') return (v as Message[]).map(one);
  if (f.fieldKind === 'map') return Object.fromEntries(Object.entries(v as Record<string, Message>).map(([k, m]) => [k, one(m)]));
  return one(v as Message);
}

function anyToJson(a: Any): JsonObject {
  return { '@type': a.typeUrl, value: Buffer.from(a.value.buffer, a.value.byteOffset, a.value.byteLength).toString('base64') };
}

/** Sets every Value with no kind, anywhere in the message, to the null value. */
function fillEmptyValues(desc: DescMessage, msg: Fields): void {
  if (desc.typeName === VALUE) {
    const v = msg as unknown as Value;
    if (v.kind.case === undefined) v.kind = { case: 'nullValue', value: NullValue.NULL_VALUE };
  }
  for (const f of desc.fields) {
    const sub = messageOf(f);
    const v = getField(msg, f);
    if (!sub || v === undefined) continue;
    const each = f.fieldKind === 'list' ? (v as Fields[]) : f.fieldKind === 'map' ? Object.values(v as Record<string, Fields>) : [v as Fields];
    for (const m of each) fillEmptyValues(sub, m);
  }
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
 * (wire.ts) writes the same bytes as the library path without the message tree in between; what it
 * refuses, the library path writes or refuses with an error naming the field.
 */
export function encodeFromJson(desc: DescMessage, json: unknown): Uint8Array {
  try {
    return writeJson(desc, json);
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
  }
  return encodeWithLibrary(desc, json);
}

/** The library path: the JSON form → a message (fromJson) → bytes (toBinary). */
export function encodeWithLibrary(desc: DescMessage, json: unknown): Uint8Array {
  return toBinary(desc, messageFromJson(desc, json, desc.name));
}

/** The JSON form as a message of `desc`; throws naming the field that is wrong. */
export function messageFromJson(desc: DescMessage, json: unknown, at: string): Message {
  const special = specialOf(desc).write;
  if (special.length === 0) return libraryFromJson(desc, json);
  const src = expectObject(json, at);
  const rest: Record<string, unknown> = { ...src };
  for (const f of special) {
    delete rest[f.jsonName];
    delete rest[f.name];
  }
  const msg = libraryFromJson(desc, rest);
  for (const f of special) {
    const v = f.jsonName in src ? src[f.jsonName] : src[f.name];
    // JSON null means "absent" for a message field.
    if (v === undefined || v === null) continue;
    setField(msg as unknown as Fields, f, specialFromJson(f, v, `${at}.${f.jsonName}`));
  }
  return msg;
}

function libraryFromJson(desc: DescMessage, json: unknown): Message {
  try {
    return fromJson(desc, json as never, JSON_READ);
  } catch (e) {
    // The data plane's objects may hold what its REST answer would write differently as JSON text;
    // read them as that text has them, and refuse only what still does not fit.
    return fromJson(desc, asJsonText(json) as never, JSON_READ);
  }
}

/**
 * `v` as its JSON text would carry it: undefined members dropped (undefined list items null), text
 * well-formed (a lone surrogate becomes U+FFFD, as on the wire), and non-finite numbers as the strings
 * proto3 JSON writes them ("NaN", "Infinity", "-Infinity").
 */
function asJsonText(v: unknown): unknown {
  if (typeof v === 'string') return wellFormed(v);
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : asJsonText(x)));
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[wellFormed(k)] = asJsonText(x);
  return out;
}

/** A lone surrogate replaced by U+FFFD, as UTF-8 encoding writes it. */
function wellFormed(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

function specialFromJson(f: DescField, v: unknown, at: string): unknown {
  const sub = messageOf(f)!;
  const one = (x: unknown, where: string): Message => (sub.typeName === ANY ? anyFromJson(x, where) : messageFromJson(sub, x, where));
  if (f.fieldKind === 'list') {
    if (!Array.isArray(v)) throw new Error(`${at} must be an array, got ${typeof v}`);
    return v.map((x, i) => one(x, `${at}[${i}]`));
  }
  if (f.fieldKind === 'map') return Object.fromEntries(Object.entries(expectObject(v, at)).map(([k, x]) => [k, one(x, `${at}.${k}`)]));
  return one(v, at);
}

function anyFromJson(json: unknown, at: string): Any {
  const a = expectObject(json, at);
  return create(AnySchema, { typeUrl: String(a['@type'] ?? ''), value: Buffer.from(String(a.value ?? ''), 'base64') });
}

function expectObject(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at} must be an object`);
  return v as Record<string, unknown>;
}
