// What one recommendation request may cost and what it answers at the edges, over real sockets against
// the demo model on all four transports: the ranked-items bound (lists × offset + k, or × the rerank
// pool), turns for the event loop between reranked users, rule values counted with the filter's, rule
// scores kept finite, nothing_matched only when nothing could match, and refusals that name the real
// problem (similar_to's length, the rule at fault, NaN and huge numbers, jsonData-only table tags).
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecommendRequest } from '../../src/model/recommender.js';
import { tryCall } from '../helpers/grpc-client.js';
import { postJson } from '../helpers/server.js';
import { idInput } from '../grpc/v2-client.js';
import { tempDir } from '../train/helpers.js';
import { ask, closeAll, everywhere, ok, serve, TRANSPORTS, type Answer, type Json, type Served } from './transports.js';

const servers: Served[] = [];
let demo: Served;
/** The demo model with RECSERVE_MAX_RANKED_ITEMS=100 and RECSERVE_RERANK_POOL=20. */
let tight: Served;
/** The same, its model-settings.json giving a default rule (so every list is reranked). */
let tightRuled: Served;

const TIGHT = { RECSERVE_MAX_RANKED_ITEMS: '100', RECSERVE_RERANK_POOL: '20' };
const FLOAT32_MAX = 3.4028234663852886e38;
const usersOf = (n: number, prefix = 'bounds-user-') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

beforeAll(async () => {
  demo = await serve(servers, {}, null);
  tight = await serve(servers, TIGHT, null);
  const ruled = path.join(tempDir('recserve-bounds-'), 'ruled');
  cpSync(path.join(demo.ts.dataDir, 'demo-model'), ruled, { recursive: true });
  writeFileSync(path.join(ruled, 'model-settings.json'), JSON.stringify({ parameters: { rules: [{ field: 'genre', value: 'drama', multiply: 1.5 }] } }));
  tightRuled = await serve(servers, { ...TIGHT, MODEL_PATH: ruled }, ruled);
}, 60_000);

afterAll(() => closeAll(servers));

/** Refused as bad data on every transport; the v1 REST message. */
async function refused(s: Served, options: Json): Promise<string> {
  const a = await everywhere(s, options);
  expect(a.ok, 'refused').toBe(false);
  if (a.ok) return '';
  expect(a.kind).toBe('bad_data');
  const v1 = (await ask(s, 'v1 REST', options)) as Extract<Answer, { ok: false }>;
  return v1.message;
}

describe('RECSERVE_MAX_RANKED_ITEMS', () => {
  it('bounds lists × (offset + k), the depth a page ranks, not only the items it answers', async () => {
    expect(ok(await everywhere(tight, { users: usersOf(10), k: 10 })).lists).toHaveLength(10);
    expect(await refused(tight, { users: usersOf(11), k: 10 })).toMatch(/11 lists × offset \+ k = 10 would rank 110 items; at most 100 .*RECSERVE_MAX_RANKED_ITEMS=100/);
    // 5 × 10 answered items, but 5 × 25 ranked.
    expect(await refused(tight, { users: usersOf(5), k: 10, offset: 15 })).toMatch(/would rank 125 items.*RECSERVE_MAX_RANKED_ITEMS=100/);
    expect(await refused(tight, { users: [...usersOf(3), ...tight.artifact.userIds.slice(0, 3)], k: 5, offset: 12 })).toMatch(/6 lists/);
  });

  it('counts the rerank pool for each reranked list, the model default rules included', async () => {
    const mmr = { diversify: { mmr_lambda: 0.5 } };
    expect(ok(await everywhere(tight, { users: usersOf(5), k: 2, ...mmr })).lists).toHaveLength(5);
    expect(await refused(tight, { users: usersOf(6), k: 2, ...mmr })).toMatch(/6 lists × the rerank pool of 20 .* would rank 120 items.*RECSERVE_MAX_RANKED_ITEMS=100/);
    expect(await refused(tight, { users: tight.artifact.userIds.slice(0, 6), k: 1, pins: [{ item_id: '3', position: 1 }] })).toMatch(/rerank pool/);
    // The model's default rule reranks every list; an empty rule list turns it off.
    expect(await refused(tightRuled, { users: usersOf(6), k: 2 })).toMatch(/rerank pool/);
    expect(ok(await everywhere(tightRuled, { users: usersOf(6), k: 2, rules: [] })).lists).toHaveLength(6);
  });
});

describe('reranked users', () => {
  it('let the event loop turn between them (cold start too): a plain request answers while a reranked one is under way', async () => {
    const model = demo.ts.server.registry.current!;
    const request = (users: string[], rerank?: RecommendRequest['rerank']): RecommendRequest => ({ users, k: 5, excludeSeen: true, filter: null, ...(rerank ? { rerank } : {}) });
    for (const users of [usersOf(20, 'turn-stranger-'), model.artifact.userIds.slice(0, 20)]) {
      let rerankedDone = false;
      const reranked = model.answer(request(users, { diversify: { mmrLambda: 0.5 } })).then((a) => ((rerankedDone = true), a));
      // Cold-start lists without reranking take no turn: this answer is complete before the reranked one.
      await model.answer(request(['turn-plain-stranger']));
      expect(rerankedDone).toBe(false);
      expect((await reranked).recommendations.map((r) => r.items.length)).toEqual(users.map(() => 5));
    }
  });
});

