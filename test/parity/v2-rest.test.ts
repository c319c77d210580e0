// Seldon v1 REST ⇔ Open Inference Protocol V2 REST: the same users and options sent to the same server
// through both protocols give the same items in the same order, the same strategy per user and the
// same scores (V2's FP32 being v1's number rounded to single precision), and the same refusals,
// because both decode into the same core call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(async () => ts?.stop());

interface Options {
  k?: number;
  exclude_seen?: boolean;
  filter?: Record<string, unknown>;
}

interface Case {
  name: string;
  users: (string | number)[];
  options?: Options;
  /** Both protocols must refuse it with a 400. */
  bad?: boolean;
}

const cases: Case[] = [
  { name: 'one known user, default k', users: ['1'] },
  { name: 'several users, k 5', users: ['1', '2', '300'], options: { k: 5 } },
  { name: 'a cold-start user beside known ones', users: ['5', 'parity-stranger', '6'], options: { k: 4 } },
  { name: 'numeric ids', users: [10, 11], options: { k: 3 } },
  { name: 'seen items included', users: ['1'], options: { k: 8, exclude_seen: false } },
  { name: 'a filter on one field', users: ['1', '2'], options: { k: 6, filter: { genre: 'Comedy' } } },
  { name: 'a filter with accepted values', users: ['3', 'parity-new'], options: { k: 6, filter: { genre: ['Drama', 'Action'] } } },
  { name: 'a filter nothing matches', users: ['1'], options: { k: 3, filter: { genre: 'Opera' } } },
  { name: 'k larger than the catalog', users: ['4'], options: { k: 500 } },
  { name: 'k above max_k', users: ['1'], options: { k: 5000 }, bad: true },
];

const v1 = (users: (string | number)[], options: Options = {}) => postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { users, ...options } });
const v2 = (users: (string | number)[], options: Options = {}, extra: Record<string, unknown> = {}) =>
  postJson(`${ts.url}/v2/models/demo-movies/infer`, {
    parameters: options,
    inputs: [{ name: 'user_id', datatype: users.every((u) => typeof u === 'number') ? 'INT64' : 'BYTES', shape: [users.length], data: users }],
    ...extra,
  });

interface Row {
  strategy: string;
  items: string[];
  scores: number[];
}

function v1Rows(body: any): Row[] {
  return body.jsonData.recommendations.map((r: { strategy: string; items: { item_id: string; score: number }[] }) => ({
    strategy: r.strategy,
    items: r.items.map((i) => i.item_id),
    scores: r.items.map((i) => Math.fround(i.score)),
  }));
}

function v2Rows(body: any): Row[] {
  const out = (name: string) => body.outputs.find((o: { name: string }) => o.name === name);
  const width = out('item_id').shape[1];
  return (out('count').data as number[]).map((count, r) => ({
    strategy: out('strategy').data[r],
    items: out('item_id').data.slice(r * width, r * width + count),
    scores: out('score').data.slice(r * width, r * width + count),
  }));
}

describe('v1 REST ⇔ V2 REST parity: recommend', () => {
  for (const tc of cases) {
    it(tc.name, async () => {
      const [a, b] = [await v1(tc.users, tc.options), await v2(tc.users, tc.options)];
      if (tc.bad) {
        expect(a.status).toBe(400);
        expect(b.status).toBe(400);
        expect(Object.keys(b.body)).toEqual(['error']);
        return;
      }
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(b.status, JSON.stringify(b.body)).toBe(200);
      expect(v2Rows(b.body)).toEqual(v1Rows(a.body));
      expect(v1Rows(a.body).length).toBe(tc.users.length);
    });
  }
});

describe('v1 REST ⇔ V2 REST parity: pair scores', () => {
  it('gives the same score for each (user, item) pair, and refuses the same unknown item', async () => {
    const pairs = [['1', '5'], ['2', '17'], ['300', '120']];
    const a = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { pairs } });
    const b = await postJson(`${ts.url}/v2/models/demo-movies/infer`, {
      inputs: [
        { name: 'user_id', datatype: 'BYTES', shape: [3], data: pairs.map((p) => p[0]) },
        { name: 'item_id', datatype: 'BYTES', shape: [3], data: pairs.map((p) => p[1]) },
      ],
    });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.body.outputs[0].data).toEqual(a.body.jsonData.scores.map(Math.fround));
    const badV1 = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { pairs: [['1', 'nope']] } });
    const badV2 = await postJson(`${ts.url}/v2/models/demo-movies/infer`, {
      inputs: [
        { name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1'] },
        { name: 'item_id', datatype: 'BYTES', shape: [1], data: ['nope'] },
      ],
    });
    expect(badV1.status).toBe(400);
    expect(badV2.status).toBe(400);
    expect(badV2.body.error).toBe(badV1.body.status.info);
  });
});
