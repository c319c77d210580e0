// predict → feedback → predict over real HTTP on the demo model (users "1".."300", items "1".."120",
// genre = GENRES[(id − 1) mod 8]): the cold-start ranking learns from rewards (and keeps it across a
// restart), a known user's and a new user's rankings follow their feedback (fold-in), every payload
// form of feedback is stored, invalid feedback is a 400 that stores nothing, and a store that cannot
// take writes makes feedback a loud 503.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteStore } from '../../src/feedback/store/sqlite.js';
import { buildDemo } from '../../src/model-format/demo.js';
import { itemsOf, post, startFeedbackServer, tempDir, type FeedbackTestServer } from './helpers.js';

const catalog = buildDemo().extras.catalog;
const genreOf = (itemId: string) => catalog[Number(itemId) - 1].genre as string;
const itemsOfGenre = (g: string) => catalog.map((c, i) => [String(i + 1), c.genre] as const).filter(([, cg]) => cg === g).map(([id]) => id);

let t: FeedbackTestServer;
const predict = (body: unknown) => post(`${t.url}/api/v1.0/predictions`, body);
const feedback = (body: unknown) => post(`${t.url}/api/v1.0/feedback`, body);
const stats = () => t.server.feedback.stores.peek()!.stats();

beforeAll(async () => {
  t = await startFeedbackServer();
});
afterAll(async () => t?.stop());

describe('cold start by Thompson sampling', () => {
  it('moves a rewarded item to the top of the cold-start ranking, and keeps it across a restart', async () => {
    const first = await predict({ jsonData: { user_id: 'visitor-0', k: 10 } });
    expect(first.status).toBe(200);
    expect(first.body.jsonData.recommendations[0].strategy).toBe('cold_start');
    const before = itemsOf(first.body);
    // The item the first visitor saw last: rewarded whenever a cold visitor is shown it; everything
    // else shown is skipped.
    const star = before[9];
    let shownStar = 0;
    for (let n = 1; n <= 60; n++) {
      const p = await predict({ jsonData: { user_id: `visitor-${n}`, k: 10 } });
      const shown = itemsOf(p.body);
      const hit = shown.includes(star);
      if (hit) shownStar++;
      const fb = await feedback({ response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: hit ? [star] : [] } });
      expect(fb.status, JSON.stringify(fb.body)).toBe(200);
    }
    expect(shownStar).toBeGreaterThan(0);
    const after = itemsOf((await predict({ jsonData: { user_id: 'visitor-0', k: 10 } })).body);
    expect(after).not.toEqual(before);
    const tops = await Promise.all(['fresh-a', 'fresh-b', 'fresh-c', 'fresh-d'].map(async (u) => itemsOf((await predict({ jsonData: { user_id: u, k: 10 } })).body)));
    for (const top of tops) expect(top.indexOf(star)).toBeLessThan(3);
    console.log(`[cold start] visitor-0 before ${before.join(',')} → after ${after.join(',')}; rewarded item ${star} (shown ${shownStar}×) now ranks ${tops.map((x) => x.indexOf(star) + 1).join('/')} for 4 new visitors`);

    // Restart on the same data directory: the posterior is rebuilt from the store.
    const counts = t.server.feedback.bandit.countsOf(star);
    await t.stop({ keepDir: true });
    t = await startFeedbackServer({}, t.dataDir);
    expect(t.server.feedback.bandit.countsOf(star)).toEqual(counts);
    const again = await Promise.all(['fresh-a', 'fresh-e'].map(async (u) => itemsOf((await predict({ jsonData: { user_id: u, k: 10 } })).body)));
    for (const top of again) expect(top.indexOf(star)).toBeLessThan(3);
  });

  it('answers a cold user the same over repeated calls until the posterior changes', async () => {
    const a = itemsOf((await predict({ jsonData: { user_id: 'steady', k: 8 } })).body);
    const b = itemsOf((await predict({ data: { ndarray: [['steady']] }, meta: { tags: { k: 8 } } }).then((r) => ({ body: { jsonData: { recommendations: [{ items: r.body.data.ndarray.map((row: string[]) => ({ item_id: row[1] })) }] } } }))).body);
    expect(b).toEqual(a);
  });

  it('fills exploration slots of a known user from the bandit when asked (meta.tags.explore)', async () => {
    const r = await predict({ jsonData: { user_id: '5', k: 6 }, meta: { tags: { explore: 2 } } });
    expect(r.status).toBe(200);
    const items = r.body.jsonData.recommendations[0].items;
    expect(items).toHaveLength(6);
    expect(items.slice(0, 4).every((i: { exploration?: boolean }) => !i.exploration)).toBe(true);
    expect(items.slice(4).every((i: { exploration?: boolean }) => i.exploration === true)).toBe(true);
    const fb = await feedback({ response: { meta: { puid: r.body.meta.puid } }, reward: 1, truth: { jsonData: [items[5].item_id] } });
    expect(fb.status).toBe(200);
    const rows = await t.server.feedback.stores.peek()!.userInteractions('5');
    expect(rows.filter((x) => x.servedBy === 'exploration').map((x) => [x.itemId, x.kind])).toEqual([
      [items[4].item_id, 'skipped'],
      [items[5].item_id, 'chosen'],
    ]);
    expect((await predict({ jsonData: { user_id: '5', k: 3 }, meta: { tags: { explore: 4 } } })).status).toBe(400);
    expect((await predict({ jsonData: { user_id: '5', k: 3 }, meta: { tags: { explore: -1 } } })).status).toBe(400);
  });
});

