// The catalog summary: types, counts, values grouped as filters compare them (most frequent first,
// bounded), min/max of numbers, the field bound; checked against a direct count on random catalogs.
import { describe, expect, it } from 'vitest';
import { catalogSummaryOf, MAX_LISTED_VALUE_CHARS, summariseCatalog } from '../../src/model/catalog-summary.js';
import { normaliseFilterValue } from '../../src/model/filter-index.js';
import { rng } from '../../src/util/random.js';

describe('catalog summary', () => {
  it('names each field with its type, item count, values and numeric range', () => {
    const catalog = [
      { genre: 'Comedy', year: 1988, tags: ['cult', 'B-movie'], free: true, price: 3 },
      { genre: ' comedy', year: 2001, tags: ['Cult', 'cult'], free: false, price: '4' },
      { genre: 'Drama', year: 1995, tags: [], sizes: [2, 9] },
      { genre: null, title: 'x' },
    ];
    const s = summariseCatalog(catalog);
    expect(s.items).toBe(4);
    expect(s.fields_truncated).toBe(false);
    const byName = Object.fromEntries(s.fields.map((f) => [f.field, f]));
    expect(s.fields.map((f) => f.field)).toEqual(['free', 'genre', 'price', 'sizes', 'tags', 'title', 'year']);
    expect(byName.genre).toEqual({ field: 'genre', type: 'string', items: 3, values: ['Comedy', 'Drama'], distinct_count: 2, truncated: false });
    expect(byName.year).toEqual({ field: 'year', type: 'number', items: 3, min: 1988, max: 2001 });
    expect(byName.tags).toEqual({ field: 'tags', type: 'string_list', items: 3, values: ['cult', 'B-movie'], distinct_count: 2, truncated: false });
    expect(byName.free).toEqual({ field: 'free', type: 'boolean', items: 2, values: [false, true], distinct_count: 2, truncated: false });
    expect(byName.price).toEqual({ field: 'price', type: 'mixed', items: 2, values: ['4'], distinct_count: 1, truncated: false, min: 3, max: 3 });
    expect(byName.sizes).toEqual({ field: 'sizes', type: 'list', items: 1, values: [], distinct_count: 0, truncated: false, min: 2, max: 9 });
  });

  it('agrees with a direct count on random catalogs, within its bounds', () => {
    const u = rng(99);
    const words = ['Alpha', 'alpha ', 'Beta', 'gamma', 'Delta', 'DELTA', 'eps', 'zeta'];
    for (let t = 0; t < 50; t++) {
      const n = 1 + Math.floor(u() * 200);
      const catalog = Array.from({ length: n }, () => {
        const row: Record<string, unknown> = {};
        if (u() < 0.8) row.word = words[Math.floor(u() * words.length)];
        if (u() < 0.7) row.num = Math.round((u() - 0.5) * 1000) / 10;
        for (let f = 0; f < 5; f++) if (u() < 0.3) row[`f${f}`] = 'v';
        return row;
      });
      const bound = 1 + Math.floor(u() * 6);
      const s = summariseCatalog(catalog, { values: bound, fields: 4 });
      const present = (f: string) => catalog.filter((r) => r[f] !== undefined);
      const fieldsPresent = ['word', 'num', 'f0', 'f1', 'f2', 'f3', 'f4'].filter((f) => present(f).length > 0);
      expect(s.fields.length).toBe(Math.min(4, fieldsPresent.length));
      expect(s.fields_truncated).toBe(fieldsPresent.length > 4);
      // The kept fields are the most common ones.
      const kept = new Set(s.fields.map((f) => f.field));
      for (const f of fieldsPresent) if (!kept.has(f)) for (const k of kept) expect(present(k).length).toBeGreaterThanOrEqual(present(f).length);
      for (const f of s.fields) {
        expect(f.items).toBe(present(f.field).length);
        if (f.field === 'num') {
          const xs = present('num').map((r) => r.num as number);
          expect([f.min, f.max]).toEqual([Math.min(...xs), Math.max(...xs)]);
        }
        if (f.field === 'word') {
          const counts = new Map<string, number>();
          for (const r of present('word')) counts.set(normaliseFilterValue(r.word)!, (counts.get(normaliseFilterValue(r.word)!) ?? 0) + 1);
          expect(f.distinct_count).toBe(counts.size);
          expect(f.truncated).toBe(counts.size > bound);
          expect(f.values!.length).toBe(Math.min(bound, counts.size));
          const shown = f.values!.map((v) => counts.get(normaliseFilterValue(v)!)!);
          expect(shown).toEqual([...shown].sort((a, b) => b - a)); // most frequent first
          const hidden = [...counts.entries()].filter(([k]) => !f.values!.some((v) => normaliseFilterValue(v) === k)).map(([, c]) => c);
          for (const c of hidden) expect(c).toBeLessThanOrEqual(shown[shown.length - 1]);
        }
      }
    }
  });

  it('counts values longer than MAX_LISTED_VALUE_CHARS but does not list them, so metadata stays small', () => {
    const long = (i: number) => `${i}:`.padEnd(5000, 'x');
    const catalog = Array.from({ length: 100 }, (_, i) => ({ blurb: long(i % 60), genre: i % 2 ? 'Drama' : 'Comedy' }));
    const s = summariseCatalog(catalog);
    const blurb = s.fields.find((f) => f.field === 'blurb')!;
    expect(blurb.distinct_count).toBe(60);
    expect(blurb.values).toEqual([]);
    expect(blurb.truncated).toBe(true);
    expect(s.fields.find((f) => f.field === 'genre')!.values).toEqual(['Comedy', 'Drama']);
    expect(JSON.stringify(s).length).toBeLessThan(1000);
    expect(MAX_LISTED_VALUE_CHARS).toBeLessThan(5000);
  });

  it('is computed once per artifact', () => {
    const artifact = { catalog: [{ genre: 'a' }] };
    const first = catalogSummaryOf(artifact);
    expect(catalogSummaryOf(artifact)).toBe(first);
    expect(JSON.parse(first.json)).toEqual(first.summary);
    expect(catalogSummaryOf({ catalog: null })).toEqual({ summary: null, json: 'null' });
  });
});
