// The Open Inference Protocol V2 over a real gRPC socket (inference.GRPCInferenceService, a client
// generated only from proto/inference/grpc_service.proto), on a real server with the demo model and real
// ONNX sessions: every RPC, typed and raw contents, parameters and outputs selection, the errors
// (INVALID_ARGUMENT / NOT_FOUND / UNAVAILABLE), reflection and health for both protocols. Answers are
// compared with the V2 REST routes of the same server.
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ModelHub } from '../../src/core/models.js';
import { RecommenderService } from '../../src/core/service.js';
import { StartupGate } from '../../src/core/startup-gate.js';
import { inProcessScorer } from '../../src/model/pool/factory.js';
import { ModelRegistry } from '../../src/model/registry.js';
import { DataPlane } from '../../src/protocols/seldon-v1/dataplane.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { startGrpcServer } from '../../src/transport/grpc/server.js';
import { healthClient, reflect, reflectionClient } from '../helpers/grpc-client.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';
import { call, healthOf, idInput, inferRows, params, rawBytes, rawInt64, readRawFp32, tryCall, v2Client, V2_SERVICE } from './v2-client.js';

const MODEL = 'demo-movies';
let ts: TestServer;
let c: grpc.Client;
let address: string;

beforeAll(async () => {
  ts = await startTestServer();
  address = `127.0.0.1:${ts.server.ports.grpc}`;
  c = v2Client(address);
});
afterAll(async () => {
  c?.close();
  await ts?.stop();
});

const infer = (request: Record<string, unknown>) => call(c, 'ModelInfer', { model_name: MODEL, ...request });
const tryInfer = (request: Record<string, unknown>) => tryCall(c, 'ModelInfer', { model_name: MODEL, ...request });
const restInfer = (body: unknown) => postJson(`${ts.url}/v2/models/${MODEL}/infer`, body);

/** REST V2 answer rows, for comparison. */
function restRows(body: any) {
  const out = (name: string) => body.outputs.find((o: { name: string }) => o.name === name);
  const w = out('item_id').shape[1];
  return (out('count').data as number[]).map((n, r) => ({ strategy: out('strategy').data[r], items: out('item_id').data.slice(r * w, r * w + n), scores: out('score').data.slice(r * w, r * w + n) }));
}

/** A readiness answer's flag (proto3 leaves a false bool off the wire). */
const ready = async (client: grpc.Client, method: string, request: unknown) => (await call(client, method, request)).ready ?? false;

/** An InferParameter (proto-loader, oneofs) → its JS value. */
const paramValue = (p: any) => (p.parameter_choice === 'int64_param' ? Number(p.int64_param) : p[p.parameter_choice]);
const paramsOf = (m: Record<string, any> | undefined) => Object.fromEntries(Object.entries(m ?? {}).map(([k, p]) => [k, paramValue(p)]));

async function expectRefused(request: Record<string, unknown>, code: string, details?: RegExp) {
  const r = await tryInfer(request);
  expect(r.ok, JSON.stringify(r)).toBe(false);
  if (r.ok) return;
  expect(r.codeName, r.details).toBe(code);
  if (details) expect(r.details).toMatch(details);
}

describe('health and metadata RPCs', () => {
  it('ServerLive, ServerReady and ModelReady answer true for the served model', async () => {
    expect(await call(c, 'ServerLive', {})).toEqual({ live: true });
    expect(await call(c, 'ServerReady', {})).toEqual({ ready: true });
    expect(await call(c, 'ModelReady', { name: MODEL })).toEqual({ ready: true });
    expect(await call(c, 'ModelReady', { name: MODEL, version: 'demo-1' })).toEqual({ ready: true });
  });

  it('ModelReady of an unknown model or version is NOT_FOUND', async () => {
    expect(await tryCall(c, 'ModelReady', { name: 'nope' })).toMatchObject({ ok: false, codeName: 'NOT_FOUND', details: expect.stringMatching(/^model "nope" is not served here$/) });
    expect(await tryCall(c, 'ModelReady', { name: MODEL, version: 'demo-0' })).toMatchObject({ ok: false, codeName: 'NOT_FOUND', details: expect.stringMatching(/has no version "demo-0"/) });
  });

  it('ServerMetadata is GET /v2', async () => {
    const rest = await (await fetch(`${ts.url}/v2`)).json();
    expect(await call(c, 'ServerMetadata', {})).toEqual(rest);
    expect(rest.name).toBe('recserve');
  });

  it('ModelMetadata is GET /v2/models/{name}: the tensors, shapes and parameters', async () => {
    const rest = await (await fetch(`${ts.url}/v2/models/${MODEL}`)).json();
    const md = await call(c, 'ModelMetadata', { name: MODEL });
    const tensor = (t: any) => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(Number), parameters: paramsOf(t.parameters) });
    expect({ ...md, inputs: md.inputs.map(tensor), outputs: md.outputs.map(tensor), parameters: paramsOf(md.parameters) }).toEqual(rest);
    expect(md.inputs.map((t: any) => t.name)).toEqual(['user_id', 'item_id']);
    expect(await tryCall(c, 'ModelMetadata', { name: 'nope' })).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });
    expect(await tryCall(c, 'ModelMetadata', { name: MODEL, version: '7' })).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });
  });
});

