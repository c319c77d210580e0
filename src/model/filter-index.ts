// Catalog filters from a per-model inverted index, built once when the model loads: field →
// normalised value → ascending item-index list (one CSR table per field, so a field of unique titles
// costs two integers per item, not one array object per value). A filter's mask is then built in
// O(values + Σ matching items) instead of matching every catalog row against every value, which is
// what let a 10,001-value filter block the event loop for seconds.
//
// Matching: strings compare after trim() + NFC + toLowerCase() (so {"genre": "comedy"} finds
// "Comedy"); numbers and booleans match their decimal/`true`/`false` text (1988 and "1988" are the same
// value); a list-valued catalog field matches if any member does. Other values (null, objects) are
// not indexed and match nothing. Field names are exact.
//
// A field's value may also be a condition object, {eq, in, not, gte, gt, lte, lt}, whose operators
// all must hold: eq / in as above; `not` excludes an item when any member equals one of its values
// (items without the field pass it); a range holds when some member is a number (or a string that
// reads as a decimal number) within every bound given. Ranges come from a per-field index of the
// numeric members sorted by value, built with the rest: O(log n + matches) per range.
//
// Masks are cached per model by the normalised filter (fields and values sorted), bounded by bytes
// (config.limits.filterCacheBytes); a filter whose key is large is not cached at all (it is rebuilt
// from the index, which is cheap), so no client text can grow the cache beyond its budget.
import { badData } from '../errors.js';

export type FilterScalar = string | number | boolean;
/** All present operators must hold (AND). Ranges compare numbers (catalog numbers, or strings that parse as finite numbers). */
export interface FilterCondition {
  eq?: FilterScalar;
  in?: FilterScalar[];
  not?: FilterScalar | FilterScalar[];
  gte?: number;
  gt?: number;
  lte?: number;
  lt?: number;
}
/** A scalar or a list of scalars (any of them) keep their meaning; an object is a FilterCondition. */
export type FilterValue = FilterScalar | FilterScalar[] | FilterCondition;

/** Items a filter allows: a mask over the catalog (for the scorer) and the same set as a sorted list. */
export interface AllowedItems {
  /** 1 where the item may be returned. */
  readonly mask: Uint8Array;
  /** Allowed item indices, ascending. */
  readonly items: Int32Array;
  /** items.length: 0 means nothing matches the filter. */
  readonly allowedCount: number;
}

/** The value text filters and catalog values are compared by; null when the value is not matchable. */
export function normaliseFilterValue(v: unknown): string | null {
  if (typeof v === 'string') return v.trim().normalize('NFC').toLowerCase();
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : null;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return null;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The number a catalog member stands for in a range: a finite number, or a string holding a decimal number. */
export function numericFilterValue(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v !== 'string' || !DECIMAL.test(v.trim())) return null;
  const x = Number(v.trim());
  return Number.isFinite(x) ? x : null;
}

/** Filter keys longer than this are not cached (recomputed from the index instead). */
export const MAX_CACHED_FILTER_KEY = 4096;

export const FILTER_OPERATORS = ['eq', 'in', 'not', 'gte', 'gt', 'lte', 'lt'] as const;

interface FieldIndex {
  /** Normalised value → posting id. */
  values: Map<string, number>;
  /** Postings of id p: items[starts[p] .. starts[p + 1]), ascending. */
  starts: Int32Array;
  items: Int32Array;
  /** The field's numeric members ascending, numberItems[j] the item of numbers[j] (an item once per member). */
  numbers: Float64Array;
  numberItems: Int32Array;
}

/** [low, low is strict, high, high is strict]: the intersection of a condition's bounds. */
type Range = [number, boolean, number, boolean];

/** One field's entry, normalised: the cache key and the mask are both made from it. */
interface FieldSpec {
  /** Each list: sorted distinct values, some member must equal one of them. */
  anyOf: string[][];
  /** Sorted distinct values no member may equal. */
  none: string[];
  range: Range | null;
}

const clipText = (s: string, n = 80) => (s.length > n ? `${s.slice(0, n)}…` : s);

const isScalar = (v: unknown): v is FilterScalar => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** Distinct normalised values, sorted; unmatchable ones (null, objects) are dropped as they match nothing. */
function valueSet(values: unknown[]): string[] {
  const out = new Set<string>();
  for (const w of values) {
    const v = normaliseFilterValue(w);
    if (v !== null) out.add(v);
  }
  return [...out].sort();
}

