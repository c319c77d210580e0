// A direct writer from the JSON form to protobuf wire bytes, for the answers the server sends, planned
// from the generated descriptors (src/gen). It writes exactly the bytes of the library path
// (proto-json.ts: fromJson, then toBinary) without building the message tree in between, which is 2–6×
// faster on the answer shapes (bench/proto-encode.ts, docs/performance.md). It follows toBinary's layout:
// fields in field-number order; a field with implicit presence only when it is not its zero value; oneof
// members, message fields and map entries whenever set; packed lists as the descriptor says.
// It writes only what it is sure of and throws Refused for anything else, and proto-json.ts then runs the
// library path, which writes or refuses it with an error naming the field: number-like strings, unknown
// enum names, out-of-range numbers, a non-finite number in a Value, `__proto__` keys, a field given under
// both its names, two members of a oneof, google.protobuf.Any, nesting past MAX_DEPTH. Like the library
// path it drops undefined members (as the answer's JSON text does) and writes a lone surrogate as U+FFFD.
// test/grpc/wire.test.ts compares the two byte for byte on random messages.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from '@bufbuild/protobuf';

/** Thrown for an input left to the library path. It carries no location: that path names it. */
export class Refused extends Error {}
const refused = new Refused('refused by the direct writer');

/** Message levels (Values included) written directly; deeper answers take the library path. */
const MAX_DEPTH = 64;
const FLOAT32_MAX = 3.4028234663852886e38;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

const VALUE = 'google.protobuf.Value';
const STRUCT = 'google.protobuf.Struct';
const LIST = 'google.protobuf.ListValue';
const ANY = 'google.protobuf.Any';

/** Writes one element's payload (no tag); `depth` is the nesting level of the enclosing message. */
type Put = (w: FastWriter, v: unknown, depth: number) => void;
/** Is `v` the zero value, which a field with implicit presence does not write? */
type IsZero = (v: unknown) => boolean;

interface FieldPlan {
  jsonName: string;
  name: string;
  oneof: string | undefined;
  kind: 'single' | 'repeated' | 'packed' | 'map';
  /** Field tag (packed and map fields: length-delimited). */
  tag: number;
  /** Map fields: the tag of the entry's value. */
  valueTag: number;
  /** Elements are messages: length-delimited, written by `put`. */
  message: boolean;
  /** A google.protobuf.Value element: JSON null is its null value, not "absent". */
  value: boolean;
  /** Singular fields with implicit presence; null for the others. */
  isZero: IsZero | null;
  put: Put;
}

interface MessagePlan {
  fields: FieldPlan[];
  body: Put;
}

const plans = new Map<DescMessage, MessagePlan>();

/** The JSON form → protobuf bytes, as the library path writes them; throws Refused. */
export function writeJson(desc: DescMessage, json: unknown): Uint8Array {
  const w = FastWriter.shared;
  w.reset();
  plan(desc).body(w, json, 0);
  return w.finish();
}

function plan(desc: DescMessage): MessagePlan {
  const known = plans.get(desc);
  if (known) return known;
  // Registered first: message types refer to themselves (Value ⇄ Struct).
  const p: MessagePlan = { fields: [], body: refuse };
  plans.set(desc, p);
  switch (desc.typeName) {
    case VALUE:
      p.body = valueBody;
      return p;
    case STRUCT:
      p.body = structBody;
      return p;
    case LIST:
      p.body = listBody;
      return p;
    case ANY:
      return p; // rare (pass-through echoes only): left to the library path
  }
  p.fields = [...desc.fields].sort((a, b) => a.number - b.number).map(fieldPlan);
  p.body = (w, v, depth) => messageBody(w, p.fields, v, depth);
  return p;
}

function refuse(): never {
  throw refused;
}

