// The size of a protobuf message counted on its wire bytes, before it is decoded. A decoder builds an
// object for every field it reads, and only then can the JSON-form checks refuse a list that is too
// long: 5 MB of empty `Metric` entries (2 bytes each) became 2.5 million objects, and two such calls at
// once exhausted the heap. This walk builds no object per field (the plan of each message type is built
// once, varints are read into numbers); it follows the schema into sub-messages (and map entries) and counts every field occurrence and
// every packed element, stopping at the budget.
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';

export interface WireShape {
  /** Field occurrences and packed elements (stops counting just above the budget). */
  values: number;
  /** Deepest message nesting seen (stops just above the depth budget). */
  depth: number;
  /** Offset of bytes the walk cannot read (a group, a bad wire type, a length past the end), else -1. */
  malformedAt: number;
}

const PACKABLE_WIDTH: Partial<Record<ScalarType, number>> = {
  [ScalarType.DOUBLE]: 8, [ScalarType.FIXED64]: 8, [ScalarType.SFIXED64]: 8,
  [ScalarType.FLOAT]: 4, [ScalarType.FIXED32]: 4, [ScalarType.SFIXED32]: 4,
};
const VARINT_TYPES = new Set([ScalarType.INT32, ScalarType.INT64, ScalarType.UINT32, ScalarType.UINT64, ScalarType.SINT32, ScalarType.SINT64, ScalarType.BOOL]);

/**
 * Counts `bytes` as a `type` message. Tags and lengths are read as @bufbuild/protobuf's reader reads
 * them (the low 32 bits of a varint; it refuses a tag past 32 bits, which the walk only counts), so the
 * walk sees every field the decoder sees. What the walk cannot read
 * ends it with `malformedAt` set, and the caller refuses the message: leaving it to the decoder would let
 * a group (which the decoder skips) hide millions of fields behind it.
 */
export function wireShape(type: DescMessage, bytes: Uint8Array, maxValues: number, maxDepth: number): WireShape {
  const shape: WireShape = { values: 0, depth: 0, malformedAt: -1 };
  walk(messageFields(type), bytes, 0, bytes.length, 1, shape, maxValues, maxDepth);
  return shape;
}

/** What a length-delimited field holds: a message to walk, a packed run to count, or opaque bytes. */
type Child = { walk: Fields } | { packedWidth: number } | { packedVarints: true } | null;
type Fields = (fieldNo: number) => Child;

/** No field of a scalar-valued map entry holds more fields. */
const NO_FIELDS: Fields = () => null;

/**
 * The field plan of a message type, built once per type and field (the walk runs on every gRPC call).
 * Only the schema's own field numbers are kept, so a message of made-up numbers cannot grow the cache.
 */
const plans = new WeakMap<DescMessage, Fields>();
function messageFields(type: DescMessage): Fields {
  let plan = plans.get(type);
  if (!plan) {
    const known = new Map<number, Child>();
    plan = (fieldNo) => {
      let child = known.get(fieldNo);
      if (child === undefined) {
        const field = fieldsByNumber(type).get(fieldNo);
        if (!field) return null;
        child = childOf(field);
        known.set(fieldNo, child);
      }
      return child;
    };
    plans.set(type, plan);
  }
  return plan;
}

function childOf(field: DescField): Child {
  switch (field.fieldKind) {
    case 'message':
      return { walk: messageFields(field.message) };
    // A map entry is a message {1: key, 2: value}; only a message value can hold more.
    case 'map':
      return { walk: field.mapKind === 'message' ? mapEntryFields(field.message) : NO_FIELDS };
    case 'list': {
      if (field.listKind === 'message') return { walk: messageFields(field.message) };
      if (field.listKind === 'enum') return { packedVarints: true };
      const width = PACKABLE_WIDTH[field.scalar];
      if (width) return { packedWidth: width };
      return VARINT_TYPES.has(field.scalar) ? { packedVarints: true } : null;
    }
    default:
      return null;
  }
}

const byNumber = new WeakMap<DescMessage, Map<number, DescField>>();
function fieldsByNumber(type: DescMessage): Map<number, DescField> {
  let m = byNumber.get(type);
  if (!m) byNumber.set(type, (m = new Map(type.fields.map((f) => [f.number, f]))));
  return m;
}

const entryPlans = new WeakMap<DescMessage, Fields>();
function mapEntryFields(valueType: DescMessage): Fields {
  let plan = entryPlans.get(valueType);
  if (!plan) {
    const value: Child = { walk: messageFields(valueType) };
    plan = (fieldNo) => (fieldNo === 2 ? value : null);
    entryPlans.set(valueType, plan);
  }
  return plan;
}

function walk(fields: Fields, buf: Uint8Array, start: number, end: number, depth: number, shape: WireShape, maxValues: number, maxDepth: number): boolean {
  if (depth > shape.depth) shape.depth = depth;
  if (depth > maxDepth) return false;
  let at = start;
  while (at < end) {
    const tagAt = at;
    const tag = readVarint(buf, at, end);
    if (tag < 0) return malformed(shape, tagAt);
    at = varintEnd;
    const wireType = tag & 7;
    if (++shape.values > maxValues) return false;
    if (wireType === 0) {
      if (readVarint(buf, at, end) < 0) return malformed(shape, at);
      at = varintEnd;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const len = readVarint(buf, at, end);
      if (len < 0 || varintEnd + len > end) return malformed(shape, at);
      const from = varintEnd;
      at = from + len;
      const child = fields(tag >>> 3);
      if (child === null) continue;
      if ('walk' in child) {
        if (!walk(child.walk, buf, from, at, depth + 1, shape, maxValues, maxDepth)) return false;
        continue;
      }
      // A packed run of scalars: count its elements.
      let n = 0;
      if ('packedWidth' in child) n = Math.floor(len / child.packedWidth);
      else for (let i = from; i < at; i++) if (buf[i] < 0x80) n++;
      shape.values += Math.max(0, n - 1);
      if (shape.values > maxValues) return false;
    } else return malformed(shape, tagAt); // groups (3, 4: proto2 only) and wire types 6, 7
    if (at > end) return malformed(shape, tagAt); // a fixed-width value cut short
  }
  return true;
}

function malformed(shape: WireShape, at: number): false {
  shape.malformedAt = at;
  return false;
}

/** Where the last varint read ended (set by readVarint: the walk is synchronous, so one slot serves). */
let varintEnd = 0;

/**
 * A varint at `at`, kept to its low 32 bits as an unsigned number — what the reader's uint32() returns
 * for tags and lengths (higher bits are read past and dropped); -1 when it is cut short or longer than
 * 10 bytes. Its end is left in `varintEnd`. Values of varint fields are only skipped.
 */
function readVarint(buf: Uint8Array, at: number, end: number): number {
  let value = 0;
  for (let i = 0; i < 10; i++) {
    if (at >= end) return -1;
    const b = buf[at++];
    if (i < 5) value = (value | ((b & 0x7f) << (7 * i))) >>> 0;
    if (b < 0x80) {
      varintEnd = at;
      return value;
    }
  }
  return -1;
}
