// The recommender API's retrieval features over real sockets, against real ONNX models (the demo model,
// and a small ALS model trained here): similar items, session recommendations, exclude/allow lists,
// pages, unclamped scores with a separate rating, explanations, reranking and the nothing-matched tag,
// each through Seldon v1 REST and gRPC and V2 REST and gRPC. Expected answers are computed here from the
// model's factor tables (brute-force cosine, an independent ridge solve), not by the server's code.
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapi } from '../../src/protocols/contract.js';
import type { Artifact } from '../../src/model-format/artifact.js';
import { trainCommand } from '../../src/train/pipeline.js';
import { tryCall } from '../helpers/grpc-client.js';
import { postJson } from '../helpers/server.js';
import { params } from '../grpc/v2-client.js';
import { plantedRatings, tempDir } from '../train/helpers.js';
import { ask, closeAll, everywhere, ok, serve as serveOn, type Json, type Served } from './transports.js';

// ---- independent reference computations ------------------------------------------------------

function factorRow(a: Artifact, i: number): number[] {
  const f = a.factors!;
  return Array.from(f.itemFactors.subarray(i * f.factors, (i + 1) * f.factors));
}
const dot = (x: number[], y: number[]) => x.reduce((s, v, k) => s + v * y[k], 0);
const cos = (x: number[], y: number[]) => {
  const n = Math.sqrt(dot(x, x) * dot(y, y));
  return n === 0 ? 0 : dot(x, y) / n;
};

/** Top-k of scores (index → score), skipping `skip`, best first with ties by index. */
function topOf(a: Artifact, score: (i: number) => number, k: number, skip: Set<number>, allowed: (i: number) => boolean = () => true): { ids: string[]; scores: number[] } {
  const order = a.itemIds.map((_, i) => i).filter((i) => !skip.has(i) && allowed(i));
  order.sort((x, y) => score(y) - score(x) || x - y);
  const top = order.slice(0, k);
  return { ids: top.map((i) => a.itemIds[i]), scores: top.map(score) };
}

function bruteSimilar(a: Artifact, query: string[], k: number, allowed?: (i: number) => boolean) {
  const q = query.map((id) => a.itemIds.indexOf(id));
  const mean = (i: number) => q.reduce((s, j) => s + cos(factorRow(a, i), factorRow(a, j)), 0) / q.length;
  return topOf(a, mean, k, new Set(q), allowed);
}

/** Solves A x = b by Gaussian elimination with partial pivoting. */
function gaussSolve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, r) => [...row, b[r]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r][c] / M[c][c];
      for (let j = c; j <= n; j++) M[r][j] -= f * M[c][j];
    }
  }
  const x = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let j = r + 1; j < n; j++) s -= M[r][j] * x[j];
    x[r] = s / M[r][r];
  }
  return x;
}

/**
 * A new (anonymous) user's vector from session items as an explicit biased MF model defines it: ridge
 * regression of the ratings the weights stand for (lo + w·(hi − lo)) minus μ + b_i on [q_i, 1].
 */
function sessionReference(a: Artifact, items: string[], weights: number[], k: number) {
  const f = a.factors!;
  const d = f.factors;
  const [lo, hi] = a.ratingRange!;
  const training = JSON.parse(a.metadata['recserve.training'] ?? '{}');
  const weighted = training.weightedReg === true || training.weighted_reg === true;
  const lambda = (f.regularization ?? 0.1) * (weighted ? Math.max(1, items.length) : 1);
  const A = Array.from({ length: d + 1 }, (_, r) => Array.from({ length: d + 1 }, (_, c) => (r === c ? lambda : 0)));
  const b = new Array(d + 1).fill(0);
  items.forEach((id, n) => {
    const i = a.itemIds.indexOf(id);
    const x = [...factorRow(a, i), 1];
    const t = lo + weights[n] * (hi - lo) - f.globalBias - f.itemBias[i];
    for (let r = 0; r <= d; r++) {
      b[r] += t * x[r];
      for (let c = 0; c <= d; c++) A[r][c] += x[r] * x[c];
    }
  });
  const x = gaussSolve(A, b);
  const score = (i: number) => f.globalBias + x[d] + f.itemBias[i] + dot(x.slice(0, d), factorRow(a, i));
  return topOf(a, score, k, new Set(items.map((id) => a.itemIds.indexOf(id))));
}