function fieldPlan(f: DescField): FieldPlan {
  let put: Put;
  let wire: number;
  let message = false;
  let isZero: IsZero | null = null;
  let sub: DescMessage | undefined;
  let scalar: ScalarType | undefined;
  let enumDesc: DescEnum | undefined;
  if (f.fieldKind === 'message' || (f.fieldKind === 'list' && f.listKind === 'message') || (f.fieldKind === 'map' && f.mapKind === 'message')) sub = f.message;
  else if (f.fieldKind === 'enum' || (f.fieldKind === 'list' && f.listKind === 'enum') || (f.fieldKind === 'map' && f.mapKind === 'enum')) enumDesc = f.enum;
  else scalar = f.scalar;
  if (sub) {
    const p = plan(sub);
    put = (w, v, depth) => p.body(w, v, depth + 1);
    wire = 2;
    message = true;
  } else if (enumDesc) {
    put = enumPut(enumDesc);
    wire = 0;
    isZero = (v) => v === enumDesc.values[0].number || v === enumDesc.values[0].name;
  } else {
    [put, wire, isZero] = scalarPut(scalar!);
  }
  if (f.fieldKind === 'map' && f.mapKey !== ScalarType.STRING) throw new Error(`wire.ts writes string-keyed maps only (${f.parent.typeName}.${f.name})`);
  const kind = f.fieldKind === 'map' ? 'map' : f.fieldKind === 'list' ? (f.packed && !message ? 'packed' : 'repeated') : 'single';
  return {
    jsonName: f.jsonName,
    name: f.name,
    oneof: f.oneof?.name,
    kind,
    tag: ((f.number << 3) | (kind === 'map' || kind === 'packed' ? 2 : wire)) >>> 0,
    valueTag: 16 | wire,
    message,
    value: sub?.typeName === VALUE,
    // Oneof members have presence: written even when zero.
    isZero: kind === 'single' && !f.oneof && !message ? isZero : null,
    put,
  };
}

function enumPut(e: DescEnum): Put {
  const numbers = new Map(e.values.map((v) => [v.name, v.number]));
  return (w, v) => {
    if (typeof v === 'string') {
      const n = numbers.get(v);
      if (n === undefined) throw refused;
      w.int32(n);
    } else if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) w.int32(v);
    else throw refused;
  };
}

/** The payload writer, wire type and zero test of a scalar type. */
function scalarPut(t: ScalarType): [Put, number, IsZero] {
  const isZeroNumber: IsZero = (v) => v === 0 && !Object.is(v, -0);
  switch (t) {
    case ScalarType.STRING:
      return [(w, v) => (typeof v === 'string' ? w.string(v) : refuse()), 2, (v) => v === ''];
    case ScalarType.BYTES:
      return [(w, v) => (typeof v === 'string' && BASE64.test(v) ? w.bytes(Buffer.from(v, 'base64')) : refuse()), 2, (v) => v === ''];
    case ScalarType.BOOL:
      return [(w, v) => (typeof v === 'boolean' ? w.bool(v) : refuse()), 0, (v) => v === false];
    // Non-finite numbers are written as they are (the library reads them from "NaN", "Infinity").
    case ScalarType.DOUBLE:
      return [(w, v) => w.double(number(v)), 1, isZeroNumber];
    case ScalarType.FLOAT:
      return [(w, v) => w.float(float32(v)), 5, isZeroNumber];
    case ScalarType.INT32:
      return [(w, v) => w.int32(int(v, -(2 ** 31), 2 ** 31 - 1)), 0, (v) => v === 0];
    case ScalarType.SINT32:
      return [(w, v) => w.sint32(int(v, -(2 ** 31), 2 ** 31 - 1)), 0, (v) => v === 0];
    case ScalarType.SFIXED32:
      return [(w, v) => w.fixed32(int(v, -(2 ** 31), 2 ** 31 - 1)), 5, (v) => v === 0];
    case ScalarType.UINT32:
      return [(w, v) => w.uint32(int(v, 0, 2 ** 32 - 1)), 0, (v) => v === 0];
    case ScalarType.FIXED32:
      return [(w, v) => w.fixed32(int(v, 0, 2 ** 32 - 1)), 5, (v) => v === 0];
    case ScalarType.INT64:
      return [(w, v) => w.varint64(long(v, INT64_MIN, INT64_MAX)), 0, isZeroLong];
    case ScalarType.UINT64:
      return [(w, v) => w.varint64(long(v, 0n, UINT64_MAX)), 0, isZeroLong];
    case ScalarType.SINT64:
      return [(w, v) => w.varint64(zigzag64(long(v, INT64_MIN, INT64_MAX))), 0, isZeroLong];
    case ScalarType.FIXED64:
      return [(w, v) => w.fixed64(long(v, 0n, UINT64_MAX)), 1, isZeroLong];
    case ScalarType.SFIXED64:
      return [(w, v) => w.fixed64(long(v, INT64_MIN, INT64_MAX)), 1, isZeroLong];
  }
}

