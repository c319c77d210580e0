// A direct writer from the JSON form (src/protocol/seldon.ts) to protobuf wire bytes, for the answers
// the server sends. It produces exactly the bytes of convert.ts' reference path
// (`type.encode(type.fromObject(jsonToProtoObject(json)))`) without building the two intermediate object
// trees, and it refuses (throws) exactly the inputs that path refuses:
//   - fields are written in field-number order, each one that is present in the JSON (defaults included),
//     looked up by its lowerCamelCase name, else its snake_case name; `undefined` is absent, and `null` is
//     absent except for a singular google.protobuf.Value field (the null value) or a map field of Values;
//   - scalars are checked as the reference checks them, then converted as protobufjs' fromObject converts
//     them (int32 `|0`, uint32 `>>>0`, 64-bit through Long, bytes from base64);
//   - google.protobuf.Value / Struct / ListValue from plain JSON, as in convert.ts (a message holding an
//     Any is refused, and so written by the reference path);
//   - the nesting limit of protobufjs' encoder (util.recursionLimit message levels).
// test/grpc/wire.test.ts compares the two byte for byte on random messages.
import protobuf from 'protobufjs';

const { util } = protobuf;
type W = FastWriter;
/** protobufjs' Long (the `long` package), if it found one; fromObject converts 64-bit fields with it. */
const Long = util.Long as unknown as { fromValue(v: string | number, unsigned?: boolean): protobuf.Long } | undefined;

const VALUE = '.google.protobuf.Value';
const STRUCT = '.google.protobuf.Struct';
const LIST = '.google.protobuf.ListValue';
const ANY = '.google.protobuf.Any';

/** protobufjs' wire type of each scalar (types.basic). */
const WIRE: Record<string, number> = {
  double: 1, float: 5, int32: 0, uint32: 0, sint32: 0, fixed32: 5, sfixed32: 5,
  int64: 0, uint64: 0, sint64: 0, fixed64: 1, sfixed64: 1, bool: 0, string: 2, bytes: 2,
};
/** Scalars that are written packed when the field is packed (types.packed). */
const PACKABLE = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64', 'bool']);

/**
 * Thrown for any input the reference path would refuse. It carries no location: convert.ts then runs the
 * reference path, which throws its own error naming where the value is wrong (refusals are rare).
 */
export class Refused extends Error {}
const refused = new Refused('refused by the direct writer');

/** Writes one element's payload (no tag). `depth` is the nesting level of the enclosing message. */
type Put = (w: W, v: unknown, depth: number) => void;

interface FieldPlan {
  name: string;
  alt: string;
  /** null is "absent" for this field (the reference's rule). */
  nullSkips: boolean;
  kind: 'map' | 'packed' | 'repeated' | 'single';
  /** Tag of the field (for packed and map fields: length-delimited). */
  tag: number;
  /** Map fields: the tag of the entry's value. */
  valueTag: number;
  /** A message element: its payload is length-delimited and written by `body`. */
  message: boolean;
  put: Put;
}

interface MessagePlan {
  fields: FieldPlan[];
  /** The type's own payload writer (WKTs have their own). */
  body: Put;
}

const plans = new Map<protobuf.Type, MessagePlan | null>();

/** Can `type` be written here? (Maps with non-string keys are left to the reference path.) */
export function directlyWritable(type: protobuf.Type): boolean {
  return plan(type) !== null;
}

/** The JSON form → protobuf bytes, as convert.ts' reference encoder would write them; throws Refused. */
export function writeJson(type: protobuf.Type, json: unknown): Uint8Array {
  const p = plan(type);
  if (!p) throw refused;
  const w = FastWriter.shared;
  w.reset();
  p.body(w, json, 0);
  return w.finish();
}

function plan(type: protobuf.Type): MessagePlan | null {
  if (plans.has(type)) return plans.get(type)!;
  // Reserve the slot first: message types can refer to themselves.
  const p: MessagePlan = { fields: [], body: () => { throw refused; } };
  plans.set(type, p);
  switch (type.fullName) {
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
      // Left to the reference path: customData answers are rare (only pass-through transforms echo one).
      p.body = () => {
        throw refused;
      };
      return p;
  }
  const fields: FieldPlan[] = [];
  for (const f of type.fieldsArray) {
    f.resolve();
    const fp = fieldPlan(f);
    if (!fp) {
      plans.set(type, null);
      return null;
    }
    fields.push(fp);
  }
  // The reference validates in declaration order and writes in field-number order; an input it refuses
  // is refused here too, whichever field is checked first.
  p.fields = type.fieldsArray.map((f, i) => ({ id: f.id, fp: fields[i] })).sort((a, b) => a.id - b.id).map((x) => x.fp);
  p.body = (w, v, depth) => messageBody(w, p.fields, v, depth);
  return p;
}

