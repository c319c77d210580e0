// Reward-only feedback (a reward and nothing shown), as a Seldon router or an outcome-only client sends
// it, is accepted on REST and on gRPC Model/SendFeedback and Generic/SendFeedback: 200 / OK, counted in
// the feedback metrics, stored as a feedback row with no interactions, learns nothing, and says so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call as grpcCall, feedbackToProto, messageFromProto, seldonClients, type SeldonClients } from '../helpers/grpc-client.js';
import { post, startFeedbackServer, type FeedbackTestServer } from './helpers.js';

let t: FeedbackTestServer;
let c: SeldonClients;
const stats = () => t.server.feedback.stores.peek()!.stats();
const feedbackCount = async () => {
  const m = await t.server.metrics.registry.getSingleMetric('seldon_api_model_feedback_total')!.get();
  return m.values.reduce((s, v) => s + v.value, 0);
};

beforeAll(async () => {
  t = await startFeedbackServer();
  c = seldonClients(`127.0.0.1:${t.server.ports.grpc}`);
});
afterAll(async () => {
  c?.close();
  await t?.stop();
});

describe('reward-only feedback', () => {
  it('answers 200 on REST, stores a reward event with no interactions, counts it, learns nothing', async () => {
    const bodies: [unknown, Record<string, unknown>][] = [
      [{ reward: 1 }, {}],
      [{ request: { jsonData: { user_id: 'outcome-only', k: 3 } }, reward: 0.5 }, {}],
      [{ response: { meta: { puid: 'never-seen-by-this-server' } }, reward: 0 }, { feedback_puid_found: false }],
      [{}, {}],
    ];
    for (const [body, more] of bodies) {
      const before = await stats();
      const counted = await feedbackCount();
      const r = await post(`${t.url}/api/v1.0/feedback`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.meta.tags).toMatchObject({ feedback_interactions: 0, feedback_learned: false, feedback_note: expect.stringMatching(/reward event, nothing learned/), model_name: 'demo-movies', ...more });
      const after = await stats();
      expect(after.feedback).toBe(before.feedback + 1);
      expect(after.interactions).toBe(before.interactions);
      expect(await feedbackCount()).toBe(counted + 1);
    }
    expect(t.server.feedback.bandit.countsOf('1')).toEqual({ successes: 0, failures: 0, trials: 0 });
  });

  it('answers OK on gRPC Model/SendFeedback and Generic/SendFeedback', async () => {
    for (const svc of ['Model', 'Generic'] as const) {
      for (const fb of [{ reward: 1 }, { request: { jsonData: { user_id: 'router-user' } }, reward: 0.25 }]) {
        const before = await stats();
        const counted = await feedbackCount();
        const res = messageFromProto(await grpcCall(c[svc], 'SendFeedback', feedbackToProto(fb)));
        expect(res.meta.tags).toMatchObject({ feedback_interactions: 0, feedback_learned: false });
        expect((await stats()).feedback).toBe(before.feedback + 1);
        expect((await stats()).interactions).toBe(before.interactions);
        expect(await feedbackCount()).toBe(counted + 1);
      }
    }
  });

  it('still refuses what is malformed', async () => {
    const before = await stats();
    for (const body of [{ reward: 1.5 }, { reward: -1 }, { reward: 'NaN' }, { reward: 1, colour: 'red' }]) {
      const r = await post(`${t.url}/api/v1.0/feedback`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.status.reason).toBe('MICROSERVICE_BAD_DATA');
    }
    expect(await stats()).toEqual(before);
  });
});
