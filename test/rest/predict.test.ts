// Predict over real HTTP against a real ONNX session (the demo model), in every payload form and
// every way of sending a message the Seldon wrapper accepts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ PREDICTIVE_UNIT_ID: 'recommender', PREDICTIVE_UNIT_IMAGE: 'repo/recserve:0.1' });
});
afterAll(async () => t?.stop());

const predict = (body: unknown, path = '/api/v1.0/predictions') => postJson(t.url + path, body);

describe('jsonData recommendations', () => {
  it('returns k personalized items with catalog fields, sorted by score', async () => {
    const r = await predict({ jsonData: { user_id: '1', k: 5 } });
    expect(r.status).toBe(200);
    const [rec] = r.body.jsonData.recommendations;
    expect(rec.user_id).toBe('1');
    expect(rec.strategy).toBe('personalized');
    expect(rec.items).toHaveLength(5);
    for (const it of rec.items) {
      expect(typeof it.item_id).toBe('string');
      expect(typeof it.title).toBe('string');
      expect(typeof it.genre).toBe('string');
    }
    const scores = rec.items.map((i: any) => i.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(Object.keys(r.body).sort()).toEqual(['jsonData', 'meta']);
  });

  it('answers several users at once, integer ids included', async () => {
    const r = await predict({ jsonData: { users: ['1', 2, '3'], k: 2 } });
    expect(r.status).toBe(200);
    expect(r.body.jsonData.recommendations.map((x: any) => x.user_id)).toEqual(['1', '2', '3']);
  });

  it('excludes seen items by default and includes them when asked', async () => {
    const k = 120;
    const seenOff = await predict({ jsonData: { user_id: '5', k, exclude_seen: false } });
    const seenOn = await predict({ jsonData: { user_id: '5', k } });
    const all = seenOff.body.jsonData.recommendations[0].items.map((i: any) => i.item_id);
    const unseen = seenOn.body.jsonData.recommendations[0].items.map((i: any) => i.item_id);
    expect(all).toHaveLength(120);
    expect(unseen.length).toBeGreaterThan(0);
    expect(unseen.length).toBeLessThan(120);
    // The unseen ranking is the full ranking with the seen items taken out.
    expect(unseen).toEqual(all.filter((id: string) => unseen.includes(id)));
  });

  it('filters on catalog fields, with a single value or a list', async () => {
    const one = await predict({ jsonData: { user_id: '1', k: 50, filter: { genre: 'Comedy' } } });
    expect(one.status).toBe(200);
    const items = one.body.jsonData.recommendations[0].items;
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((i: any) => i.genre === 'Comedy')).toBe(true);
    const two = await predict({ jsonData: { user_id: '1', k: 50, filter: { genre: ['Comedy', 'Drama'] } } });
    const genres = new Set(two.body.jsonData.recommendations[0].items.map((i: any) => i.genre));
    expect([...genres].sort()).toEqual(['Comedy', 'Drama']);
  });

  it('gives an unknown user the cold-start answer, never an error', async () => {
    const r = await predict({ jsonData: { user_id: 'someone-new', k: 3 } });
    expect(r.status).toBe(200);
    const [rec] = r.body.jsonData.recommendations;
    expect(rec.strategy).toBe('cold_start');
    expect(rec.items).toHaveLength(3);
  });

  it('scores pairs given as jsonData', async () => {
    const r = await predict({ jsonData: { pairs: [['1', '5'], [2, 17]] } });
    expect(r.status).toBe(200);
    expect(r.body.jsonData.scores).toHaveLength(2);
    for (const s of r.body.jsonData.scores) expect(s).toBeGreaterThanOrEqual(1), expect(s).toBeLessThanOrEqual(5);
  });
});

describe('data requests (ndarray / tensor)', () => {
  it('a user column gives long-form top-k; k travels in meta.tags; the response stays ndarray', async () => {
    const r = await predict({ meta: { tags: { k: 3 } }, data: { names: ['user_id'], ndarray: [['1'], ['nobody']] } });
    expect(r.status).toBe(200);
    expect(r.body.data.names).toEqual(['user_id', 'item_id', 'score', 'rank']);
    expect(r.body.data.ndarray).toHaveLength(6);
    expect(r.body.data.ndarray.map((row: any[]) => row[3])).toEqual([1, 2, 3, 1, 2, 3]);
    expect(r.body.meta.tags.cold_start_users).toEqual(['nobody']);
    expect(r.body.meta.tags.k).toBe(3);
  });

  it('a tensor request gets a tensor response', async () => {
    const r = await predict({ meta: { tags: { k: 2 } }, data: { tensor: { shape: [2, 1], values: [1, 2] } } });
    expect(r.status).toBe(200);
    expect(r.body.data.tensor.shape).toEqual([4, 4]);
    expect(r.body.data.tensor.values).toHaveLength(16);
    expect(r.body.data.tensor.values[0]).toBe(1);
  });

  it('two columns give pair scores, equal to the jsonData pair scores', async () => {
    const table = await predict({ data: { names: ['user_id', 'item_id'], ndarray: [['1', '5'], ['2', '17']] } });
    const json = await predict({ jsonData: { pairs: [['1', '5'], ['2', '17']] } });
    expect(table.body.data.names).toEqual(['score']);
    expect(table.body.data.ndarray.map((r: number[]) => r[0])).toEqual(json.body.jsonData.scores);
    // Column order follows the names.
    const swapped = await predict({ data: { names: ['item_id', 'user_id'], ndarray: [['5', '1']] } });
    expect(swapped.body.data.ndarray[0][0]).toBe(json.body.jsonData.scores[0]);
    const tensor = await predict({ data: { tensor: { shape: [1, 2], values: [1, 5] } } });
    expect(tensor.body.data.tensor).toEqual({ shape: [1, 1], values: [json.body.jsonData.scores[0]] });
  });

  it('top-k over data equals top-k over jsonData', async () => {
    const a = await predict({ meta: { tags: { k: 4 } }, data: { ndarray: ['7'] } });
    const b = await predict({ jsonData: { user_id: '7', k: 4 } });
    expect(a.body.data.ndarray.map((r: any[]) => r[1])).toEqual(b.body.jsonData.recommendations[0].items.map((i: any) => i.item_id));
  });
});