// ---- servers ---------------------------------------------------------------------------------

const servers: Served[] = [];
let demo: Served;
let trained: Served;
let withDefaults: Served;

const serve = (env: Record<string, string>, modelDir: string | null) => serveOn(servers, env, modelDir);

beforeAll(async () => {
  demo = await serve({}, null);
  const dir = tempDir('recserve-api-');
  const { data } = plantedRatings({ users: 60, items: 50, density: 0.4, seed: 7 });
  const ratings = path.join(dir, 'ratings.csv');
  writeFileSync(ratings, 'userId,movieId,rating\n' + Array.from(data.users, (u, n) => `${data.userIds.ids[u]},${data.itemIds.ids[data.items[n]]},${Math.min(5, Math.max(1, Math.round(data.ratings[n])))}`).join('\n') + '\n');
  const movies = path.join(dir, 'movies.csv');
  writeFileSync(movies, 'movieId,title,genres\n' + data.itemIds.ids.map((id, i) => `${id},Film ${i} (${1990 + (i % 20)}),${['Comedy', 'Drama', 'Action'][i % 3]}`).join('\n') + '\n');
  const out = path.join(dir, 'model');
  await trainCommand({ data: ratings, items: { file: movies }, out, algo: 'als', params: { factors: 6, epochs: 8 } });
  trained = await serve({ MODEL_PATH: out }, out);
  // The same model with serve-time defaults in its model-settings.json.
  const ruled = path.join(dir, 'ruled');
  cpSync(out, ruled, { recursive: true });
  writeFileSync(path.join(ruled, 'model-settings.json'), JSON.stringify({ parameters: { rules: [{ field: 'genre', value: 'action', multiply: 0.01 }] } }));
  withDefaults = await serve({ MODEL_PATH: ruled }, ruled);
}, 60_000);

afterAll(() => closeAll(servers));

// ---- features --------------------------------------------------------------------------------

describe('similar items', () => {
  it('are the nearest items by cosine on the item factors, the same on every transport, on both models', async () => {
    for (const s of [demo, trained]) {
      const query = s.artifact.itemIds[17];
      const want = bruteSimilar(s.artifact, [query], 5);
      const a = ok(await everywhere(s, { similar_to: query, k: 5 }));
      expect(a.lists).toHaveLength(1);
      expect(a.lists[0].strategy).toBe('similar_items');
      expect(a.lists[0].items).toEqual(want.ids);
      a.lists[0].scores.forEach((sc, r) => expect(sc).toBeCloseTo(want.scores[r], 4));
    }
  });

  it('of several items rank by mean cosine, with filters and exclusions applied and the catalog fields attached', async () => {
    const a = demo.artifact;
    const query = ['18', '35'];
    const comedy = (i: number) => a.catalog![i].genre === 'Comedy';
    const all = bruteSimilar(a, query, 6, comedy);
    const answer = ok(await everywhere(demo, { similar_to: query, k: 5, filter: { genre: 'comedy' }, exclude_items: [all.ids[0], 'no-such-item'] }));
    expect(answer.lists[0].items).toEqual(all.ids.slice(1, 6));
    const v1 = ok(await ask(demo, 'v1 REST', { similar_to: query, k: 2 }));
    expect(v1.raw.jsonData.similar_to).toEqual(query);
    expect(v1.raw.jsonData.items[0]).toMatchObject({ item_id: bruteSimilar(a, query, 1).ids[0], genre: expect.any(String), title: expect.any(String) });
  });

  it('of an unknown item is the not-found error of each protocol', async () => {
    const a = await everywhere(demo, { similar_to: 'no-such-item', k: 3 });
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.kind).toBe('not_found');
    const r = await postJson(`${demo.ts.url}/api/v1.0/predictions`, { jsonData: { similar_to: 'no-such-item' } });
    expect(r.status).toBe(404);
    expect(r.body.status).toMatchObject({ reason: 'MICROSERVICE_NOT_FOUND', info: expect.stringContaining('no-such-item') });
  });
});

