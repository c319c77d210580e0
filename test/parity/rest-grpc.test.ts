// One table of payloads (the named files in test/testdata/seldon-v1), sent to the same server over REST
// (JSON body to the real HTTP port) and over gRPC (Model/Predict through a client built only from the
// proto). Both must give the same payload, the same tags and the same class of error, because both run
// the same codec and recommender.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedbackToProto, messageFromProto, messageToProto, seldonClients, tryCall, type SeldonClients } from '../helpers/grpc-client.js';
import { predictPayloads } from '../helpers/seldon-payloads.js';
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

interface Case {
  name: string;
  msg: Record<string, unknown>;
  /** Expect a bad-data refusal (REST 400 ⇔ INVALID_ARGUMENT) instead of an answer. */
  bad?: boolean;
}

/** The named payloads of test/testdata/seldon-v1 that carry a parity title; the codec tests read the same files. */
const cases: Case[] = predictPayloads()
  .filter((p) => p.name !== undefined)
  .map((p) => ({ name: p.name!, msg: p.message, bad: p.error !== undefined }));

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
