// Catalog discovery: what a caller can filter, diversify and write rules on. One pass over the catalog
// per model (memoised on the artifact before it serves, so metadata requests reuse it): each field with its type, how
// many items have it, its most frequent distinct values up to a bound (string, list and boolean
// fields), and min/max of its numbers. Values are grouped as filters compare them (trim, NFC,
// case-insensitive), each shown in its first spelling in the catalog.
import { normaliseFilterValue } from './filter-index.js';

export type CatalogFieldType = 'string' | 'number' | 'boolean' | 'string_list' | 'list' | 'mixed';

export interface CatalogFieldSummary {
  field: string;
  type: CatalogFieldType;
  /** Items that have the field (any value but null). */
  items: number;
  /** Most frequent distinct values first (ties alphabetically), at most the bound; not for number fields. */
  values?: (string | boolean)[];
  /** Distinct values in all (as filters compare them). */
  distinct_count?: number;
  /** Whether `values` lists fewer than distinct_count. */
  truncated?: boolean;
  /** Over the numeric members (numbers, also inside lists). */
  min?: number;
  max?: number;
}

export interface CatalogSummary {
  items: number;
  fields: CatalogFieldSummary[];
  /** Whether fields beyond the bound were left out (the most common fields are kept). */
  fields_truncated: boolean;
}

export const CATALOG_SUMMARY_BOUNDS = { values: 50, fields: 64 } as const;
/**
 * Longer values (descriptions, long titles) are counted but not listed: nobody filters on them, and 50
 * values × 64 fields of free text would make metadata answers megabytes (past gRPC clients' 4 MB).
 */
export const MAX_LISTED_VALUE_CHARS = 200;

type Kind = 'string' | 'number' | 'boolean' | 'string_list' | 'list' | 'other';

function kindOf(v: unknown): Kind {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'boolean';
  if (Array.isArray(v)) return v.every((m) => typeof m === 'string') ? 'string_list' : 'list';
  return 'other';
}

interface FieldStats {
  items: number;
  kinds: Set<Kind>;
  /** Normalised value → [count, first spelling]. */
  values: Map<string, [number, string | boolean]>;
  min: number;
  max: number;
}

/** The summary of one catalog, bounded by `bounds` (values per field, fields). O(catalog cells). */
export function summariseCatalog(catalog: Record<string, unknown>[], bounds: { values: number; fields: number } = CATALOG_SUMMARY_BOUNDS): CatalogSummary {
  const stats = new Map<string, FieldStats>();
  addRows(stats, catalog, 0, catalog.length);
  return summaryOf(stats, catalog.length, bounds);
}

/** Rows [from, to) of the catalog into the per-field stats. */
function addRows(stats: Map<string, FieldStats>, catalog: Record<string, unknown>[], from: number, to: number): void {
  for (let r = from; r < to; r++) {
    for (const [field, raw] of Object.entries(catalog[r])) {
      if (raw === null || raw === undefined) continue;
      let s = stats.get(field);
      if (!s) stats.set(field, (s = { items: 0, kinds: new Set(), values: new Map(), min: Infinity, max: -Infinity }));
      s.items++;
      s.kinds.add(kindOf(raw));
      const seen = new Set<string>(); // a list counts a value once per item
      for (const m of Array.isArray(raw) ? raw : [raw]) {
        if (typeof m === 'number' && Number.isFinite(m)) {
          s.min = Math.min(s.min, m);
          s.max = Math.max(s.max, m);
          continue;
        }
        if (typeof m !== 'string' && typeof m !== 'boolean') continue;
        const key = normaliseFilterValue(m)!;
        if (seen.has(key)) continue;
        seen.add(key);
        const entry = s.values.get(key);
        if (entry) entry[0]++;
        else s.values.set(key, [1, m]);
      }
    }
  }
}

function summaryOf(stats: Map<string, FieldStats>, items: number, bounds: { values: number; fields: number }): CatalogSummary {
  const names = [...stats.keys()].sort((a, b) => stats.get(b)!.items - stats.get(a)!.items || (a < b ? -1 : 1));
  const kept = names.slice(0, bounds.fields).sort();
  return {
    items,
    fields: kept.map((field) => describeField(field, stats.get(field)!, bounds.values)),
    fields_truncated: names.length > kept.length,
  };
}

function describeField(field: string, s: FieldStats, maxValues: number): CatalogFieldSummary {
  const type: CatalogFieldType = s.kinds.size === 1 && !s.kinds.has('other') ? ([...s.kinds][0] as CatalogFieldType) : 'mixed';
  const out: CatalogFieldSummary = { field, type, items: s.items };
  if (s.values.size > 0 || type !== 'number') {
    const ranked = [...s.values.entries()].sort(([ka, [ca]], [kb, [cb]]) => cb - ca || (ka < kb ? -1 : ka > kb ? 1 : 0));
    const listable = ranked.filter(([, [, first]]) => typeof first !== 'string' || first.length <= MAX_LISTED_VALUE_CHARS);
    out.values = listable.slice(0, maxValues).map(([, [, first]]) => first);
    out.distinct_count = ranked.length;
    out.truncated = out.values.length < ranked.length;
  }
  if (s.min <= s.max) {
    out.min = s.min;
    out.max = s.max;
  }
  return out;
}

type Entry = { summary: CatalogSummary | null; json: string };
const memo = new WeakMap<object, Entry>();

function remember(artifact: object, summary: CatalogSummary | null): Entry {
  const entry = { summary, json: JSON.stringify(summary) };
  memo.set(artifact, entry);
  return entry;
}

/**
 * The summary of an artifact's catalog (null without one), and its JSON text, kept with the artifact:
 * prepared before the version serves (prepareCatalogSummary), computed here in one go only if not.
 */
export function catalogSummaryOf(artifact: { catalog: Record<string, unknown>[] | null }): Entry {
  return memo.get(artifact) ?? remember(artifact, artifact.catalog ? summariseCatalog(artifact.catalog) : null);
}

/** Whether the artifact's summary is computed. */
export function catalogSummaryBuilt(artifact: object): boolean {
  return memo.has(artifact);
}

/** Rows summarised between two turns of the event loop. */
const SLICE_ROWS = 10_000;

/** Computes the artifact's summary in slices of SLICE_ROWS with a turn for the event loop before each (100,000 rows took 245 ms in one go). */
export async function prepareCatalogSummary(artifact: { catalog: Record<string, unknown>[] | null }): Promise<void> {
  if (memo.has(artifact)) return;
  const { catalog } = artifact;
  if (!catalog) {
    remember(artifact, null);
    return;
  }
  const stats = new Map<string, FieldStats>();
  for (let from = 0; from < catalog.length; from += SLICE_ROWS) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    addRows(stats, catalog, from, Math.min(catalog.length, from + SLICE_ROWS));
  }
  if (!memo.has(artifact)) remember(artifact, summaryOf(stats, catalog.length, CATALOG_SUMMARY_BOUNDS));
}