describe('session recommendations', () => {
  it('equal the fold-in of the session items (an independent ridge solve), on every transport and both models', async () => {
    for (const s of [demo, trained]) {
      const items = [s.artifact.itemIds[17], s.artifact.itemIds[34]];
      const want = sessionReference(s.artifact, items, [1, 0.5], 5);
      const a = ok(await everywhere(s, { items, weights: [1, 0.5], k: 5 }));
      expect(a.lists[0].strategy).toBe('personalized');
      expect(a.lists[0].items).toEqual(want.ids);
      a.lists[0].scores.forEach((sc, r) => expect(sc).toBeCloseTo(want.scores[r], 3));
    }
  });

  it('combine with a user: the history plus the session, the session items left out, nothing stored', async () => {
    const plain = ok(await ask(demo, 'v1 REST', { user_id: '1', k: 10 }));
    const session = ['18', '35', '74'];
    const withSession = ok(await everywhere(demo, { user_id: '1', items: session, k: 10 }));
    expect(withSession.lists[0].items).not.toEqual(plain.lists[0].items);
    for (const id of session) expect(withSession.lists[0].items).not.toContain(id);
    const seen = new Set(Array.from(demo.artifact.seen![demo.artifact.userIds.indexOf('1')], (i) => demo.artifact.itemIds[i]));
    for (const id of withSession.lists[0].items) expect(seen.has(id)).toBe(false);
    // Nothing was stored: the user's own list is unchanged.
    expect(ok(await ask(demo, 'v1 REST', { user_id: '1', k: 10 })).lists).toEqual(plain.lists);
  });
});

describe('exclude_items and allow_items', () => {
  it('are honoured, within the filter, for known and cold-start users; unknown ids are ignored', async () => {
    const top = ok(await ask(demo, 'v1 REST', { user_id: '2', k: 3 })).lists[0].items;
    const a = ok(await everywhere(demo, { users: ['2', 'api-stranger'], k: 3, exclude_items: [top[0], 'nope'] }));
    expect(a.lists[0].items).toEqual(ok(await ask(demo, 'v1 REST', { user_id: '2', k: 4 })).lists[0].items.slice(1));
    for (const l of a.lists) expect(l.items).not.toContain(top[0]);
    const allow = ['3', '11', '19', '27', '4', 'nope'];
    const b = ok(await everywhere(demo, { users: ['2', 'api-stranger'], k: 10, allow_items: allow, exclude_seen: false }));
    for (const l of b.lists) {
      expect(l.items.length).toBe(5);
      for (const id of l.items) expect(allow).toContain(id);
    }
    const comedies = allow.filter((id) => demo.artifact.catalog![Number(id) - 1]?.genre === 'Comedy');
    const c = ok(await everywhere(demo, { user_id: '2', k: 10, allow_items: allow, filter: { genre: 'Comedy' }, exclude_seen: false }));
    expect([...c.lists[0].items].sort()).toEqual([...comedies].sort());
  });

  it('that leave nothing say so, with how many items the filter allowed, on every transport', async () => {
    const a = ok(await everywhere(demo, { user_id: '1', k: 3, allow_items: ['nope'] }));
    expect(a.lists[0].items).toEqual([]);
    expect(a.nothing).toEqual({ nothing_matched: true, filter_allowed: 0 });
    const f = ok(await everywhere(demo, { user_id: '1', k: 3, filter: { genre: 'Opera' } }));
    expect(f.nothing).toEqual({ nothing_matched: true, filter_allowed: 0 });
    const tags = (await postJson(`${demo.ts.url}/api/v1.0/predictions`, { data: { ndarray: [['1']] }, meta: { tags: { allow_items: ['nope'] } } })).body.meta.tags;
    expect(tags).toMatchObject({ nothing_matched: true, filter_allowed: 0 });
    expect(ok(await ask(demo, 'v1 REST', { user_id: '1', k: 3, filter: { genre: 'Comedy' } })).nothing).toBeNull();
  });
});

