// All four entry points of one server: Seldon v1 over REST and gRPC, the Open Inference Protocol V2
// over REST and gRPC. The same users and options give the same items in the same order, the same
// strategy per user and the same scores (V2's FP32 being v1's number rounded to single precision), and
// the same refusal, because all four decode into the same core call. Each client is built from its own
// proto or speaks plain HTTP; none shares the server's codecs.
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageFromProto, messageToProto, seldonClients, tryCall, type SeldonClients } from '../helpers/grpc-client.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';
import { idInput, inferRows, params, v2Client, type Row } from '../grpc/v2-client.js';

const MODEL = 'demo-movies';
let ts: TestServer;
let seldon: SeldonClients;
let v2: grpc.Client;

beforeAll(async () => {
  ts = await startTestServer();
  seldon = seldonClients(`127.0.0.1:${ts.server.ports.grpc}`);
  v2 = v2Client(`127.0.0.1:${ts.server.ports.grpc}`);
});
afterAll(async () => {
  seldon?.close();
  v2?.close();
  await ts?.stop();
});

interface Options {
  k?: number;
  exclude_seen?: boolean;
  filter?: Record<string, unknown>;
}

type Answer = { ok: true; rows: Row[] } | { ok: false; message: string };

function v1Rows(jsonData: any): Row[] {
  return jsonData.recommendations.map((r: { strategy: string; items: { item_id: string; score: number }[] }) => ({
    strategy: r.strategy,
    items: r.items.map((i) => i.item_id),
    scores: r.items.map((i) => Math.fround(i.score)),
  }));
}

const entryPoints: Record<string, (users: (string | number)[], options: Options) => Promise<Answer>> = {
  'v1 REST': async (users, options) => {
    const r = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { users, ...options } });
    return r.status === 200 ? { ok: true, rows: v1Rows(r.body.jsonData) } : { ok: false, message: r.body.status.info };
  },
  'v1 gRPC': async (users, options) => {
    const r = await tryCall(seldon.Model, 'Predict', messageToProto({ jsonData: { users, ...options } }));
    return r.ok ? { ok: true, rows: v1Rows(messageFromProto(r.response).jsonData) } : { ok: false, message: r.details };
  },
  'V2 REST': async (users, options) => {
    const datatype = users.every((u) => typeof u === 'number') ? 'INT64' : 'BYTES';
    const r = await postJson(`${ts.url}/v2/models/${MODEL}/infer`, { parameters: options, inputs: [{ name: 'user_id', datatype, shape: [users.length], data: users }] });
    if (r.status !== 200) return { ok: false, message: r.body.error };
    const out = (name: string) => r.body.outputs.find((o: { name: string }) => o.name === name);
    const w = out('item_id').shape[1];
    return { ok: true, rows: (out('count').data as number[]).map((n, i) => ({ strategy: out('strategy').data[i], items: out('item_id').data.slice(i * w, i * w + n), scores: out('score').data.slice(i * w, i * w + n) })) };
  },
  'V2 gRPC': async (users, options) => {
    const r = await tryCall(v2, 'ModelInfer', { model_name: MODEL, parameters: params(options as Record<string, unknown>), inputs: [idInput('user_id', users)] });
    return r.ok ? { ok: true, rows: inferRows(r.response) } : { ok: false, message: r.details };
  },
};

const cases: { name: string; users: (string | number)[]; options?: Options; bad?: boolean }[] = [
  { name: 'one known user, default k', users: ['1'] },
  { name: 'several users, k 5', users: ['1', '2', '300'], options: { k: 5 } },
  { name: 'a cold-start user beside known ones', users: ['5', 'four-way-stranger', '6'], options: { k: 4 } },
  { name: 'numeric ids', users: [10, 11], options: { k: 3 } },
  { name: 'seen items included', users: ['1'], options: { k: 8, exclude_seen: false } },
  { name: 'a filter with accepted values', users: ['3', 'four-way-new'], options: { k: 6, filter: { genre: ['Drama', 'Action'] } } },
  { name: 'a filter nothing matches', users: ['1'], options: { k: 3, filter: { genre: 'Opera' } } },
  { name: 'k larger than the catalog', users: ['4'], options: { k: 500 } },
  { name: 'k above max_k', users: ['1'], options: { k: 5000 }, bad: true },
];

describe('four-way parity: recommend', () => {
  for (const tc of cases) {
    it(tc.name, async () => {
      const answers = Object.fromEntries(await Promise.all(Object.entries(entryPoints).map(async ([name, send]) => [name, await send(tc.users, tc.options ?? {})] as const)));
      const reference = answers['v1 REST'];
      if (tc.bad) {
        for (const [name, a] of Object.entries(answers)) expect(a.ok, name).toBe(false);
        // Each protocol names the field its own way; its two transports say the same thing.
        const message = (name: string) => (answers[name].ok ? '' : answers[name].message);
        expect(message('v1 gRPC')).toBe(message('v1 REST'));
        expect(message('V2 gRPC')).toBe(message('V2 REST'));
        expect(message('V2 REST')).toMatch(/k=5000 is larger than max_k/);
        return;
      }
      expect(reference.ok, JSON.stringify(reference)).toBe(true);
      if (!reference.ok) return;
      expect(reference.rows).toHaveLength(tc.users.length);
      for (const [name, a] of Object.entries(answers)) expect(a, name).toEqual(reference);
    });
  }
});

describe('four-way parity: pair scores', () => {
  it('gives the same score for each (user, item) pair on every entry point', async () => {
    const pairs = [['1', '5'], ['2', '17'], ['300', '120']];
    const users = pairs.map((p) => p[0]);
    const items = pairs.map((p) => p[1]);
    const v1Rest = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { pairs } });
    const v1Grpc = await tryCall(seldon.Model, 'Predict', messageToProto({ jsonData: { pairs } }));
    const v2Rest = await postJson(`${ts.url}/v2/models/${MODEL}/infer`, { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [3], data: users }, { name: 'item_id', datatype: 'BYTES', shape: [3], data: items }] });
    const v2Grpc = await tryCall(v2, 'ModelInfer', { model_name: MODEL, inputs: [idInput('user_id', users), idInput('item_id', items)] });
    const reference = (v1Rest.body.jsonData.scores as number[]).map(Math.fround);
    expect(v1Grpc.ok && (messageFromProto(v1Grpc.response).jsonData.scores as number[]).map(Math.fround)).toEqual(reference);
    expect(v2Rest.body.outputs[0].data).toEqual(reference);
    expect(v2Grpc.ok && v2Grpc.response.outputs[0].contents.fp32_contents).toEqual(reference);
  });
});