describe('rule values', () => {
  const values = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  it('count toward RECSERVE_MAX_FILTER_VALUES together with the filter, refused before any work', async () => {
    const rules = [
      { field: 'genre', value: values(300, 'g'), multiply: 2 },
      { field: 'title', value: { in: values(150, 't'), not: values(150, 'n') }, add: 1 },
    ];
    expect(ok(await everywhere(demo, { user_id: '1', k: 3, rules })).lists[0].items).toHaveLength(3);
    const message = await refused(demo, { user_id: '1', k: 3, rules, filter: { genre: { not: values(500, 'x') } } });
    expect(message).toMatch(/the filter and rules name 1100 values in all \(rules 600\); at most 1000 together .*RECSERVE_MAX_FILTER_VALUES=1000/);
  });
});

describe('rule scores', () => {
  it('stay finite and ordered when 32 ×100 rules multiply past float32 (no null on REST, no Infinity on gRPC)', async () => {
    const rules = Array.from({ length: 32 }, () => ({ field: 'genre', value: 'Drama', multiply: 100 }));
    const a = demo.artifact;
    for (const transport of TRANSPORTS) {
      const answer = ok(await ask(demo, transport, { user_id: '1', k: 5, rules }));
      const { items, scores } = answer.lists[0];
      if (transport === 'v1 REST') for (const i of (answer.raw.jsonData.recommendations ?? [answer.raw.jsonData]).flatMap((l: any) => l.items)) expect(typeof i.score, transport).toBe('number');
      if (transport === 'V2 REST') for (const v of answer.raw.outputs.find((o: any) => o.name === 'score').data) expect(typeof v, transport).toBe('number');
      for (const s of scores) expect(Number.isFinite(s) && Math.abs(s) <= FLOAT32_MAX, `${transport}: ${s}`).toBe(true);
      for (let j = 1; j < scores.length; j++) expect(scores[j - 1], transport).toBeGreaterThanOrEqual(scores[j]);
      expect(a.catalog![a.itemIds.indexOf(items[0])].genre, transport).toBe('Drama');
    }
  });
});

describe('nothing_matched', () => {
  it('is not set on a page past the end of a filtered list (known users and similar items)', async () => {
    const drama = demo.artifact.catalog!.filter((row) => row.genre === 'Drama').length;
    for (const options of [{ user_id: '2', k: 10, offset: 200 }, { similar_to: '18', k: 5, offset: drama + 5 }]) {
      const a = ok(await everywhere(demo, { ...options, filter: { genre: 'Drama' } }));
      expect(a.lists[0].items).toEqual([]);
      expect(a.nothing).toBeNull();
    }
  });

  it('is set when the exclusions leave nothing of what the filter allowed', async () => {
    const a = ok(await everywhere(demo, { user_id: '2', k: 3, allow_items: ['3'], exclude_items: ['3'] }));
    expect(a.lists[0].items).toEqual([]);
    expect(a.nothing).toEqual({ nothing_matched: true, filter_allowed: 1 });
  });
});

describe('refusals name the real problem', () => {
  it('similar_to: an empty or too long list is about its length, not its type', async () => {
    expect(await refused(demo, { similar_to: [], k: 5 })).toMatch(/similar_to is an empty list/);
    const long = await refused(demo, { similar_to: Array.from({ length: 101 }, (_, i) => String(i + 1)), k: 5 });
    expect(long).toMatch(/similar_to lists 101 items; at most 100 .*RECSERVE_MAX_QUERY_ITEMS=100/);
    for (const transport of TRANSPORTS) {
      const a = await ask(demo, transport, { similar_to: [], k: 5 });
      expect(a.ok ? 'answered' : a.message, transport).not.toMatch(/must be string/);
    }
  });

  it('a rule on an unknown field names the rule, not the filter', async () => {
    const unknown = await refused(demo, { user_id: '1', rules: [{ field: 'genre', value: 'Drama', add: 1 }, { field: 'nofield', value: 'x', multiply: 2 }] });
    expect(unknown).toMatch(/^rules\/1\/field: "nofield" is not a catalog field of this model$/);
  });

  it('V2 gRPC: NaN and 2^63 − 1 as k or offset are read as what they are', async () => {
    const infer = (parameters: Json) => tryCall(demo.v2, 'ModelInfer', { model_name: demo.model, parameters, inputs: [idInput('user_id', ['1'])] });
    const nan = await infer({ k: { double_param: Number.NaN } });
    expect(nan.ok ? 'answered' : nan.details).toMatch(/parameters\.k must be a whole number, got NaN/);
    const huge = await infer({ offset: { int64_param: '9223372036854775807' } });
    expect(huge.ok ? 'answered' : huge.details).toMatch(/parameters\.offset must be a whole number within ±\(2\^53 − 1\), got 9223372036854775807 \(too large\)/);
  });

  it('a table request refuses the options only jsonData carries, instead of ignoring them', async () => {
    const table = (tags: Json) => postJson(`${demo.ts.url}/api/v1.0/predictions`, { data: { names: ['user_id'], ndarray: [['1']] }, meta: { tags: { k: 3, ...tags } } });
    const r = await table({ explain: true, similar_to: '1', items: ['5'] });
    expect(r.status).toBe(400);
    expect(r.body.status.info).toBe('meta.tags.explain, meta.tags.similar_to, meta.tags.items: explain, similar_to, items are only read from jsonData; the tabular form answers plain top-k');
    expect((await table({ weights: [1] })).body.status.info).toMatch(/^meta\.tags\.weights: weights is only read from jsonData/);
    const pairs = await postJson(`${demo.ts.url}/api/v1.0/predictions`, { data: { names: ['user_id', 'item_id'], ndarray: [['1', '5']] }, meta: { tags: { explain: true } } });
    expect(pairs.status).toBe(400);
    expect((await table({ offset: 3 })).status).toBe(200);
  });
});