describe('pagination', () => {
  it('pages concatenate to the top-(k·pages) list, for known, cold-start and session lists, on every transport', async () => {
    for (const base of [{ users: ['1', 'api-page-stranger'] }, { items: ['18', '35'] }, { similar_to: '18' }] as Json[]) {
      const whole = ok(await everywhere(demo, { ...base, k: 15 }));
      const pages = await Promise.all([0, 5, 10].map(async (offset) => ok(await everywhere(demo, { ...base, k: 5, offset }))));
      whole.lists.forEach((l, r) => {
        expect(pages.flatMap((p) => p.lists[r].items)).toEqual(l.items);
        expect(pages.flatMap((p) => p.lists[r].scores)).toEqual(l.scores);
      });
    }
  });

  it('over a reranked list stay stable and non-overlapping', async () => {
    const rerank = { diversify: { field: 'genre', max_per_value: 3 }, rules: [{ field: 'genre', value: 'drama', multiply: 1.2 }] };
    const whole = ok(await everywhere(demo, { user_id: '3', k: 12, ...rerank }));
    const pages = await Promise.all([0, 4, 8].map(async (offset) => ok(await everywhere(demo, { user_id: '3', k: 4, offset, ...rerank }))));
    expect(pages.flatMap((p) => p.lists[0].items)).toEqual(whole.lists[0].items);
  });

  it('table answers number their rows from the top of the list', async () => {
    const r = await postJson(`${demo.ts.url}/api/v1.0/predictions`, { data: { ndarray: [['1']] }, meta: { tags: { k: 3, offset: 6 } } });
    expect(r.body.data.ndarray.map((row: unknown[]) => row[3])).toEqual([7, 8, 9]);
    const whole = ok(await ask(demo, 'v1 REST', { user_id: '1', k: 9 })).lists[0].items;
    expect(r.body.data.ndarray.map((row: unknown[]) => row[1])).toEqual(whole.slice(6));
  });
});