describe('online fold-in', () => {
  it("changes a known user's ranking towards what they chose, within one request", async () => {
    const before = itemsOf((await predict({ jsonData: { user_id: '1', k: 10 } })).body);
    const counts = (list: string[]) => list.reduce<Record<string, number>>((m, i) => ((m[genreOf(i)] = (m[genreOf(i)] ?? 0) + 1), m), {});
    const genres = ['Action', 'Comedy', 'Drama', 'Sci-Fi', 'Romance', 'Thriller', 'Animation', 'Documentary'];
    const target = genres.sort((a, b) => (counts(before)[a] ?? 0) - (counts(before)[b] ?? 0))[0];
    const chosen = itemsOfGenre(target).filter((i) => !before.includes(i)).slice(0, 4);
    const p = await predict({ jsonData: { user_id: '1', k: 10 } });
    const pairBefore = (await predict({ jsonData: { pairs: [['1', itemsOfGenre(target)[6]]] } })).body.jsonData.scores[0];
    const fb = await feedback({ response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { data: { names: ['item_id'], ndarray: chosen.map((i) => [i]) } } });
    expect(fb.status, JSON.stringify(fb.body)).toBe(200);
    expect(fb.body.meta.tags.folded_in_users).toEqual(['1']);
    const after = await predict({ jsonData: { user_id: '1', k: 10 } });
    const afterItems = itemsOf(after.body);
    expect(after.body.jsonData.recommendations[0].strategy).toBe('personalized');
    expect(counts(afterItems)[target] ?? 0).toBeGreaterThan(counts(before)[target] ?? 0);
    for (const c of chosen) expect(afterItems).not.toContain(c); // chosen items are now seen
    const pairAfter = (await predict({ jsonData: { pairs: [['1', itemsOfGenre(target)[6]]] } })).body.jsonData.scores[0];
    expect(pairAfter).toBeGreaterThan(pairBefore);
    console.log(`[fold-in] user 1 chose 4 ${target} items: ${target} in top 10 ${counts(before)[target] ?? 0} → ${counts(afterItems)[target]}; before ${before.join(',')} → after ${afterItems.join(',')}`);
  });

  it('gives a new user a personalized list once it has chosen enough items', async () => {
    const p = await predict({ jsonData: { user_id: 'newcomer', k: 10 } });
    expect(p.body.jsonData.recommendations[0].strategy).toBe('cold_start');
    const comedies = itemsOfGenre('Comedy').slice(0, 3);
    const fb = await feedback({ response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: { item_ids: comedies } } });
    expect(fb.status).toBe(200);
    const after = await predict({ jsonData: { user_id: 'newcomer', k: 10 } });
    const rec = after.body.jsonData.recommendations[0];
    expect(rec.strategy).toBe('personalized');
    const list = rec.items.map((i: { item_id: string }) => i.item_id);
    expect(list.filter((i: string) => genreOf(i) === 'Comedy').length).toBeGreaterThanOrEqual(5);
    for (const c of comedies) expect(list).not.toContain(c);
  });
});

