// One table of payloads, sent to the same server over REST (JSON body to the real HTTP port) and over
// gRPC (Model/Predict through a client built only from the proto). Both must give the same payload,
// the same tags and the same class of error, because both run the same codec and recommender.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedbackToProto, messageFromProto, messageToProto, seldonClients, tryCall, type SeldonClients } from '../helpers/grpc-client.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';

let ts: TestServer;
let c: SeldonClients;

beforeAll(async () => {
  ts = await startTestServer();
  c = seldonClients(`127.0.0.1:${ts.server.ports.grpc}`);
});

afterAll(async () => {
  c?.close();
  await ts?.stop();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

interface Case {
  name: string;
  msg: Record<string, unknown>;
  /** Expect a bad-data refusal (REST 400 ⇔ INVALID_ARGUMENT) instead of an answer. */
  bad?: boolean;
}

const cases: Case[] = [
  // ndarray
  { name: 'ndarray: user column, k in tags', msg: { data: { names: ['user_id'], ndarray: [['1'], ['2']] }, meta: { tags: { k: 3 } } } },
  { name: 'ndarray: numeric ids, flat list', msg: { data: { ndarray: [5, 6] }, meta: { tags: { k: 2, exclude_seen: false } } } },
  { name: 'ndarray: cold-start user named in tags', msg: { data: { ndarray: [['1'], ['not-a-user']] }, meta: { tags: { k: 2 } } } },
  { name: 'ndarray: pairs → scores', msg: { data: { names: ['user_id', 'item_id'], ndarray: [['1', '5'], ['2', '7'], [3, 9]] } } },
  { name: 'ndarray: filter in tags', msg: { data: { ndarray: [['8']] }, meta: { tags: { k: 4, filter: { genre: 'Drama' } } } } },
  // tensor
  { name: 'tensor: user column', msg: { data: { tensor: { shape: [2, 1], values: [10, 11] } }, meta: { tags: { k: 3 } } } },
  { name: 'tensor: flat users', msg: { data: { tensor: { shape: [2], values: [12, 13] } } } },
  { name: 'tensor: pairs', msg: { data: { names: ['user_id', 'item_id'], tensor: { shape: [2, 2], values: [1, 5, 2, 7] } } } },
  // jsonData
  { name: 'jsonData: one user', msg: { jsonData: { user_id: '7', k: 4 } } },
  { name: 'jsonData: numeric id, filter, exclude_seen', msg: { jsonData: { user_id: 7, k: 5, exclude_seen: false, filter: { genre: ['Drama', 'Comedy'] } } } },
  { name: 'jsonData: several users incl. cold start', msg: { jsonData: { users: ['1', '2', 'new-user'], k: 2 } } },
  { name: 'jsonData: pairs', msg: { jsonData: { pairs: [['1', '5'], ['4', '6']] } } },
  // strData / binData
  { name: 'strData: bare user id', msg: { strData: '42' } },
  { name: 'strData: JSON request', msg: { strData: '{"user_id":"3","k":2}' } },
  { name: 'binData: JSON request', msg: { binData: b64('{"users":["3","4"],"k":2}') } },
  { name: 'binData: bare user id', msg: { binData: b64('5') } },
  // meta handling
  {
    name: 'meta: puid, tags, requestPath and metrics echoed',
    msg: {
      strData: '9',
      meta: { puid: 'parity-puid', tags: { foo: 'bar', n: 1.5, nested: { a: [1, null, true] } }, requestPath: { prev: 'img:1' }, metrics: [{ key: 'g', type: 'GAUGE', value: 100 }] },
    },
  },
  // bad ones
  { name: 'bad: no payload', msg: {}, bad: true },
  { name: 'bad: only meta', msg: { meta: { puid: 'x' } }, bad: true },
  { name: 'bad: data with no array', msg: { data: { names: ['user_id'] } }, bad: true },
  { name: 'bad: ragged ndarray', msg: { data: { ndarray: [['1', '2'], ['3']] } }, bad: true },
  { name: 'bad: three columns', msg: { data: { ndarray: [['1', '2', '3']] } }, bad: true },
  { name: 'bad: object in ndarray', msg: { data: { ndarray: [{ user: '1' }] } }, bad: true },
  { name: 'bad: fractional id', msg: { data: { ndarray: [[1.5]] } }, bad: true },
  { name: 'bad: tensor size mismatch', msg: { data: { tensor: { shape: [3], values: [1, 2] } } }, bad: true },
  { name: 'bad: tensor rank 3', msg: { data: { tensor: { shape: [1, 1, 1], values: [1] } } }, bad: true },
  { name: 'bad: tags.k not a number', msg: { data: { ndarray: [['1']] }, meta: { tags: { k: 'many' } } }, bad: true },
  { name: 'bad: tftensor', msg: { data: { tftensor: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }] }, float_val: [1] } } }, bad: true },
  { name: 'bad: jsonData null', msg: { jsonData: null }, bad: true },
  { name: 'bad: jsonData a list', msg: { jsonData: [1, 2] }, bad: true },
  { name: 'bad: jsonData with no user', msg: { jsonData: { k: 3 } }, bad: true },
  { name: 'bad: jsonData with two selectors', msg: { jsonData: { user_id: '1', users: ['2'] } }, bad: true },
  { name: 'bad: jsonData unknown field', msg: { jsonData: { user_id: '1', colour: 'red' } }, bad: true },
  { name: 'bad: k = 0', msg: { jsonData: { user_id: '1', k: 0 } }, bad: true },
  { name: 'bad: k above max_k', msg: { jsonData: { user_id: '1', k: 5000 } }, bad: true },
  { name: 'bad: empty strData', msg: { strData: '' }, bad: true },
  { name: 'bad: strData broken JSON', msg: { strData: '{"user_id": ' }, bad: true },
  { name: 'bad: binData broken JSON', msg: { binData: b64('{nope') }, bad: true },
  { name: 'bad: customData', msg: { customData: { '@type': 'type.googleapis.com/x.Y', value: '' } }, bad: true },
];

