// The per-model filter index: the same mask as matching every row against every value (the old
// definition, made case-insensitive) on seeded random catalogs and filters; case-insensitive matching
// over real HTTP on the demo model; a cache bounded by bytes that never keeps large filter keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterIndex, MAX_CACHED_FILTER_KEY, normaliseFilterValue, type FilterValue } from '../../src/model/filter-index.js';
import { rng } from '../../src/util/random.js';
import { buildDemo } from '../../src/model-format/demo.js';
import { expectSeldonError, postJson, startTestServer, type TestServer } from '../helpers/server.js';

/** The definition: a row passes when, for every filter field, some catalog member equals some wanted value. */
function referenceMask(catalog: Record<string, unknown>[], filter: Record<string, FilterValue>): Uint8Array {
  const norm = (v: unknown) => normaliseFilterValue(v);
  return Uint8Array.from(catalog, (row) =>
    Object.entries(filter).every(([f, want]) => {
      const wanted = (Array.isArray(want) ? want : [want]).map(norm).filter((w) => w !== null);
      const raw = row[f];
      const have = (Array.isArray(raw) ? raw : [raw]).map(norm).filter((h) => h !== null);
      return have.some((h) => wanted.includes(h));
    })
      ? 1
      : 0,
  );
}

const WORDS = ['Comedy', 'comedy ', 'DRAMA', 'Drama', 'Sci-Fi', 'noir', 'Noir', 'x'];

function randomCatalog(u: () => number, n: number): Record<string, unknown>[] {
  const pick = <T,>(xs: T[]) => xs[Math.floor(u() * xs.length)];
  return Array.from({ length: n }, () => {
    const row: Record<string, unknown> = {};
    if (u() < 0.9) row.genre = pick(WORDS);
    if (u() < 0.8) row.year = 1990 + Math.floor(u() * 6);
    if (u() < 0.7) row.tags = Array.from({ length: Math.floor(u() * 4) }, () => pick(WORDS));
    if (u() < 0.5) row.flag = u() < 0.5;
    if (u() < 0.1) row.extra = null;
    return row;
  });
}

function randomFilter(u: () => number): Record<string, FilterValue> {
  const pick = <T,>(xs: T[]) => xs[Math.floor(u() * xs.length)];
  const value = (field: string): string | number | boolean => {
    if (field === 'year') return u() < 0.5 ? 1990 + Math.floor(u() * 7) : String(1990 + Math.floor(u() * 7));
    if (field === 'flag') return u() < 0.5 ? true : 'FALSE';
    const w = pick(WORDS);
    return u() < 0.3 ? w.toUpperCase() : w;
  };
  const filter: Record<string, FilterValue> = {};
  for (const f of ['genre', 'year', 'tags', 'flag']) {
    if (u() < 0.45) filter[f] = u() < 0.5 ? value(f) : Array.from({ length: Math.floor(u() * 5) }, () => value(f)) as (string | number | boolean)[];
  }
  return filter;
}