function fieldPlan(f: protobuf.Field): FieldPlan | null {
  const rt = f.resolvedType;
  const scalar = rt instanceof protobuf.Enum ? 'int32' : f.type;
  let put: Put;
  let message = false;
  if (rt instanceof protobuf.Type) {
    const sub = plan(rt);
    if (sub === null) return null;
    message = true;
    put = (w, v, depth) => sub.body(w, v, depth + 1);
  } else if (rt instanceof protobuf.Enum) {
    const values = rt.values;
    put = (w, v) => {
      // A name the values object only inherits ("toString") is left to the reference path.
      if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(values, v)) w.int32(values[v]);
      else if (typeof v === 'number' && Number.isInteger(v)) w.int32(v);
      else throw refused;
    };
  } else {
    const s = scalarPut(f.type);
    if (!s) return null;
    put = s;
  }
  const isMap = f.map;
  if (isMap && (f as unknown as protobuf.MapField).keyType !== 'string') return null;
  if (f.delimited) return null; // groups: not in proto3
  const wire = message ? 2 : WIRE[scalar];
  if (wire === undefined) return null;
  const kind = isMap ? 'map' : f.repeated ? (f.packed && PACKABLE.has(scalar) && !message ? 'packed' : 'repeated') : 'single';
  return {
    name: f.name,
    alt: snake(f.name),
    // The reference's rule, verbatim: null is absent unless the field's (value) type is Value.
    nullSkips: f.repeated || rt?.fullName !== VALUE,
    kind,
    tag: ((f.id << 3) | (kind === 'map' || kind === 'packed' ? 2 : wire)) >>> 0,
    valueTag: 16 | wire,
    message,
    put,
  };
}

function scalarPut(type: string): Put | null {
  switch (type) {
    case 'bytes':
      return (w, v) => {
        if (typeof v !== 'string') throw refused;
        w.bytes(Buffer.from(v, 'base64'));
      };
    case 'string':
      return (w, v) => {
        if (typeof v !== 'string') throw refused;
        w.string(v);
      };
    case 'bool':
      return (w, v) => {
        if (typeof v !== 'boolean') throw refused;
        w.bool(v);
      };
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64': {
      const unsigned = type === 'uint64' || type === 'fixed64';
      const method = type as 'int64' | 'sint64' | 'sfixed64' | 'uint64' | 'fixed64';
      return (w, v) => {
        if (!((typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v)))) throw refused;
        // As fromObject converts it.
        let x: number | protobuf.Long;
        if (Long) x = Long.fromValue(v as string | number, unsigned);
        else x = typeof v === 'string' ? parseInt(v, 10) : (v as number);
        w[method](x);
      };
    }
    case 'double':
    case 'float':
      return numeric(type, (x) => x);
    case 'uint32':
    case 'fixed32':
      return numeric(type, (x) => x >>> 0);
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return numeric(type, (x) => x | 0);
    default:
      return null;
  }
}

function numeric(type: 'double' | 'float' | 'uint32' | 'fixed32' | 'int32' | 'sint32' | 'sfixed32', conv: (x: number) => number): Put {
  return (w, v) => {
    if (typeof v !== 'number') throw refused;
    w[type](conv(v));
  };
}

function messageBody(w: W, fields: FieldPlan[], json: unknown, depth: number): void {
  checkDepth(depth);
  const src = expectObject(json);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = f.name in src ? src[f.name] : src[f.alt];
    if (v === undefined) continue;
    if (v === null && f.nullSkips) continue;
    switch (f.kind) {
      case 'single':
        putOne(w, f, f.tag, v, depth);
        break;
      case 'repeated':
        if (!Array.isArray(v)) throw refused;
        for (let j = 0; j < v.length; j++) putOne(w, f, f.tag, v[j], depth);
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
          // The reference drops a "__proto__" key (assigning it sets a prototype, not an entry).
          if (k === '__proto__') continue;
          w.uint32(f.tag).fork().uint32(10).string(k);
          putOne(w, f, f.valueTag, obj[k], depth);
          w.ldelim();
        }
        break;
      }
    }
  }
}