/** A condition object as a FieldSpec; badData names the field and what is wrong. */
function conditionSpec(name: string, cond: Record<string, unknown>): FieldSpec {
  const where = `filter.${clipText(name)}`;
  const ops = Object.keys(cond);
  if (ops.length === 0) throw badData(`${where}: an empty condition; give one of ${FILTER_OPERATORS.join(', ')}`);
  const spec: FieldSpec = { anyOf: [], none: [], range: null };
  let lo = -Infinity;
  let loStrict = false;
  let hi = Infinity;
  let hiStrict = false;
  const bound = (op: string): number => {
    const b = cond[op];
    if (typeof b !== 'number' || !Number.isFinite(b)) throw badData(`${where}.${op} must be a finite number, got ${clipText(JSON.stringify(b) ?? String(b))}`);
    return b;
  };
  const scalars = (op: string, list: unknown[]): unknown[] => {
    for (const v of list) if (!isScalar(v)) throw badData(`${where}.${op}: values must be strings, numbers or booleans, got ${clipText(JSON.stringify(v) ?? String(v))}`);
    return list;
  };
  for (const op of ops) {
    const v = cond[op];
    switch (op) {
      case 'eq':
        spec.anyOf.push(valueSet(scalars(op, [v])));
        break;
      case 'in':
        if (!Array.isArray(v) || v.length === 0) throw badData(`${where}.in must be a non-empty list of values`);
        spec.anyOf.push(valueSet(scalars(op, v)));
        break;
      case 'not':
        spec.none = valueSet(scalars(op, Array.isArray(v) ? v : [v]));
        break;
      case 'gte':
      case 'gt': {
        const b = bound(op);
        if (b > lo || (b === lo && op === 'gt')) [lo, loStrict] = [b, op === 'gt'];
        break;
      }
      case 'lte':
      case 'lt': {
        const b = bound(op);
        if (b < hi || (b === hi && op === 'lt')) [hi, hiStrict] = [b, op === 'lt'];
        break;
      }
      default:
        throw badData(`${where}: unknown operator "${clipText(op)}" (operators: ${FILTER_OPERATORS.join(', ')})`);
    }
  }
  if (lo !== -Infinity || hi !== Infinity) spec.range = [lo, loStrict, hi, hiStrict];
  return spec;
}

/** One field's filter value (scalar, list or condition) as a FieldSpec. */
function fieldSpec(name: string, want: unknown): FieldSpec {
  return typeof want === 'object' && want !== null && !Array.isArray(want)
    ? conditionSpec(name, want as Record<string, unknown>)
    : { anyOf: [valueSet(Array.isArray(want) ? want : [want])], none: [], range: null };
}

/** Whether a catalog value holds the spec: the index's semantics, tested on one row's members. */
function holds(raw: unknown, spec: FieldSpec): boolean {
  const members = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const texts = members.map(normaliseFilterValue);
  if (spec.none.length > 0 && texts.some((v) => v !== null && spec.none.includes(v))) return false;
  if (!spec.anyOf.every((values) => texts.some((v) => v !== null && values.includes(v)))) return false;
  if (spec.range === null) return true;
  const [lo, loStrict, hi, hiStrict] = spec.range;
  return members.some((m) => {
    const x = numericFilterValue(m);
    return x !== null && (loStrict ? x > lo : x >= lo) && (hiStrict ? x < hi : x <= hi);
  });
}