/** Padded standard base64, which both Buffer and the library read the same way. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function finite(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw refused;
  return v;
}

function number(v: unknown): number {
  if (typeof v !== 'number') throw refused;
  return v;
}

function float32(v: unknown): number {
  const x = number(v);
  if (Number.isFinite(x) && Math.abs(x) > FLOAT32_MAX) throw refused;
  return x;
}

function int(v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw refused;
  return v;
}

function long(v: unknown, min: bigint, max: bigint): bigint {
  let x: bigint;
  if (typeof v === 'number' && Number.isSafeInteger(v)) x = BigInt(v);
  else if (typeof v === 'string' && /^-?[0-9]{1,20}$/.test(v)) x = BigInt(v);
  else throw refused;
  if (x < min || x > max) throw refused;
  return x;
}

function isZeroLong(v: unknown): boolean {
  return v === 0 || v === '0' || v === '-0';
}

function zigzag64(x: bigint): bigint {
  return BigInt.asUintN(64, (x << 1n) ^ (x >> 63n));
}

function messageBody(w: FastWriter, fields: FieldPlan[], json: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw refused;
  const src = expectObject(json);
  let oneofSeen: string[] | undefined;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const byJson = f.jsonName in src;
    const byName = f.name !== f.jsonName && f.name in src;
    if (byJson && byName) throw refused;
    const v = byJson ? src[f.jsonName] : byName ? src[f.name] : undefined;
    // undefined is absent, as in the answer's JSON text.
    if (v === undefined) continue;
    if (v === null && !(f.value && f.kind === 'single')) {
      // null is absent for a scalar or an ordinary message, but a message oneof member is left to the library.
      if (f.oneof && f.message) throw refused;
      continue;
    }
    if (f.oneof) {
      if (oneofSeen?.includes(f.oneof)) throw refused;
      (oneofSeen ??= []).push(f.oneof);
    }
    switch (f.kind) {
      case 'single':
        if (!f.isZero?.(v)) putOne(w, f, f.tag, v, depth);
        break;
      case 'repeated':
        if (!Array.isArray(v)) throw refused;
        for (let j = 0; j < v.length; j++) {
          if (v[j] === null && !f.value) throw refused;
          putOne(w, f, f.tag, v[j], depth);
        }
        break;
      case 'packed':
        if (!Array.isArray(v)) throw refused;
        if (v.length === 0) break;
        w.uint32(f.tag).fork();
        for (let j = 0; j < v.length; j++) f.put(w, v[j], depth);
        w.ldelim();
        break;
      case 'map': {
        const obj = expectObject(v);
        const keys = Object.keys(obj);
        for (let j = 0; j < keys.length; j++) {
          const k = keys[j];
          const x = obj[k];
          if (k === '__proto__' || x === undefined || (x === null && !f.value)) throw refused;
          w.uint32(f.tag).fork().uint32(10).string(k);
          putOne(w, f, f.valueTag, x, depth);
          w.ldelim();
        }
        break;
      }
    }
  }
}

function putOne(w: FastWriter, f: FieldPlan, tag: number, v: unknown, depth: number): void {
  w.uint32(tag);
  if (f.message) {
    w.fork();
    f.put(w, v, depth);
    w.ldelim();
  } else {
    f.put(w, v, depth);
  }
}

// google.protobuf.Value: null_value = 1 (enum), number_value = 2, string_value = 3, bool_value = 4,
// struct_value = 5, list_value = 6. Struct: map<string, Value> fields = 1. ListValue: repeated Value values = 1.

function valueBody(w: FastWriter, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw refused;
  switch (typeof v) {
    case 'number':
      w.uint32(17).double(finite(v));
      return;
    case 'string':
      w.uint32(26).string(v);
      return;
    case 'boolean':
      w.uint32(32).bool(v);
      return;
    case 'object':
      if (v === null) w.uint32(8).int32(0);
      else if (Array.isArray(v)) {
        w.uint32(50).fork();
        listBody(w, v, depth + 1);
        w.ldelim();
      } else {
        w.uint32(42).fork();
        structBody(w, v, depth + 1);
        w.ldelim();
      }
      return;
    default:
      throw refused;
  }
}

function listBody(w: FastWriter, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH || !Array.isArray(v)) throw refused;
  for (let i = 0; i < v.length; i++) {
    w.uint32(10).fork();
    valueBody(w, v[i], depth + 1);
    w.ldelim();
  }
}

function structBody(w: FastWriter, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw refused;
  const o = expectObject(v);
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const x = o[k];
    // An undefined member is not in the answer's JSON text.
    if (x === undefined) continue;
    if (k === '__proto__') throw refused;
    w.uint32(10).fork().uint32(10).string(k).uint32(18).fork();
    valueBody(w, x, depth + 1);
    w.ldelim().ldelim();
  }
}

function expectObject(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw refused;
  return v as Record<string, unknown>;
}

// ---- the writer ---------------------------------------------------------------------------------

/**
 * Values go straight into one scratch buffer, reused from answer to answer. A length-delimited part
 * reserves one byte for its length and, when the length needs more (128 bytes and up), moves its body
 * right by the difference. finish() copies the bytes out into a Buffer of their own.
 */