/** The tftensor case is written with the proto's own field names; REST takes the proto3-JSON names. */
function restBody(msg: Record<string, unknown>): Record<string, unknown> {
  const tf = (msg.data as { tftensor?: Record<string, unknown> } | undefined)?.tftensor;
  if (!tf) return msg;
  return { data: { tftensor: { dtype: tf.dtype, tensorShape: tf.tensor_shape, floatVal: tf.float_val } } };
}

const PAYLOAD_KEYS = ['data', 'jsonData', 'strData', 'binData', 'customData'];

describe('REST ⇔ gRPC parity: Predict', () => {
  for (const tc of cases) {
    it(tc.name, async () => {
      const rest = await postJson(`${ts.url}/api/v1.0/predictions`, restBody(tc.msg));
      const rpc = await tryCall(c.Model, 'Predict', messageToProto(tc.msg));
      if (tc.bad) {
        expect(rest.status, JSON.stringify(rest.body)).toBe(400);
        expect(rest.body.status.reason).toBe('MICROSERVICE_BAD_DATA');
        expect(rpc.ok).toBe(false);
        if (rpc.ok) return;
        expect(rpc.codeName).toBe('INVALID_ARGUMENT');
        expect(rpc.reason).toBe('MICROSERVICE_BAD_DATA');
        expect(rpc.details).toBe(rest.body.status.info); // the same check said the same thing
        return;
      }
      expect(rest.status, JSON.stringify(rest.body)).toBe(200);
      expect(rpc.ok, rpc.ok ? '' : `${rpc.codeName}: ${rpc.details}`).toBe(true);
      if (!rpc.ok) return;
      const g = messageFromProto(rpc.response);
      const r = rest.body;
      const keys = PAYLOAD_KEYS.filter((k) => r[k] !== undefined);
      expect(keys).toHaveLength(1);
      expect(PAYLOAD_KEYS.filter((k) => g[k] !== undefined)).toEqual(keys);
      for (const k of ['data', 'jsonData', 'strData', 'binData']) expect(g[k], k).toEqual(r[k]);
      expect(g.meta.tags ?? {}).toEqual(r.meta.tags ?? {});
      expect(g.meta.requestPath ?? {}).toEqual(r.meta.requestPath ?? {});
      expect(g.meta.metrics ?? []).toEqual(r.meta.metrics ?? []);
      expect(typeof g.meta.puid).toBe('string');
      const puid = (tc.msg.meta as { puid?: string } | undefined)?.puid;
      if (puid) {
        expect(g.meta.puid).toBe(puid);
        expect(r.meta.puid).toBe(puid);
      }
    });
  }
});

describe('REST ⇔ gRPC parity: feedback and pass-through', () => {
  it('SendFeedback answers alike', async () => {
    // Two predictions, one feedback each: the same feedback twice would be a retry, recorded once.
    const predA = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { user_id: '2', k: 2 } });
    const predB = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { user_id: '2', k: 2 } });
    const fb = (pred: typeof predA) => ({ request: { jsonData: { user_id: '2', k: 2 } }, response: pred.body, reward: 0.3 });
    const rewardSum = async () => (await ts.server.metrics.feedbackReward.get()).values.reduce((a, v) => a + v.value, 0);
    const r0 = await rewardSum();
    const rest = await postJson(`${ts.url}/api/v1.0/feedback`, fb(predA));
    const r1 = await rewardSum();
    const rpc = await tryCall(c.Model, 'SendFeedback', feedbackToProto(fb(predB)));
    const r2 = await rewardSum();
    // reward is a 32-bit float on the wire; it arrives as 0.3, not 0.30000001192092896.
    expect(r1 - r0).toBeCloseTo(0.3, 12);
    expect(r2 - r1).toBeCloseTo(r1 - r0, 12);
    expect(rest.status).toBe(200);
    expect(rpc.ok).toBe(true);
    if (!rpc.ok) return;
    const g = messageFromProto(rpc.response);
    expect(g.data).toEqual(rest.body.data);
    expect(g.meta.tags).toEqual(rest.body.meta.tags);
    expect(rest.body.meta.puid).toBe(predA.body.meta.puid);
    expect(g.meta.puid).toBe(predB.body.meta.puid);
    const badRest = await postJson(`${ts.url}/api/v1.0/feedback`, { reward: 7 });
    const badRpc = await tryCall(c.Model, 'SendFeedback', { reward: 7 });
    expect(badRest.status).toBe(400);
    expect(badRpc).toMatchObject({ ok: false, code: grpc.status.INVALID_ARGUMENT, details: badRest.body.status.info });
  });

  it('TransformInput answers like /transform-input', async () => {
    const msg = { data: { names: ['a'], ndarray: [[1], [2]] }, meta: { puid: 'tp', tags: { x: 1 } } };
    const rest = await postJson(`${ts.url}/transform-input`, msg);
    const rpc = await tryCall(c.Transformer, 'TransformInput', messageToProto(msg));
    expect(rest.status).toBe(200);
    expect(rpc.ok).toBe(true);
    if (!rpc.ok) return;
    expect(messageFromProto(rpc.response)).toEqual(rest.body);
  });
});