describe('ModelInfer', () => {
  it('typed BYTES ids: the REST answer, the id echoed, model name and version', async () => {
    const users = ['1', '2', 'grpc-stranger'];
    const res = await infer({ id: 'req-1', parameters: params({ k: 4 }), inputs: [idInput('user_id', users)] });
    expect(res).toMatchObject({ model_name: MODEL, model_version: 'demo-1', id: 'req-1' });
    expect(res.raw_output_contents ?? []).toEqual([]);
    expect(res.outputs.map((o: any) => [o.name, o.datatype, o.shape.map(Number)])).toEqual([
      ['item_id', 'BYTES', [3, 4]],
      ['score', 'FP32', [3, 4]],
      ['strategy', 'BYTES', [3]],
      ['count', 'INT64', [3]],
    ]);
    const rest = await restInfer({ parameters: { k: 4 }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [3], data: users }] });
    expect(inferRows(res)).toEqual(restRows(rest.body));
    expect(inferRows(res).map((r) => r.strategy)).toEqual(['personalized', 'personalized', 'cold_start']);
  });

  it('a request without id gets a generated one', async () => {
    const res = await infer({ inputs: [idInput('user_id', ['3'])] });
    expect(res.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('typed INT64 ids equal the same ids as BYTES', async () => {
    const a = await infer({ parameters: params({ k: 3 }), inputs: [idInput('user_id', [10, 11])] });
    const b = await infer({ parameters: params({ k: 3 }), inputs: [idInput('user_id', ['10', '11'])] });
    expect(inferRows(a)).toEqual(inferRows(b));
  });

  it('raw in → raw out: BYTES and INT64 raw inputs give the typed answer as raw_output_contents', async () => {
    const typed = await infer({ parameters: params({ k: 5 }), inputs: [idInput('user_id', ['4', '5'])] });
    const raw = await infer({ parameters: params({ k: 5 }), inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2] }], raw_input_contents: [rawBytes(['4', '5'])] });
    expect(raw.raw_output_contents).toHaveLength(4);
    for (const o of raw.outputs) expect(o.contents).toBeUndefined();
    expect(inferRows(raw)).toEqual(inferRows(typed));
    const raw64 = await infer({ parameters: params({ k: 5 }), inputs: [{ name: 'user_id', datatype: 'INT64', shape: [2] }], raw_input_contents: [rawInt64([4, 5])] });
    expect(inferRows(raw64)).toEqual(inferRows(typed));
  });

  it('pair scoring, typed and raw, gives REST V2 scores', async () => {
    const users = ['1', '2', '300'];
    const items = ['5', '17', '120'];
    const rest = await restInfer({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [3], data: users }, { name: 'item_id', datatype: 'BYTES', shape: [3], data: items }] });
    const typed = await infer({ inputs: [idInput('user_id', users), idInput('item_id', items)] });
    expect(typed.outputs.map((o: any) => o.name)).toEqual(['score']);
    expect(typed.outputs[0].contents.fp32_contents).toEqual(rest.body.outputs[0].data);
    const raw = await infer({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [3] }, { name: 'item_id', datatype: 'BYTES', shape: [3] }], raw_input_contents: [rawBytes(users), rawBytes(items)] });
    expect(readRawFp32(raw.raw_output_contents[0])).toEqual(rest.body.outputs[0].data);
  });

  it('the outputs selection answers only the outputs asked, in the order asked', async () => {
    const res = await infer({ inputs: [idInput('user_id', ['1'])], outputs: [{ name: 'score' }, { name: 'item_id' }] });
    expect(res.outputs.map((o: any) => o.name)).toEqual(['score', 'item_id']);
    await expectRefused({ inputs: [idInput('user_id', ['1'])], outputs: [{ name: 'rank' }] }, 'INVALID_ARGUMENT', /unknown output "rank"/);
  });

  it('parameters: k as int64 or string, exclude_seen as bool, a filter as JSON text, as REST reads them', async () => {
    const options = { k: 6, exclude_seen: false, filter: { genre: ['Drama', 'Action'] } };
    const rest = await restInfer({ parameters: options, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2], data: ['3', 'grpc-new'] }] });
    expect(rest.status).toBe(200);
    const res = await infer({ parameters: params(options), inputs: [idInput('user_id', ['3', 'grpc-new'])] });
    expect(inferRows(res)).toEqual(restRows(rest.body));
    const k = await infer({ parameters: { k: { string_param: '2' } }, inputs: [idInput('user_id', ['3'])] });
    expect(k.outputs[0].shape.map(Number)).toEqual([1, 2]);
  });
});