describe('filter index', () => {
  it('gives the same mask as matching every row (case-insensitively) on random catalogs and filters', () => {
    const u = rng(20261201);
    let checked = 0;
    let nonEmpty = 0;
    for (let c = 0; c < 40; c++) {
      const catalog = randomCatalog(u, 1 + Math.floor(u() * 300));
      const index = new FilterIndex(catalog, 1 << 20);
      for (let q = 0; q < 25; q++) {
        const filter = randomFilter(u);
        const want = referenceMask(catalog, filter);
        const got = index.allowed(filter);
        expect(Array.from(got.mask)).toEqual(Array.from(want));
        const list = Array.from(want.keys()).filter((i) => want[i] === 1);
        expect(Array.from(got.items)).toEqual(list);
        expect(got.allowedCount).toBe(list.length);
        // A second ask (a cache hit, fields in another order) answers the same.
        const reordered = Object.fromEntries(Object.entries(filter).reverse());
        expect(Array.from(index.allowed(reordered).mask)).toEqual(Array.from(want));
        checked++;
        if (list.length > 0 && list.length < catalog.length) nonEmpty++;
      }
    }
    expect(checked).toBe(1000);
    expect(nonEmpty).toBeGreaterThan(200); // the filters are selective, not trivially all or nothing
  });

  it('matches strings case-insensitively and numbers by their decimal text; list fields by any member', () => {
    const catalog = [{ genre: 'Comedy', year: 1988, tags: ['Cult', 'b-movie'] }, { genre: 'Drama', year: 2001, tags: [] }, { genre: ' COMEDY ', year: '1988' }];
    const index = new FilterIndex(catalog, 1 << 20);
    expect(Array.from(index.allowed({ genre: 'comedy' }).items)).toEqual([0, 2]);
    expect(Array.from(index.allowed({ year: '1988' }).items)).toEqual([0, 2]);
    expect(Array.from(index.allowed({ year: 1988, genre: ['drama', 'Comedy'] }).items)).toEqual([0, 2]);
    expect(Array.from(index.allowed({ tags: 'CULT' }).items)).toEqual([0]);
    expect(index.allowed({ genre: 'western' }).allowedCount).toBe(0);
    expect(index.allowed({ genre: [] }).allowedCount).toBe(0);
    expect(() => index.allowed({ colour: 'red' })).toThrow(/unknown catalog field "colour"/);
    const long = 'f'.repeat(5000);
    expect(() => index.allowed({ [long]: 'x' })).toThrow(/unknown catalog field "f{80}…"/);
  });

  it('bounds the cache by bytes and does not cache filters with a large key', () => {
    const n = 10_000;
    const catalog = Array.from({ length: n }, (_, i) => ({ genre: `g${i % 50}`, id: String(i) }));
    const budget = 64 * 1024;
    const index = new FilterIndex(catalog, budget);
    for (let g = 0; g < 50; g++) index.allowed({ genre: `G${g}` });
    // Each mask is ≥ 10 kB: only a few fit, and the total never passes the budget.
    expect(index.cachedBytes).toBeGreaterThan(0);
    expect(index.cachedBytes).toBeLessThanOrEqual(budget);
    const before = index.cachedBytes;
    // 10,001 accepted values: answered from the index, and its key (> 4 KB) is not cached.
    const many = Array.from({ length: 10_001 }, (_, i) => String(i));
    const big = index.allowed({ id: many });
    expect(big.allowedCount).toBe(n);
    expect(JSON.stringify(many).length).toBeGreaterThan(MAX_CACHED_FILTER_KEY);
    expect(index.cachedBytes).toBe(before);
    expect(index.allowed({ id: many })).not.toBe(big); // rebuilt, not remembered
    expect(index.allowed({ genre: 'g49' })).toBe(index.allowed({ genre: 'G49 ' })); // one normalised key
  });
});

describe('filters over HTTP (demo model)', () => {
  let t: TestServer;
  const catalog = buildDemo().extras.catalog;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t?.stop());
  const predict = (body: unknown) => postJson(`${t.url}/api/v1.0/predictions`, body);

  it('{"genre": "comedy"} returns comedies, for known and cold-start users', async () => {
    const comedies = new Set(catalog.map((c, i) => [String(i + 1), c.genre] as const).filter(([, g]) => g === 'Comedy').map(([id]) => id));
    expect(comedies.size).toBeGreaterThan(5);
    for (const user of ['1', 'someone-new']) {
      const r = await predict({ jsonData: { user_id: user, k: 5, filter: { genre: 'comedy' } } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const items = r.body.jsonData.recommendations[0].items;
      expect(items).toHaveLength(5);
      for (const it of items) {
        expect(comedies.has(it.item_id)).toBe(true);
        expect(it.genre).toBe('Comedy');
      }
    }
    const upper = await predict({ jsonData: { user_id: '1', k: 5, filter: { genre: 'COMEDY' } } });
    const exact = await predict({ jsonData: { user_id: '1', k: 5, filter: { genre: 'Comedy' } } });
    expect(upper.body.jsonData.recommendations).toEqual(exact.body.jsonData.recommendations);
  });

  it('answers an empty list when nothing matches, and 400 for an unknown field', async () => {
    const r = await predict({ jsonData: { users: ['1', 'nobody-yet'], k: 5, filter: { genre: 'no such genre' } } });
    expect(r.status).toBe(200);
    expect(r.body.jsonData.recommendations.map((x: { items: unknown[] }) => x.items)).toEqual([[], []]);
    const bad = await predict({ jsonData: { user_id: '1', k: 5, filter: { colour: 'red' } } });
    expect(bad.status).toBe(400);
    expect(expectSeldonError(bad.body, 'MICROSERVICE_BAD_DATA')).toMatch(/unknown catalog field "colour"/);
  });
});
