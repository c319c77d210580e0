// Metadata derived from the ONNX signature (merged with MODEL_METADATA), health routes, and the
// Prometheus endpoint on its own port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSeldonError, postJson, startTestServer, type TestServer } from '../helpers/server.js';

describe('metadata and health', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ MODEL_METADATA: 'versions: ["env-v"]\ncustom:\n  team: recsys\n' });
  });
  afterAll(async () => t?.stop());

  it('metadata is derived from the model and merged with MODEL_METADATA per top-level key', async () => {
    for (const path of ['/metadata', '/api/v1.0/metadata']) {
      const r = await fetch(t.url + path);
      expect(r.status).toBe(200);
      const m = await r.json();
      expect(m.name).toBe('demo-movies');
      expect(m.platform).toBe('onnx');
      expect(m.versions).toEqual(['env-v']); // the env var wins for the keys it gives
      expect(m.custom).toEqual({ team: 'recsys' });
      expect(m.inputs.some((i: any) => i.messagetype === 'ndarray' && i.schema.names[0] === 'user_id')).toBe(true);
      expect(Object.keys(m).sort()).toEqual(['custom', 'inputs', 'name', 'outputs', 'platform', 'versions']);
    }
  });

  it('health routes', async () => {
    const ping = await fetch(`${t.url}/health/ping`);
    expect(ping.status).toBe(200);
    expect(await ping.text()).toBe('pong');
    for (const path of ['/health/status', '/api/v1.0/health/status']) {
      const s = await (await fetch(t.url + path)).json();
      expect(s.strData).toBe('healthy');
      expect(s.meta.tags.model_version).toBe('demo-1');
    }
    const live = await fetch(`${t.url}/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${t.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', ready: true, model_version: 'demo-1' });
  });

  it('the spec is served at /seldon.json and /openapi.yaml', async () => {
    const j = await (await fetch(`${t.url}/seldon.json`)).json();
    expect(j.openapi).toMatch(/^3\./);
    const y = await fetch(`${t.url}/openapi.yaml`);
    expect(y.headers.get('content-type')).toMatch(/yaml/);
    expect(await y.text()).toMatch(/^openapi: 3/);
  });

  it('metrics: request counts by route and code, latency, feedback counters, model version, process', async () => {
    const shown = await postJson(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 2 } });
    await postJson(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: -1 } });
    const puid = shown.body.meta.puid;
    expect((await postJson(`${t.url}/api/v1.0/feedback`, { response: { meta: { puid } }, reward: 0.5 })).status).toBe(200);
    expect((await postJson(`${t.url}/send-feedback`, { response: shown.body, reward: 1 })).status).toBe(200);
    for (const path of ['/prometheus', '/metrics']) {
      const res = await fetch(t.metricsUrl + path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/recserve_requests_total\{transport="rest",route="\/api\/v1.0\/predictions",code="200"[^}]*\} 1/);
      expect(text).toMatch(/recserve_requests_total\{transport="rest",route="\/api\/v1.0\/predictions",code="400"[^}]*\} 1/);
      expect(text).toMatch(/recserve_request_duration_seconds_bucket\{/);
      expect(text).toMatch(/seldon_api_model_feedback_total\{method="feedback"[^}]*\} 2/);
      expect(text).toMatch(/seldon_api_model_feedback_reward_total\{method="feedback"[^}]*\} 1.5/);
      expect(text).toMatch(/recserve_model_info\{model_name="demo-movies",model_version="demo-1",signature="catalog"[^}]*\} 1/);
      expect(text).toMatch(/process_resident_memory_bytes/);
      expect(text).toMatch(/nodejs_eventloop_lag_seconds/);
    }
  });
});

describe('invalid MODEL_METADATA', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ MODEL_METADATA: '{"versions": "not-a-list"}' });
  });
  afterAll(async () => t?.stop());

  it('metadata answers 500 "Model metadata unavailable" while predict keeps working', async () => {
    const r = await fetch(`${t.url}/metadata`);
    expect(r.status).toBe(500);
    expect(await r.json()).toEqual({ status: { code: -1, info: 'Model metadata unavailable', reason: 'MICROSERVICE_BAD_METADATA', status: 1 } });
    const p = await postJson(`${t.url}/predict`, { jsonData: { user_id: '1' } });
    expect(p.status).toBe(200);
    expect(p.body.jsonData.recommendations[0].items).toHaveLength(10);
  });
});

describe('PREDICTIVE_UNIT_PARAMETERS', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      PREDICTIVE_UNIT_PARAMETERS: JSON.stringify([
        { name: 'k', value: '4', type: 'INT' },
        { name: 'max_k', value: '6', type: 'INT' },
        { name: 'exclude_seen', value: 'false', type: 'BOOL' },
      ]),
    });
  });
  afterAll(async () => t?.stop());

  it('typed parameters set the defaults and limits', async () => {
    const r = await postJson(`${t.url}/predict`, { jsonData: { user_id: '1' } });
    expect(r.body.jsonData.recommendations[0].items).toHaveLength(4);
    const big = await postJson(`${t.url}/predict`, { jsonData: { user_id: '1', k: 7 } });
    expect(big.status).toBe(400);
    expect(expectSeldonError(big.body)).toMatch(/max_k=6/);
  });
});