describe('ModelInfer refusals', () => {
  it('an unknown model or version is NOT_FOUND', async () => {
    await expectRefused({ model_name: 'nope', inputs: [idInput('user_id', ['1'])] }, 'NOT_FOUND', /model "nope" is not served here/);
    await expectRefused({ model_version: 'demo-0', inputs: [idInput('user_id', ['1'])] }, 'NOT_FOUND', /no version "demo-0"/);
  });

  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ['a datatype ids cannot have', { inputs: [{ name: 'user_id', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }] }, /datatype "FP32"; ids are BYTES or INT64/],
    ['elements in the wrong contents field', { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], contents: { int64_contents: ['1'] } }] }, /is BYTES but its elements are in contents\.int64_contents/],
    ['a shape that does not match the elements', { inputs: [{ ...idInput('user_id', ['1', '2']), shape: [3] }] }, /holds 2 values but its shape says 3/],
    ['a shape past the tensor limit (before any allocation)', { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: ['1000000000'] }], raw_input_contents: [Buffer.alloc(0)] }, /RECSERVE_MAX_TENSOR_VALUES/],
    ['a negative dimension', { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: ['-1'], contents: { bytes_contents: [] } }] }, /dimensions are whole numbers/],
    ['INT64 raw bytes that are not 8 per element', { inputs: [{ name: 'user_id', datatype: 'INT64', shape: [1] }], raw_input_contents: [Buffer.alloc(7)] }, /1 INT64 elements need 8 bytes, got 7/],
    ['a BYTES raw element longer than its bytes', { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.from([9, 0, 0, 0, 0x31])] }, /declares 9 bytes but only 1 are left/],
    ['raw and typed contents for the same tensor', { inputs: [idInput('user_id', ['1'])], raw_input_contents: [rawBytes(['1'])] }, /has both contents and raw_input_contents/],
    ['fewer raw entries than inputs', { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1] }, { name: 'item_id', datatype: 'BYTES', shape: [1] }], raw_input_contents: [rawBytes(['1'])] }, /raw_input_contents has 1 entries for 2 inputs/],
    ['an input without data', { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1] }] }, /has no data/],
    ['an unknown input', { inputs: [idInput('user_id', ['1']), idInput('age', ['3'])] }, /unknown input "age"/],
    ['no user_id input', { inputs: [] }, /needs a user_id input/],
    ['k above max_k', { parameters: params({ k: 5000 }), inputs: [idInput('user_id', ['1'])] }, /larger than max_k/],
    ['exclude_seen that is not a bool', { parameters: params({ exclude_seen: 'yes' }), inputs: [idInput('user_id', ['1'])] }, /exclude_seen must be true or false/],
    ['a filter that is not JSON', { parameters: { filter: { string_param: '{genre' } }, inputs: [idInput('user_id', ['1'])] }, /parameters\.filter/],
    ['a parameter without a value', { parameters: { k: {} }, inputs: [idInput('user_id', ['1'])] }, /has no value/],
    ['an id past the length limit', { id: 'x'.repeat(300), inputs: [idInput('user_id', ['1'])] }, /RECSERVE_MAX_ID_LENGTH/],
    ['a user id that is not UTF-8', { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from([0xff, 0xfe])] } }] }, /not valid UTF-8/],
  ];
  for (const [name, request, details] of refusals) {
    it(`${name} is INVALID_ARGUMENT`, async () => {
      await expectRefused(request, 'INVALID_ARGUMENT', details);
    });
  }
});

describe('repository RPCs on a server without a models root', () => {
  it('RepositoryIndex lists the served model READY; loading from nowhere is NOT_FOUND; unloading what is not loaded is NOT_FOUND', async () => {
    expect(await call(c, 'RepositoryIndex', {})).toEqual({ models: [{ name: MODEL, version: 'demo-1', state: 'READY' }] });
    expect(await call(c, 'RepositoryIndex', { ready: true })).toEqual({ models: [{ name: MODEL, version: 'demo-1', state: 'READY' }] });
    expect(await tryCall(c, 'RepositoryModelLoad', { model_name: 'movies_1' })).toMatchObject({ ok: false, codeName: 'NOT_FOUND', details: expect.stringMatching(/no models root/) });
    expect(await tryCall(c, 'RepositoryModelUnload', { model_name: 'movies_1' })).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });
    expect(await tryCall(c, 'RepositoryModelLoad', { model_name: '../etc' })).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT' });
    expect(await tryCall(c, 'RepositoryIndex', { repository_name: 'other' })).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT' });
  });
});

