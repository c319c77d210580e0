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
// Masks are cached per model by the normalised filter (fields and values sorted), bounded by bytes
// (config.limits.filterCacheBytes); a filter whose key is large is not cached at all (it is rebuilt
// from the index, which is cheap), so no client text can grow the cache beyond its budget.
import { badData } from '../errors.js';

export type FilterValue = string | number | boolean | (string | number | boolean)[];

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

/** Filter keys longer than this are not cached (recomputed from the index instead). */
export const MAX_CACHED_FILTER_KEY = 4096;

interface FieldIndex {
  /** Normalised value → posting id. */
  values: Map<string, number>;
  /** Postings of id p: items[starts[p] .. starts[p + 1]), ascending. */
  starts: Int32Array;
  items: Int32Array;
}

const clipText = (s: string, n = 80) => (s.length > n ? `${s.slice(0, n)}…` : s);

export class FilterIndex {
  private readonly fields = new Map<string, FieldIndex>();
  private readonly cache = new Map<string, { allowed: AllowedItems; bytes: number }>();
  private cacheBytes = 0;
  private readonly n: number;

  constructor(
    catalog: Record<string, unknown>[],
    /** Byte budget of the mask cache (masks, item lists and keys). */
    private readonly cacheBudget: number,
  ) {
    this.n = catalog.length;
    // Pass 1: posting ids and occurrence counts per field (a row counts once per distinct value).
    const building = new Map<string, { values: Map<string, number>; counts: number[]; last: number[]; occ: number[] }>();
    for (let i = 0; i < catalog.length; i++) {
      const row = catalog[i];
      for (const field of Object.keys(row)) {
        let b = building.get(field);
        if (!b) building.set(field, (b = { values: new Map(), counts: [], last: [], occ: [] }));
        const raw = row[field];
        const members = Array.isArray(raw) ? raw : [raw];
        for (const m of members) {
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
    // Pass 2: counting sort into CSR; occurrences come in row order, so each list is ascending.
    for (const [field, b] of building) {
      const starts = new Int32Array(b.counts.length + 1);
      for (let p = 0; p < b.counts.length; p++) starts[p + 1] = starts[p] + b.counts[p];
      const fill = starts.slice(0, b.counts.length);
      const items = new Int32Array(starts[b.counts.length]);
      for (let o = 0; o < b.occ.length; o += 2) items[fill[b.occ[o]]++] = b.occ[o + 1];
      this.fields.set(field, { values: b.values, starts, items });
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

  /** Items matching every filter entry; a list of wanted values matches any of them. */
  allowed(filter: Record<string, FilterValue>): AllowedItems {
    // Normalise first (O(values)): the key and the lookups share it.
    const entries: [FieldIndex, string, string[]][] = [];
    for (const name of Object.keys(filter).sort()) {
      const field = this.fields.get(name);
      if (!field) {
        const known = this.fieldNames();
        const listed = known.slice(0, 20).join(', ') + (known.length > 20 ? `, … (${known.length} fields)` : '');
        throw badData(`filter: unknown catalog field "${clipText(name)}" (fields: ${listed})`);
      }
      const want = filter[name];
      const values = new Set<string>();
      for (const w of Array.isArray(want) ? want : [want]) {
        const v = normaliseFilterValue(w);
        if (v !== null) values.add(v);
      }
      entries.push([field, name, [...values].sort()]);
    }
    let keyLength = 0;
    for (const [, name, values] of entries) {
      keyLength += name.length + 4;
      for (const v of values) keyLength += v.length + 3;
    }
    const key = keyLength <= MAX_CACHED_FILTER_KEY ? JSON.stringify(entries.map(([, name, values]) => [name, values])) : null;
    if (key !== null) {
      const hit = this.cache.get(key);
      if (hit) {
        // LRU: a hit moves to the back of the eviction order.
        this.cache.delete(key);
        this.cache.set(key, hit);
        return hit.allowed;
      }
    }
    const allowed = this.build(entries.map(([field, , values]) => [field, values]));
    if (key !== null) this.remember(key, allowed);
    return allowed;
  }

  /** The mask from posting lists: O(Σ matching items), plus one allocation of the mask itself. */
  private build(entries: [FieldIndex, string[]][]): AllowedItems {
    const n = this.n;
    const postings = entries.map(([field, values]) => {
      const lists: Int32Array[] = [];
      let total = 0;
      for (const v of values) {
        const p = field.values.get(v);
        if (p === undefined) continue;
        const list = field.items.subarray(field.starts[p], field.starts[p + 1]);
        lists.push(list);
        total += list.length;
      }
      return { lists, total };
    });
    if (postings.length === 0) {
      // {} filters nothing.
      return { mask: new Uint8Array(n).fill(1), items: Int32Array.from({ length: n }, (_, i) => i), allowedCount: n };
    }
    // The most selective field first: later fields only promote items it already marked.
    postings.sort((a, b) => a.total - b.total);
    const F = postings.length;
    // stage[i] = how many fields (in order) item i has matched so far; F means all of them.
    const stage = F < 255 ? new Uint8Array(n) : F < 65535 ? new Uint16Array(n) : null;
    if (stage === null) throw badData(`filter: too many fields (${F})`);
    const hits: number[] = [];
    for (let f = 0; f < F; f++) {
      for (const list of postings[f].lists) {
        for (let j = 0; j < list.length; j++) {
          const i = list[j];
          if (stage[i] !== f) continue; // missed an earlier field, or already counted for this one
          stage[i] = f + 1;
          if (f === F - 1) hits.push(i);
        }
      }
    }
    const items = Int32Array.from(hits).sort();
    let mask: Uint8Array;
    if (stage instanceof Uint8Array) {
      // Every touched item is in the first field's lists: clear the partial matches from those.
      for (const list of postings[0].lists) for (let j = 0; j < list.length; j++) if (stage[list[j]] !== F) stage[list[j]] = 0;
      for (let j = 0; j < items.length; j++) stage[items[j]] = 1;
      mask = stage;
    } else {
      mask = new Uint8Array(n);
      for (let j = 0; j < items.length; j++) mask[items[j]] = 1;
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
