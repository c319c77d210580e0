// The per-model filter index: the same mask as matching every row against every value (the old
// definition, made case-insensitive) on seeded random catalogs and filters; case-insensitive matching
// over real HTTP on the demo model; a cache bounded by bytes that never keeps large filter keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterIndex, MAX_CACHED_FILTER_KEY, normaliseFilterValue, type FilterCondition, type FilterScalar, type FilterValue } from '../../src/model/filter-index.js';
import { rng } from '../../src/util/random.js';
import { buildDemo } from '../../src/model-format/demo.js';
import { expectSeldonError, postJson, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The definition, row by row: for every filter field, a plain value (or list) needs some catalog member
 * equal to some wanted value; a condition needs each operator to hold — eq / in the same way, `not`
 * no member equal to one of its values, the range bounds all met by one numeric member.
 */
function referenceMask(catalog: Record<string, unknown>[], filter: Record<string, FilterValue>): Uint8Array {
  const norm = (v: unknown) => normaliseFilterValue(v);
  const some = (have: (string | null)[], want: unknown[]) => {
    const wanted = want.map(norm).filter((w) => w !== null);
    return have.some((h) => h !== null && wanted.includes(h));
  };
  const asNumber = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : null);
  return Uint8Array.from(catalog, (row) =>
    Object.entries(filter).every(([f, want]) => {
      const raw = row[f];
      const members = Array.isArray(raw) ? raw : [raw];
      const have = members.map(norm);
      if (typeof want !== 'object' || Array.isArray(want)) return some(have, Array.isArray(want) ? want : [want]);
      const c = want as FilterCondition;
      if (c.eq !== undefined && !some(have, [c.eq])) return false;
      if (c.in !== undefined && !some(have, c.in)) return false;
      if (c.not !== undefined && some(have, Array.isArray(c.not) ? c.not : [c.not])) return false;
      if (c.gte !== undefined || c.gt !== undefined || c.lte !== undefined || c.lt !== undefined) {
        const inRange = (x: number) =>
          (c.gte === undefined || x >= c.gte) && (c.gt === undefined || x > c.gt) && (c.lte === undefined || x <= c.lte) && (c.lt === undefined || x < c.lt);
        if (!members.some((m) => asNumber(m) !== null && inRange(asNumber(m)!))) return false;
      }
      return true;
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
    if (u() < 0.6) row.price = u() < 0.7 ? Math.round(u() * 200) / 10 : pick(['3.5', ' 12 ', 'n/a', '7']);
    if (u() < 0.4) row.sizes = Array.from({ length: Math.floor(u() * 3) }, () => Math.floor(u() * 10));
    if (u() < 0.1) row.extra = null;
    return row;
  });
}

function randomFilter(u: () => number, known: string[]): Record<string, FilterValue> {
  const pick = <T,>(xs: T[]) => xs[Math.floor(u() * xs.length)];
  const value = (field: string): FilterScalar => {
    if (field === 'year') return u() < 0.5 ? 1990 + Math.floor(u() * 7) : String(1990 + Math.floor(u() * 7));
    if (field === 'flag') return u() < 0.5 ? true : 'FALSE';
    if (field === 'price' || field === 'sizes') return u() < 0.5 ? Math.floor(u() * 10) : pick(['3.5', '12', '7', 'n/a']);
    const w = pick(WORDS);
    return u() < 0.3 ? w.toUpperCase() : w;
  };
  const values = (field: string, min: number) => Array.from({ length: min + Math.floor(u() * 4) }, () => value(field));
  const bound = (field: string) => (field === 'year' ? 1989 + Math.floor(u() * 8) : field === 'price' ? Math.round(u() * 220) / 10 : Math.floor(u() * 11) - 0.5 * Math.floor(u() * 2));
  const condition = (field: string): FilterCondition => {
    const c: FilterCondition = {};
    while (Object.keys(c).length === 0) {
      if (u() < 0.2) c.eq = value(field);
      if (u() < 0.2) c.in = values(field, 1);
      if (u() < 0.25) c.not = u() < 0.5 ? value(field) : values(field, 0);
      for (const op of ['gte', 'gt', 'lte', 'lt'] as const) if (u() < 0.3) c[op] = bound(field);
    }
    return c;
  };
  const filter: Record<string, FilterValue> = {};
  for (const f of ['genre', 'year', 'tags', 'flag', 'price', 'sizes'].filter((name) => known.includes(name))) {
    if (u() < 0.4) filter[f] = u() < 0.3 ? value(f) : u() < 0.4 ? values(f, 0) : condition(f);
  }
  return filter;
}

describe('filter index', () => {
  it('gives the same mask as matching every row (values, eq/in/not, ranges) on random catalogs and filters', () => {
    const u = rng(20261201);
    let checked = 0;
    let nonEmpty = 0;
    for (let c = 0; c < 100; c++) {
      const catalog = randomCatalog(u, 1 + Math.floor(u() * 300));
      const index = new FilterIndex(catalog, 1 << 20);
      for (let q = 0; q < 40; q++) {
        const filter = randomFilter(u, index.fieldNames());
        const want = referenceMask(catalog, filter);
        const got = index.allowed(filter);
        expect(Array.from(got.mask), JSON.stringify(filter)).toEqual(Array.from(want));
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
    expect(checked).toBe(4000);
    expect(nonEmpty).toBeGreaterThan(700); // the filters are selective, not trivially all or nothing
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

  it('conditions: ranges over numbers and numeric strings, list members, in / not, all ANDed', () => {
    const catalog = [
      { genre: 'Comedy', year: 1988, sizes: [1, 9] },
      { genre: 'Drama', year: '1995', sizes: [5] },
      { genre: 'comedy', year: 1999.5 },
      { genre: 'Noir', year: 'unknown', sizes: [] },
      { year: 2004 },
    ];
    const index = new FilterIndex(catalog, 1 << 20);
    const items = (f: Record<string, FilterValue>) => Array.from(index.allowed(f).items);
    expect(items({ year: { gte: 1990, lt: 2000 } })).toEqual([1, 2]);
    expect(items({ year: { gt: 1988 } })).toEqual([1, 2, 4]);
    expect(items({ year: { lte: 1988 } })).toEqual([0]);
    expect(items({ year: { gte: 1995, gt: 1995 } })).toEqual([2, 4]); // the stricter of two equal bounds
    expect(items({ year: { gte: 2000, lte: 1990 } })).toEqual([]);
    expect(items({ sizes: { gte: 4, lte: 6 } })).toEqual([1]); // one member must meet both bounds: [1, 9] does not
    expect(items({ sizes: { gt: 8 } })).toEqual([0]);
    expect(items({ genre: { in: ['COMEDY', 'noir'] } })).toEqual([0, 2, 3]);
    expect(items({ genre: { eq: 'comedy', not: 'Comedy' } })).toEqual([]);
    expect(items({ genre: { not: ['comedy', 'drama'] } })).toEqual([3, 4]); // no genre at all passes `not`
    expect(items({ genre: { not: 'comedy' }, year: { lt: 2000 } })).toEqual([1]);
    expect(items({ genre: 'comedy', year: { gte: 1990 } })).toEqual([2]);
    expect(items({ year: { eq: '1995' } })).toEqual([1]);
    // The same condition written another way shares one cached mask.
    expect(index.allowed({ genre: { in: ['noir', 'Comedy'] } })).toBe(index.allowed({ genre: { in: [' comedy', 'NOIR', 'noir'] } }));
  });

  it('refuses a malformed condition with a message naming the field and the operator', () => {
    const index = new FilterIndex([{ year: 1990, genre: 'Drama' }], 1 << 20);
    const bad = (f: unknown) => () => index.allowed(f as Record<string, FilterValue>);
    expect(bad({ year: { gtee: 1990 } })).toThrow(/filter\.year: unknown operator "gtee" \(operators: eq, in, not, gte, gt, lte, lt\)/);
    expect(bad({ year: { gte: '1990' } })).toThrow(/filter\.year\.gte must be a finite number, got "1990"/);
    expect(bad({ year: { lt: null } })).toThrow(/filter\.year\.lt must be a finite number/);
    expect(bad({ genre: { in: [] } })).toThrow(/filter\.genre\.in must be a non-empty list/);
    expect(bad({ genre: { in: 'Drama' } })).toThrow(/filter\.genre\.in must be a non-empty list/);
    expect(bad({ genre: { eq: { x: 1 } } })).toThrow(/filter\.genre\.eq: values must be strings, numbers or booleans/);
    expect(bad({ genre: { not: [['Drama']] } })).toThrow(/filter\.genre\.not: values must be/);
    expect(bad({ genre: {} })).toThrow(/filter\.genre: an empty condition/);
    for (const f of [{ year: { gtee: 1 } }, { genre: { in: [] } }]) expect(bad(f)).toThrow(expect.objectContaining({ kind: 'bad_data' }));
  });

  it('a range over 200,000 items answers exactly its matches, ascending', () => {
    const n = 200_000;
    const index = new FilterIndex(Array.from({ length: n }, (_, i) => ({ year: 1900 + (i % 125) })), 1 << 20);
    const a = index.allowed({ year: { gte: 2000, lt: 2001 } });
    expect(a.allowedCount).toBe(n / 125);
    expect(Array.from(a.items.subarray(0, 3))).toEqual([100, 225, 350]);
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