class FastWriter {
  static readonly shared = new FastWriter();
  private buf = Buffer.allocUnsafe(16 * 1024);
  private pos = 0;
  /** Where each open fork's reserved length byte is. */
  private forks: number[] = [];

  reset(): void {
    this.pos = 0;
    this.forks.length = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    // Do not keep a huge answer's scratch space alive.
    if (this.buf.length > 1 << 20) this.buf = Buffer.allocUnsafe(16 * 1024);
    return out;
  }

  uint32(value: number): this {
    let v = value >>> 0;
    this.ensure(5);
    const buf = this.buf;
    let pos = this.pos;
    while (v > 127) {
      buf[pos++] = (v & 127) | 128;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
    return this;
  }

  /** A negative int32 is sign-extended to ten bytes, as every protobuf writer does. */
  int32(value: number): this {
    return value < 0 ? this.varint64(BigInt(value)) : this.uint32(value);
  }

  sint32(value: number): this {
    return this.uint32(((value << 1) ^ (value >> 31)) >>> 0);
  }

  fixed32(value: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  float(value: number): this {
    this.ensure(4);
    this.buf.writeFloatLE(value, this.pos);
    this.pos += 4;
    return this;
  }

  double(value: number): this {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
    return this;
  }

  bool(value: boolean): this {
    this.ensure(1);
    this.buf[this.pos++] = value ? 1 : 0;
    return this;
  }

  varint64(value: bigint): this {
    let v = BigInt.asUintN(64, value);
    this.ensure(10);
    while (v > 127n) {
      this.buf[this.pos++] = Number(v & 127n) | 128;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  fixed64(value: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, value), this.pos);
    this.pos += 8;
    return this;
  }

  /** UTF-8; a lone surrogate becomes U+FFFD, as TextEncoder (the library's encoder) writes it. */
  string(value: string): this {
    // Short strings (most keys and ids) are encoded here: a native write costs more than the copy.
    // At most 3 bytes per UTF-16 unit, so their length fits the one reserved byte.
    if (value.length <= 42) {
      this.ensure(1 + 3 * value.length);
      const buf = this.buf;
      const at = this.pos;
      let pos = at + 1;
      for (let i = 0; i < value.length; i++) {
        let c = value.charCodeAt(i);
        if (c < 0x80) buf[pos++] = c;
        else if (c < 0x800) {
          buf[pos++] = 0xc0 | (c >> 6);
          buf[pos++] = 0x80 | (c & 63);
        } else {
          if (c >= 0xd800 && c <= 0xdfff) {
            const next = value.charCodeAt(i + 1);
            if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
              c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
              i++;
              buf[pos++] = 0xf0 | (c >> 18);
              buf[pos++] = 0x80 | ((c >> 12) & 63);
              buf[pos++] = 0x80 | ((c >> 6) & 63);
              buf[pos++] = 0x80 | (c & 63);
              continue;
            }
            c = 0xfffd; // a lone surrogate
          }
          buf[pos++] = 0xe0 | (c >> 12);
          buf[pos++] = 0x80 | ((c >> 6) & 63);
          buf[pos++] = 0x80 | (c & 63);
        }
      }
      buf[at] = pos - at - 1;
      this.pos = pos;
      return this;
    }
    const len = Buffer.byteLength(value);
    this.uint32(len);
    this.ensure(len);
    this.buf.write(value, this.pos, len, 'utf8');
    this.pos += len;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.uint32(value.length);
    if (value.length) {
      this.ensure(value.length);
      this.buf.set(value, this.pos);
      this.pos += value.length;
    }
    return this;
  }

  fork(): this {
    this.ensure(1);
    this.forks.push(this.pos);
    this.pos += 1;
    return this;
  }

  ldelim(): this {
    const at = this.forks.pop()!;
    const start = at + 1;
    const len = this.pos - start;
    if (len < 128) {
      this.buf[at] = len;
      return this;
    }
    let size = 1;
    for (let v = len >>> 7; v > 0; v >>>= 7) size++;
    this.ensure(size - 1);
    const buf = this.buf;
    buf.copyWithin(at + size, start, this.pos);
    this.pos += size - 1;
    let v = len;
    let p = at;
    while (v > 127) {
      buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    buf[p] = v;
    return this;
  }
}