function putOne(w: W, f: FieldPlan, tag: number, v: unknown, depth: number): void {
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

function valueBody(w: W, v: unknown, depth: number): void {
  checkDepth(depth);
  if (v === null || v === undefined) {
    w.uint32(8).int32(0);
    return;
  }
  switch (typeof v) {
    case 'number':
      w.uint32(17).double(v);
      return;
    case 'string':
      w.uint32(26).string(v);
      return;
    case 'boolean':
      w.uint32(32).bool(v);
      return;
    case 'object':
      if (Array.isArray(v)) {
        w.uint32(50).fork();
        listBody(w, v, depth + 1);
      } else {
        w.uint32(42).fork();
        structBody(w, v, depth + 1);
      }
      w.ldelim();
      return;
    default:
      throw refused;
  }
}

function listBody(w: W, v: unknown, depth: number): void {
  checkDepth(depth);
  if (!Array.isArray(v)) throw refused;
  for (let i = 0; i < v.length; i++) {
    w.uint32(10).fork();
    valueBody(w, v[i], depth + 1);
    w.ldelim();
  }
}

function structBody(w: W, v: unknown, depth: number): void {
  checkDepth(depth);
  const o = expectObject(v);
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const x = o[k];
    // The reference drops undefined members, and a "__proto__" key (it becomes a prototype, not a field).
    if (x === undefined || k === '__proto__') continue;
    w.uint32(10).fork().uint32(10).string(k).uint32(18).fork();
    valueBody(w, x, depth + 1);
    w.ldelim().ldelim();
  }
}

function checkDepth(depth: number): void {
  if (depth > util.recursionLimit) throw refused;
}

function expectObject(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw refused;
  return v as Record<string, unknown>;
}

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

// ---- the writer ---------------------------------------------------------------------------------

type LongLike = number | string | protobuf.Long;
interface Bits {
  lo: number;
  hi: number;
  zzEncode(): Bits;
}
const LongBits = (util as unknown as { LongBits: { from(v: LongLike): Bits; fromNumber(v: number): Bits } }).LongBits;
const utf8Write = (util as unknown as { utf8: { write(s: string, buf: Uint8Array, pos: number): number } }).utf8.write;

/**
 * protobufjs' BufferWriter, byte for byte, without its per-call operation list: values go straight into
 * one scratch buffer, reused from answer to answer. A length-delimited part reserves one byte for its
 * length and, when the length needs more (128 bytes and up), moves its body right by the difference.
 * finish() copies the bytes out into a Buffer of their own.
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

  int32(value: number): this {
    return value < 0 ? this.varint64(LongBits.fromNumber(value)) : this.uint32(value);
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

  sfixed32(value: number): this {
    return this.fixed32(value);
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

  uint64(value: LongLike): this {
    return this.varint64(LongBits.from(value));
  }

  int64(value: LongLike): this {
    return this.uint64(value);
  }

  sint64(value: LongLike): this {
    return this.varint64(LongBits.from(value).zzEncode());
  }

  fixed64(value: LongLike): this {
    const bits = LongBits.from(value);
    return this.fixed32(bits.lo).fixed32(bits.hi);
  }

  sfixed64(value: LongLike): this {
    return this.fixed64(value);
  }

  private varint64(bits: Bits): this {
    let lo = bits.lo;
    let hi = bits.hi;
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    while (hi) {
      buf[pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      buf[pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    buf[pos++] = lo;
    this.pos = pos;
    return this;
  }

  string(value: string): this {
    const len = value.length < 64 && isAscii(value) ? value.length : Buffer.byteLength(value);
    this.uint32(len);
    if (len) {
      this.ensure(len);
      // As BufferWriter writes it (its own encoder below 40 UTF-16 units; it differs from Buffer's on lone surrogates).
      if (value.length < 40) utf8Write(value, this.buf, this.pos);
      else this.buf.write(value, this.pos, len, 'utf8');
      this.pos += len;
    }
    return this;
  }

  bytes(value: Uint8Array): this {
    const len = value.length >>> 0;
    this.uint32(len);
    if (len) {
      this.ensure(len);
      this.buf.set(value, this.pos);
      this.pos += len;
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

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}