/** First j with a[j] > x (strict) or a[j] >= x. */
function lowerBound(a: Float64Array, x: number, strict: boolean): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (strict ? a[mid] <= x : a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class FilterIndex {
  private readonly fields = new Map<string, FieldIndex>();
  private readonly cache = new Map<string, { allowed: AllowedItems; bytes: number }>();
  private cacheBytes = 0;
  private readonly n: number;

  constructor(
    private readonly catalog: Record<string, unknown>[],
    /** Byte budget of the mask cache (masks, item lists and keys). */
    private readonly cacheBudget: number,
  ) {
    this.n = catalog.length;
    // Pass 1: posting ids and occurrence counts per field (a row counts once per distinct value), and
    // the numeric members.
    type Building = { values: Map<string, number>; counts: number[]; last: number[]; occ: number[]; numbers: number[]; numberItems: number[] };
    const building = new Map<string, Building>();
    for (let i = 0; i < catalog.length; i++) {
      const row = catalog[i];
      for (const field of Object.keys(row)) {
        let b = building.get(field);
        if (!b) building.set(field, (b = { values: new Map(), counts: [], last: [], occ: [], numbers: [], numberItems: [] }));
        const raw = row[field];
        const members = Array.isArray(raw) ? raw : [raw];
        for (const m of members) {
          const x = numericFilterValue(m);
          if (x !== null) {
            b.numbers.push(x);
            b.numberItems.push(i);
          }
          const v = normaliseFilterValue(m);
          if (v === null) continue;
          let p = b.values.get(v);
          if (p === undefined) {
            p = b.counts.length;
            b.values.set(v, p);
            b.counts.push(0);
            b.last.push(-1);
          }
          if (b.last[p] === i) continue; // ["a", "A"] lists the row once
          b.last[p] = i;
          b.counts[p]++;
          b.occ.push(p, i);
        }
      }
    }
    // Pass 2: counting sort into CSR; occurrences come in row order, so each list is ascending. The
    // numeric members sorted by value.
    for (const [field, b] of building) {
      const starts = new Int32Array(b.counts.length + 1);
      for (let p = 0; p < b.counts.length; p++) starts[p + 1] = starts[p] + b.counts[p];
      const fill = starts.slice(0, b.counts.length);
      const items = new Int32Array(starts[b.counts.length]);
      for (let o = 0; o < b.occ.length; o += 2) items[fill[b.occ[o]]++] = b.occ[o + 1];
      const order = Int32Array.from(b.numbers.keys()).sort((x, y) => b.numbers[x] - b.numbers[y] || x - y);
      const numbers = Float64Array.from(order, (j) => b.numbers[j]);
      const numberItems = Int32Array.from(order, (j) => b.numberItems[j]);
      this.fields.set(field, { values: b.values, starts, items, numbers, numberItems });
    }
  }

  /** Catalog field names (the ones a filter may use). */
  fieldNames(): string[] {
    return [...this.fields.keys()];
  }

  /** Bytes the mask cache holds now. */
  get cachedBytes(): number {
    return this.cacheBytes;
  }

  /**
   * Items matching every filter entry: a value or list of values (any of them), or a condition
   * object whose operators all hold. A malformed condition is badData.
   */
  allowed(filter: Record<string, FilterValue>): AllowedItems {
    // Normalise first (O(values)): the key and the lookups share it.
    const entries: [FieldIndex, string, FieldSpec][] = [];
    for (const name of Object.keys(filter).sort()) {
      const field = this.fields.get(name);
      if (!field) {
        const known = this.fieldNames();
        const listed = known.slice(0, 20).join(', ') + (known.length > 20 ? `, … (${known.length} fields)` : '');
        throw badData(`filter: unknown catalog field "${clipText(name)}" (fields: ${listed})`);
      }
      entries.push([field, name, fieldSpec(name, filter[name])]);
    }
    let keyLength = 0;
    for (const [, name, spec] of entries) {
      keyLength += name.length + 48;
      for (const values of [...spec.anyOf, spec.none]) for (const v of values) keyLength += v.length + 3;
    }
    const key = keyLength <= MAX_CACHED_FILTER_KEY ? JSON.stringify(entries.map(([, name, spec]) => [name, spec.anyOf, spec.none, spec.range])) : null;
    if (key !== null) {
      const hit = this.cache.get(key);
      if (hit) {
        // LRU: a hit moves to the back of the eviction order.
        this.cache.delete(key);
        this.cache.set(key, hit);
        return hit.allowed;
      }
    }
    const allowed = this.build(entries.map(([field, , spec]) => [field, spec]));
    if (key !== null) this.remember(key, allowed);
    return allowed;
  }

  /**
   * Whether single items match one field's filter value, with allowed()'s semantics, in O(the item's
   * members) per test and no catalog-sized mask: for checking a few candidates (rerank rules) where a
   * mask would cost the whole catalog. Parses the value once; a malformed one is badData.
   */
  matcher(name: string, want: FilterValue): (item: number) => boolean {
    if (!this.fields.has(name)) throw badData(`filter: unknown catalog field "${clipText(name)}"`);
    const spec = fieldSpec(name, want);
    return (item) => holds(this.catalog[item]?.[name], spec);
  }

  /** Posting lists of the values the field has; values it never takes add nothing. */
  private postings(field: FieldIndex, values: string[]): Int32Array[] {
    const lists: Int32Array[] = [];
    for (const v of values) {
      const p = field.values.get(v);
      if (p !== undefined) lists.push(field.items.subarray(field.starts[p], field.starts[p + 1]));
    }
    return lists;
  }

  /** Items whose numeric member lies in the range (an item once per such member): two binary searches. */
  private inRange(field: FieldIndex, [lo, loStrict, hi, hiStrict]: Range): Int32Array {
    const from = lowerBound(field.numbers, lo, loStrict);
    const to = lowerBound(field.numbers, hi, !hiStrict);
    return field.numberItems.subarray(from, Math.max(from, to));
  }

  /**
   * The mask from posting lists and range slices: O(Σ matching items) (plus the sort of the matches),
   * and one allocation of the mask itself. Each eq/in/value list and each range is a clause of
   * unions the item must be in; `not` lists are removed afterwards.
   */
  private build(entries: [FieldIndex, FieldSpec][]): AllowedItems {
    const n = this.n;
    const clauses: { lists: Int32Array[]; total: number }[] = [];
    const excluded: Int32Array[] = [];
    for (const [field, spec] of entries) {
      const unions = spec.anyOf.map((values) => this.postings(field, values));
      if (spec.range) unions.push([this.inRange(field, spec.range)]);
      for (const lists of unions) clauses.push({ lists, total: lists.reduce((t, l) => t + l.length, 0) });
      excluded.push(...this.postings(field, spec.none));
    }
    let mask: Uint8Array;
    let hits: number[] | null = null;
    if (clauses.length === 0) {
      // {} (or only `not`s) starts from every item.
      mask = new Uint8Array(n).fill(1);
    } else {
      // The most selective clause first: later clauses only promote items it already marked.
      clauses.sort((a, b) => a.total - b.total);
      const F = clauses.length;
      // stage[i] = how many clauses (in order) item i has matched so far; F means all of them.
      const stage = F < 255 ? new Uint8Array(n) : F < 65535 ? new Uint16Array(n) : null;
      if (stage === null) throw badData(`filter: too many conditions (${F})`);
      hits = [];
      for (let f = 0; f < F; f++) {
        for (const list of clauses[f].lists) {
          for (let j = 0; j < list.length; j++) {
            const i = list[j];
            if (stage[i] !== f) continue; // missed an earlier clause, or already counted for this one
            stage[i] = f + 1;
            if (f === F - 1) hits.push(i);
          }
        }
      }
      if (stage instanceof Uint8Array) {
        // Every touched item is in the first clause's lists: clear the partial matches from those.
        for (const list of clauses[0].lists) for (let j = 0; j < list.length; j++) if (stage[list[j]] !== F) stage[list[j]] = 0;
        for (const i of hits) stage[i] = 1;
        mask = stage;
      } else {
        mask = new Uint8Array(n);
        for (const i of hits) mask[i] = 1;
      }
    }
    for (const list of excluded) for (let j = 0; j < list.length; j++) mask[list[j]] = 0;
    let items: Int32Array;
    if (hits === null) {
      const all: number[] = [];
      for (let i = 0; i < n; i++) if (mask[i] === 1) all.push(i);
      items = Int32Array.from(all);
    } else {
      items = Int32Array.from(excluded.length > 0 ? hits.filter((i) => mask[i] === 1) : hits).sort();
    }
    return { mask, items, allowedCount: items.length };
  }

  private remember(key: string, allowed: AllowedItems): void {
    const bytes = allowed.mask.byteLength + allowed.items.byteLength + 2 * key.length + 64;
    if (bytes > this.cacheBudget) return;
    while (this.cacheBytes + bytes > this.cacheBudget && this.cache.size > 0) {
      const [oldest, entry] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      this.cacheBytes -= entry.bytes;
    }
    this.cache.set(key, { allowed, bytes });
    this.cacheBytes += bytes;
  }
}