describe('feedback forms', () => {
  it('stores feedback given as full payloads (no puid), tables, tensors, strData and pair scores', async () => {
    const store = t.server.feedback.stores.peek()!;
    // jsonData request + response, no puid known to the server: the cold-start impressions are the
    // client's claim, stored as such ('claimed') and never counted by the bandit
    const arm7 = t.server.feedback.bandit.countsOf('7');
    let r = await feedback({
      request: { jsonData: { user_id: 'form-1', k: 2 } },
      response: { jsonData: { recommendations: [{ user_id: 'form-1', strategy: 'cold_start', items: [{ item_id: '7', score: 0.3 }, { item_id: '8', score: 0.2 }] }] } },
      reward: 0.7,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((await store.userInteractions('form-1')).map((x) => [x.itemId, x.reward, x.kind, x.servedBy])).toEqual([
      ['7', 0.7, 'list', 'claimed'],
      ['8', 0.7, 'list', 'claimed'],
    ]);
    expect(t.server.feedback.bandit.countsOf('7')).toEqual(arm7);
    // long-form table answer (what ndarray requests get), truth as a tensor of ids
    r = await feedback({
      request: { data: { ndarray: [['2'], ['form-2']] } },
      response: { data: { names: ['user_id', 'item_id', 'score', 'rank'], ndarray: [['2', '11', 4.1, 1], ['form-2', '12', 0.2, 1]] }, meta: { tags: { cold_start_users: ['form-2'] } } },
      reward: 1,
      truth: { data: { tensor: { shape: [1], values: [12] } } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((await store.userInteractions('form-2')).map((x) => [x.itemId, x.kind, x.servedBy])).toEqual([['12', 'chosen', 'claimed']]);
    expect((await store.userInteractions('2')).at(-1)).toMatchObject({ itemId: '11', kind: 'skipped', reward: 0, servedBy: 'personalized' });
    // strData truth, request only (the truth names the item)
    r = await feedback({ request: { strData: 'form-3' }, reward: 0.5, truth: { strData: '33, 34' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((await store.userInteractions('form-3')).map((x) => [x.itemId, x.reward, x.servedBy])).toEqual([
      ['33', 0.5, 'not_shown'],
      ['34', 0.5, 'not_shown'],
    ]);
    // pair scores by puid
    const p = await predict({ data: { names: ['user_id', 'item_id'], ndarray: [['3', '40'], ['3', '41']] } });
    r = await feedback({ response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: { item_id: '41' } } });
    expect(r.status).toBe(200);
    expect((await store.userInteractions('3')).slice(-2).map((x) => [x.itemId, x.reward, x.servedBy])).toEqual([
      ['40', 0, 'pairs'],
      ['41', 1, 'pairs'],
    ]);
  });

  it('refuses invalid feedback with a clear 400 and stores nothing', async () => {
    const before = await stats();
    const multi = await predict({ jsonData: { users: ['1', '2'], k: 2 } });
    // An unknown puid, `{reward}` alone and a request without items are reward-only feedback now (200):
    // see test/feedback/reward-only.test.ts.
    const cases: [unknown, RegExp][] = [
      [{ response: { meta: { puid: multi.body.meta.puid } }, reward: 1.5 }, /reward/],
      [{ response: { meta: { puid: multi.body.meta.puid } }, reward: -0.1 }, /reward/],
      [{ response: { meta: { puid: multi.body.meta.puid } }, reward: 'NaN' }, /reward/],
      [{ response: { meta: { puid: multi.body.meta.puid } }, reward: 1, truth: { jsonData: ['119'] } }, /not shown to any of the 2 users/],
      [{ response: { meta: { puid: multi.body.meta.puid } }, reward: 1, truth: { jsonData: { colour: 'red' } } }, /name the chosen items/],
      [{ response: { meta: { puid: multi.body.meta.puid } }, reward: 1, truth: { data: { ndarray: [['1', '2']] } } }, /item_id column/],
      [{ request: { jsonData: { user_id: 'x', k: 0 } }, reward: 1 }, /feedback request: .*k/],
    ];
    for (const [body, msg] of cases) {
      const r = await feedback(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.status.reason).toBe('MICROSERVICE_BAD_DATA');
      expect(r.body.status.info).toMatch(msg);
    }
    expect(await stats()).toEqual(before);
  });
});

describe('a store that cannot take writes', () => {
  it('answers 503 when the disk is full or the store read-only, stores nothing, and recovers', async () => {
    const store = t.server.feedback.stores.peek() as SqliteStore;
    const before = await stats();
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    const p = await predict({ jsonData: { user_id: 'disk', k: 5 } });
    const fb = { response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: Array.from({ length: 120 }, (_, i) => String(i + 1)) } };
    store.db.pragma(`max_page_count = ${pages}`); // a full disk: SQLite cannot grow the file
    let r = await feedback(fb);
    expect(r.status).toBe(503);
    expect(r.body.status.reason).toBe('MICROSERVICE_UNAVAILABLE');
    // The client learns only that the store is unavailable; why goes to the log under the same request id.
    expect(r.body.status.info).toMatch(/interaction store unavailable \(request id [0-9a-f]+\)/);
    expect(t.logs.some((l) => /full/i.test(JSON.stringify(l)))).toBe(true);
    store.db.pragma('max_page_count = 1073741823');
    store.db.pragma('query_only = ON'); // a read-only store
    r = await feedback(fb);
    expect(r.status).toBe(503);
    expect(r.body.status.info).toMatch(/interaction store unavailable \(request id [0-9a-f]+\)/);
    expect(t.logs.some((l) => /readonly|read-only|read only/i.test(JSON.stringify(l)))).toBe(true);
    expect(await stats()).toEqual(before);
    expect(t.logs.some((l) => l.level === 50 && String(l.msg).includes('feedback NOT stored'))).toBe(true);
    store.db.pragma('query_only = OFF');
    r = await feedback(fb);
    expect(r.status).toBe(200);
    expect((await stats()).feedback).toBe(before.feedback + 1);
  });

  it('serves predictions but refuses feedback with 503 while the store cannot be opened', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'interactions.db')); // a directory where the database file must go
    const s = await startFeedbackServer({ RECSERVE_STORE_RETRY_MS: '50' }, dir);
    try {
      const p = await post(`${s.url}/api/v1.0/predictions`, { jsonData: { user_id: 'u-x', k: 3 } });
      expect(p.status).toBe(200);
      const fb = { response: { meta: { puid: p.body.meta.puid } }, reward: 1 };
      const r = await post(`${s.url}/api/v1.0/feedback`, fb);
      expect(r.status).toBe(503);
      expect(r.body.status.info).toMatch(/interaction store unavailable \(request id [0-9a-f]+\)/);
      expect(r.body.status.info).not.toContain('interactions.db');
      rmSync(path.join(dir, 'interactions.db'), { recursive: true });
      await new Promise((res) => setTimeout(res, 80));
      const ok = await post(`${s.url}/api/v1.0/feedback`, fb);
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    } finally {
      await s.stop();
    }
  });
});