describe('reflection and health', () => {
  it('reflection lists both protocols and serves the V2 proto file', async () => {
    const rc = reflectionClient(address);
    try {
      const list = await reflect(rc, { list_services: '*' });
      const names = list.list_services_response.service.map((s: { name: string }) => s.name);
      expect(names).toEqual(expect.arrayContaining([V2_SERVICE, 'seldon.protos.Model', 'seldon.protos.Seldon', 'grpc.health.v1.Health']));
      const fd = await reflect(rc, { file_containing_symbol: V2_SERVICE });
      expect(fd.file_descriptor_response.file_descriptor_proto.length).toBeGreaterThan(0);
    } finally {
      rc.close();
    }
  });

  it('health covers both protocols', async () => {
    const h = healthClient(address);
    try {
      for (const service of ['', V2_SERVICE, 'seldon.protos.Model']) expect(await call(h, 'Check', { service })).toEqual({ status: 'SERVING' });
    } finally {
      h.close();
    }
  });

  it('metrics count V2 calls by method and code, labelled protocol v2', async () => {
    const text = await (await fetch(`${ts.metricsUrl}/prometheus`)).text();
    expect(text).toMatch(/transport="grpc",route="inference\.GRPCInferenceService\/ModelInfer",code="OK"/);
    expect(text).toMatch(/transport="grpc",route="inference\.GRPCInferenceService\/ModelInfer",code="INVALID_ARGUMENT"/);
    expect(text).toMatch(/recserve_requests_total\{[^}]*route="inference\.GRPCInferenceService\/ModelInfer"[^}]*protocol="v2"[^}]*\}/);
  });
});

describe('not ready', () => {
  it('a model still loading: health NOT_SERVING, ServerReady and ModelReady false, ModelInfer and ModelMetadata UNAVAILABLE', async () => {
    const config = { ...loadConfig({ LOG_LEVEL: 'silent' }), host: '127.0.0.1', grpcPort: 0 };
    const log = createLogger('silent');
    const metrics = createMetrics(config);
    const registry = new ModelRegistry(inProcessScorer);
    const service = new RecommenderService({ registry, limits: config.limits, metrics, learner: null, startup: new StartupGate(registry, 0) });
    const models = new ModelHub(service, 'pending');
    const srv = await startGrpcServer({ config, dataplane: new DataPlane(service, config, log), metrics, log, models });
    const cl = v2Client(`127.0.0.1:${srv.port}`);
    const h = healthClient(`127.0.0.1:${srv.port}`);
    try {
      for (const s of ['', V2_SERVICE]) expect(await call(h, 'Check', { service: s })).toEqual({ status: 'NOT_SERVING' });
      expect(await call(cl, 'ServerLive', {})).toEqual({ live: true });
      expect(await ready(cl, 'ServerReady', {})).toBe(false);
      expect(await ready(cl, 'ModelReady', { name: 'pending' })).toBe(false);
      const r = await tryCall(cl, 'ModelInfer', { model_name: 'pending', inputs: [idInput('user_id', ['1'])] });
      expect(r).toMatchObject({ ok: false, codeName: 'UNAVAILABLE', details: expect.stringMatching(/no model is loaded yet/) });
      expect(r.ok || r.reason).toBeUndefined(); // no Seldon trailer on V2 errors
      expect(await tryCall(cl, 'ModelMetadata', { name: 'pending' })).toMatchObject({ ok: false, codeName: 'UNAVAILABLE' });
      expect(await tryCall(cl, 'RepositoryIndex', {})).toMatchObject({ ok: false, codeName: 'UNIMPLEMENTED' });
    } finally {
      cl.close();
      h.close();
      await srv.close(1000);
    }
  });

  // Last: it starts the shared server's drain.
  it('a draining model: ServerReady and ModelReady false, health NOT_SERVING (calls in flight are still answered)', async () => {
    ts.server.service.startDraining();
    expect(await ready(c, 'ModelReady', { name: MODEL })).toBe(false);
    expect(await ready(c, 'ServerReady', {})).toBe(false);
    expect(inferRows(await infer({ inputs: [idInput('user_id', ['1'])] }))).toHaveLength(1);
    expect(await healthOf(address, V2_SERVICE, 'NOT_SERVING')).toBe('NOT_SERVING');
  });
});