describe('scores', () => {
  it('rank by the unclamped score, report the clamped rating beside it, 6 significant digits everywhere', async () => {
    const r = await postJson(`${demo.ts.url}/api/v1.0/predictions`, { jsonData: { users: demo.artifact.userIds.slice(0, 50), k: 5 } });
    const items = r.body.jsonData.recommendations.flatMap((l: any) => l.items);
    const over = items.filter((i: any) => i.score > 5);
    expect(over.length).toBeGreaterThan(0); // the demo model predicts above its range for some pairs
    for (const i of items) {
      expect(i.rating).toBe(Math.min(5, Math.max(1, i.score)));
      expect(Number(i.score.toPrecision(6))).toBe(i.score);
    }
    for (const l of r.body.jsonData.recommendations) for (let j = 1; j < l.items.length; j++) expect(l.items[j - 1].score).toBeGreaterThanOrEqual(l.items[j].score);
    const v2 = await postJson(`${demo.ts.url}/v2/models/${demo.model}/infer`, { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1'] }], outputs: [{ name: 'score' }, { name: 'rating' }] });
    expect(v2.body.outputs.map((o: any) => o.name)).toEqual(['score', 'rating']);
    v2.body.outputs[1].data.forEach((rating: number, j: number) => expect(rating).toBe(Math.fround(Math.min(5, v2.body.outputs[0].data[j]))));
    // Pair scores stay the predicted rating, clamped.
    const pairs = await postJson(`${demo.ts.url}/api/v1.0/predictions`, { jsonData: { pairs: over.slice(0, 1).map((i: any) => [r.body.jsonData.recommendations.find((l: any) => l.items.includes(i)).user_id, i.item_id]) } });
    expect(pairs.body.jsonData.scores).toEqual([5]);
  });
});

describe('explanations', () => {
  it('name up to 3 items of the user history closest to each item (by factor cosine), on every transport', async () => {
    const a = demo.artifact;
    const u = a.userIds.indexOf('4');
    const history = Array.from(a.seen![u]);
    const answer = ok(await everywhere(demo, { user_id: '4', k: 5, explain: true }));
    const l = answer.lists[0];
    l.items.forEach((id, r) => {
      const i = a.itemIds.indexOf(id);
      const want = history
        .map((h) => ({ h, s: cos(factorRow(a, i), factorRow(a, h)) }))
        .sort((x, y) => y.s - x.s || x.h - y.h)
        .slice(0, 3);
      const got = l.because![r] as { item_id: string; similarity: number; title: string }[];
      expect(got.map((b) => b.item_id)).toEqual(want.map((w) => a.itemIds[w.h]));
      got.forEach((b, j) => {
        expect(b.similarity).toBeCloseTo(want[j].s, 4);
        expect(b.title).toBe(a.catalog![want[j].h].title);
      });
    });
  });

  it('include the session items, and say why for cold-start users', async () => {
    const s = ok(await everywhere(demo, { items: ['18'], k: 3, explain: true }));
    for (const b of s.lists[0].because!) expect((b as { item_id: string }[]).map((x) => x.item_id)).toEqual(['18']);
    const cold = ok(await everywhere(demo, { user_id: 'api-explain-stranger', k: 3, explain: true }));
    expect(cold.lists[0].strategy).toBe('cold_start');
    expect(cold.lists[0].because).toEqual(['popular with recent visitors', 'popular with recent visitors', 'popular with recent visitors']);
  });
});

describe('rules, pins and diversity from the request', () => {
  it('boost a field value, pin an item at a position, cap items per value', async () => {
    const a = demo.artifact;
    const boosted = ok(await everywhere(demo, { user_id: '5', k: 5, rules: [{ field: 'genre', value: 'Documentary', multiply: 3 }] }));
    expect(a.catalog![a.itemIds.indexOf(boosted.lists[0].items[0])].genre).toBe('Documentary');
    const seen = new Set(a.seen![a.userIds.indexOf('5')]);
    const pin = a.itemIds.find((_, i) => !seen.has(i) && a.catalog![i].genre === 'Animation')!;
    const pinned = ok(await everywhere(demo, { user_id: '5', k: 5, pins: [{ item_id: pin, position: 2 }] }));
    expect(pinned.lists[0].items[1]).toBe(pin);
    // A pinned item keeps its model score, also where diversity (or the pool) left it out.
    const both = ok(await everywhere(demo, { user_id: '5', k: 3, diversify: { field: 'genre', max_per_value: 1 }, pins: [{ item_id: pin, position: 1 }] }));
    expect(both.lists[0].items[0]).toBe(pin);
    for (const sc of both.lists[0].scores) expect(Number.isFinite(sc)).toBe(true);
    const capped = ok(await everywhere(demo, { user_id: '5', k: 6, diversify: { field: 'genre', max_per_value: 1 } }));
    const genres = capped.lists[0].items.map((id) => a.catalog![a.itemIds.indexOf(id)].genre);
    expect(new Set(genres).size).toBe(6);
  });
});

describe("the model's default rules", () => {
  it('apply unless the request replaces them (an empty list turns them off)', async () => {
    const a = withDefaults.artifact;
    const user = a.userIds[3];
    const buried = ok(await everywhere(withDefaults, { user_id: user, k: 8 }));
    const genres = (ids: string[]) => ids.flatMap((id) => [a.catalog![a.itemIds.indexOf(id)].genre].flat());
    expect(genres(buried.lists[0].items)).not.toContain('Action');
    const off = ok(await everywhere(withDefaults, { user_id: user, k: 8, rules: [] }));
    const plain = ok(await everywhere(trained, { user_id: user, k: 8 }));
    expect(off.lists).toEqual(plain.lists);
    expect(genres(plain.lists[0].items)).toContain('Action');
  });
});

describe('bad input: the protocol error, nothing crashes', () => {
  const cases: [string, Json][] = [
    ['too many similar_to ids', { similar_to: Array.from({ length: 101 }, (_, i) => String(i + 1)) }],
    ['too many session items', { items: Array.from({ length: 101 }, (_, i) => String(i + 1)) }],
    ['too many exclude_items', { user_id: '1', exclude_items: Array.from({ length: 1001 }, (_, i) => `x${i}`) }],
    ['a negative offset', { user_id: '1', offset: -1 }],
    ['a page past the page limit', { user_id: '1', k: 10, offset: 995 }],
    ['weights of another length', { items: ['18', '35'], weights: [1] }],
    ['a weight above 1', { items: ['18'], weights: [2] }],
    ['weights without items', { user_id: '1', weights: [1] }],
    ['all weights zero', { items: ['18'], weights: [0] }],
    ['similar_to with a user', { user_id: '1', similar_to: '18' }],
    ['a session for several users', { users: ['1', '2'], items: ['18'] }],
    ['a rule without multiply or add', { user_id: '1', rules: [{ field: 'genre', value: 'Drama' }] }],
    ['a rule multiplying past 100', { user_id: '1', rules: [{ field: 'genre', value: 'Drama', multiply: 1000 }] }],
    ['diversify on no catalog field', { user_id: '1', diversify: { field: 'colour' } }],
    ['a reranked page past the pool', { user_id: '1', k: 10, offset: 495, pins: [{ item_id: '3', position: 1 }] }],
  ];
  for (const [name, options] of cases) {
    it(name, async () => {
      const a = await everywhere(demo, options);
      expect(a.ok).toBe(false);
      if (!a.ok) expect(a.kind).toBe('bad_data');
    });
  }

  it('non-finite weights (JSON text on gRPC parameters) and an unknown session item', async () => {
    const r = await tryCall(demo.v2, 'ModelInfer', { model_name: demo.model, parameters: params({ items: ['18'], weights: '[1e999]' }), inputs: [] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe(3);
    const unknown = await everywhere(demo, { items: ['no-such-item'] });
    expect(unknown.ok ? null : unknown.kind).toBe('not_found');
    // The server still answers.
    expect(ok(await ask(demo, 'V2 gRPC', { user_id: '1', k: 2 })).lists[0].items).toHaveLength(2);
  });
});

describe('openapi.yaml examples', () => {
  it('of predict and V2 infer all succeed when executed against the demo model', async () => {
    const { doc } = openapi();
    const bodies = (doc as any).components.requestBodies;
    const run = async (route: string, examples: Record<string, { value: unknown }>) => {
      for (const [name, ex] of Object.entries(examples)) {
        const r = await postJson(`${demo.ts.url}${route}`, ex.value);
        expect(r.status, `${name}: ${JSON.stringify(r.body).slice(0, 300)}`).toBe(200);
      }
    };
    await run('/api/v1.0/predictions', bodies.SeldonMessageBody.content['application/json'].examples);
    const v2 = Object.values(bodies).find((b: any) => b.content?.['application/json']?.schema?.$ref === '#/components/schemas/V2InferRequest') as any;
    await run(`/v2/models/${demo.model}/infer`, v2.content['application/json'].examples);
  });
});