describe('strData and binData', () => {
  it('strData with a JSON request or a bare user id answers in strData', async () => {
    const r = await predict({ strData: '{"user_id":"7","k":2}' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.strData).recommendations[0].items).toHaveLength(2);
    const bare = await predict({ strData: '7' });
    expect(JSON.parse(bare.body.strData).recommendations[0].user_id).toBe('7');
  });

  it('binData (base64 JSON) answers in binData', async () => {
    const r = await predict({ binData: Buffer.from('{"user_id":"7","k":2}').toString('base64') });
    expect(r.status).toBe(200);
    const decoded = JSON.parse(Buffer.from(r.body.binData, 'base64').toString('utf8'));
    expect(decoded.recommendations[0].items).toHaveLength(2);
  });
});

describe('ways of sending the message', () => {
  const msg = { jsonData: { user_id: '9', k: 2 } };
  let expected: string[];
  beforeAll(async () => {
    expected = (await predict(msg)).body.jsonData.recommendations[0].items.map((i: any) => i.item_id);
  });
  const ids = (b: any) => b.jsonData.recommendations[0].items.map((i: any) => i.item_id);

  it('form field json= (what Seldon’s Python client sends)', async () => {
    const res = await fetch(`${t.url}/predict`, { method: 'POST', body: new URLSearchParams({ json: JSON.stringify(msg) }) });
    expect(res.status).toBe(200);
    expect(ids(await res.json())).toEqual(expected);
  });

  it('GET /predict?json=', async () => {
    const res = await fetch(`${t.url}/predict?json=${encodeURIComponent(JSON.stringify(msg))}`);
    expect(res.status).toBe(200);
    expect(ids(await res.json())).toEqual(expected);
  });

  it('multipart fields, and a binData file part', async () => {
    const form = new FormData();
    form.set('jsonData', JSON.stringify(msg.jsonData));
    form.set('meta', JSON.stringify({ puid: 'multi-1' }));
    const res = await fetch(`${t.url}/predict`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(ids(body)).toEqual(expected);
    expect(body.meta.puid).toBe('multi-1');

    const file = new FormData();
    file.set('binData', new Blob([JSON.stringify(msg.jsonData)]), 'request.json');
    const r2 = await fetch(`${t.url}/predict`, { method: 'POST', body: file });
    expect(r2.status).toBe(200);
    const b2 = await r2.json();
    expect(JSON.parse(Buffer.from(b2.binData, 'base64').toString()).recommendations[0].items.map((i: any) => i.item_id)).toEqual(expected);
  });

  it('the legacy /api/v0.1/predictions path and charset in Content-Type', async () => {
    const r = await postJson(`${t.url}/api/v0.1/predictions`, msg, { 'content-type': 'application/json; charset=utf-8' });
    expect(r.status).toBe(200);
    expect(ids(r.body)).toEqual(expected);
  });
});

describe('meta', () => {
  it('generates a puid when absent and echoes one when present', async () => {
    const a = await predict({ jsonData: { user_id: '1' } });
    expect(a.body.meta.puid).toMatch(/^[0-9a-f-]{36}$/);
    const b = await predict({ meta: { puid: 'abc' }, jsonData: { user_id: '1' } });
    expect(b.body.meta.puid).toBe('abc');
    const c = await postJson(`${t.url}/predict`, { jsonData: { user_id: '1' } }, { 'seldon-puid': 'from-executor' });
    expect(c.body.meta.puid).toBe('from-executor');
  });

  it('merges tags, echoes metrics and requestPath, never routing', async () => {
    const r = await predict({
      meta: { tags: { foo: 'bar' }, metrics: [{ key: 'g', type: 'GAUGE', value: 100 }], routing: { r: 1 }, requestPath: { prev: 'img:1' } },
      jsonData: { user_id: '1', k: 1 },
    });
    expect(r.status).toBe(200);
    expect(r.body.meta.tags).toMatchObject({ foo: 'bar', model_name: 'demo-movies', model_version: 'demo-1' });
    expect(r.body.meta.metrics).toEqual([{ key: 'g', type: 'GAUGE', value: 100 }]);
    expect(r.body.meta.requestPath).toEqual({ prev: 'img:1', recommender: 'repo/recserve:0.1' });
    expect(r.body.meta.routing).toBeUndefined();
  });
});

describe('graph-node routes the wrapper serves', () => {
  it('transform-input passes the message through; route and aggregate say they are not defined', async () => {
    const tin = await postJson(`${t.url}/transform-input`, { data: { ndarray: [[1, 2]] } });
    expect(tin.status).toBe(200);
    expect(tin.body.data).toEqual({ ndarray: [[1, 2]] });
    const route = await postJson(`${t.url}/route`, { data: { ndarray: [[1]] } });
    expect(route.status).toBe(400);
    expect(route.body.status.info).toBe('Route not defined');
    const agg = await postJson(`${t.url}/aggregate`, [{ data: { ndarray: [1] } }]);
    expect(agg.body.status.info).toBe('Aggregate not defined');
  });
});
