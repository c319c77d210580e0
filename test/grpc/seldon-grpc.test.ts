// The Seldon v1 gRPC server over a real socket, driven by a client built only from proto/prediction.proto.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import descriptorExt from 'protobufjs/ext/descriptor/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/transport/grpc/server.js';
import { ModelRegistry } from '../../src/model/registry.js';
import { inProcessScorer } from '../../src/model/pool/factory.js';
import { DataPlane } from '../../src/protocols/seldon-v1/dataplane.js';
import { RecommenderService } from '../../src/core/service.js';
import { StartupGate } from '../../src/core/startup-gate.js';
import type { Learner } from '../../src/core/types.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import {
  call,
  feedbackToProto,
  healthClient,
  messageFromProto,
  messageToProto,
  metadataFromProto,
  rawCall,
  reflect,
  reflectionClient,
  SERVICES,
  seldonClients,
  tryCall,
  type SeldonClients,
} from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let ts: TestServer;
const learner: { override: Learner | null } = { override: null };
let address: string;
let c: SeldonClients;

beforeAll(async () => {
  // Feedback learning can be replaced per test (a failing or blocking learner) through `learner.override`.
  ts = await startTestServer({}, { wrapLearner: (real) => ({ remember: (r, m) => real.remember?.(r, m), learn: (e, m, c) => (learner.override ?? real).learn(e, m, c) }) });
  address = `127.0.0.1:${ts.server.ports.grpc}`;
  c = seldonClients(address, { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
});

afterAll(async () => {
  c?.close();
  await ts?.stop();
});

const predictJson = (json: unknown) => messageToProto({ jsonData: json });

describe('every RPC', () => {
  it('Model/Predict and Seldon/Predict recommend', async () => {
    for (const svc of ['Model', 'Seldon'] as const) {
      const res = messageFromProto(await call(c[svc], 'Predict', predictJson({ user_id: '1', k: 3 })));
      expect(res.jsonData.recommendations).toHaveLength(1);
      expect(res.jsonData.recommendations[0]).toMatchObject({ user_id: '1', strategy: 'personalized' });
      expect(res.jsonData.recommendations[0].items).toHaveLength(3);
      expect(res.jsonData.recommendations[0].items[0]).toEqual(expect.objectContaining({ item_id: expect.any(String), score: expect.any(Number), title: expect.any(String) }));
      expect(res.meta.puid).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.meta.tags).toMatchObject({ model_name: 'demo-movies' });
    }
  });

  it('answers a table in the request form, with cold-start users named in the tags', async () => {
    const res = messageFromProto(await call(c.Model, 'Predict', messageToProto({ data: { names: ['user_id'], ndarray: [['2'], ['no-such-user']] }, meta: { tags: { k: 2 } } })));
    expect(res.data.names).toEqual(['user_id', 'item_id', 'score', 'rank']);
    expect(res.data.ndarray).toHaveLength(4);
    expect(res.meta.tags.cold_start_users).toEqual(['no-such-user']);
    const t = messageFromProto(await call(c.Model, 'Predict', messageToProto({ data: { tensor: { shape: [1, 2], values: [3, 7] } } })));
    expect(t.data.names).toEqual(['score']);
    expect(t.data.tensor.shape).toEqual([1, 1]);
    expect(t.data.tensor.values).toHaveLength(1);
  });

  it('echoes the puid of meta or of the seldon-puid header', async () => {
    const a = await call(c.Model, 'Predict', messageToProto({ strData: '5', meta: { puid: 'from-meta' } }));
    expect(a.meta.puid).toBe('from-meta');
    const b = await call(c.Model, 'Predict', messageToProto({ strData: '5' }), { metadata: { 'seldon-puid': 'from-header' } });
    expect(b.meta.puid).toBe('from-header');
  });

  it('SendFeedback on Model, Generic, Router and Seldon', async () => {
    const pred = await call(c.Model, 'Predict', predictJson({ user_id: '4', k: 2 }));
    for (const svc of ['Model', 'Generic', 'Router', 'Seldon'] as const) {
      const fb = { request: { jsonData: { user_id: '4', k: 2 } }, response: messageFromProto(pred), reward: 1 };
      const res = messageFromProto(await call(c[svc], 'SendFeedback', feedbackToProto(fb)));
      expect(res.meta.puid).toBe(pred.meta.puid);
      expect(res.meta.tags.model_name).toBe('demo-movies');
    }
  });

  it('Model/Metadata and Seldon/ModelMetadata', async () => {
    const md = metadataFromProto(await call(c.Model, 'Metadata', {}));
    expect(md).toMatchObject({ name: 'demo-movies', platform: 'onnx', versions: [expect.any(String)] });
    expect(md.inputs[0]).toEqual({ messagetype: 'jsonData', schema: { $ref: '/openapi.yaml#/components/schemas/RecommendRequest' } });
    expect(md.custom.n_users).toBe('300');
    // Same as REST /api/v1.0/metadata.
    const rest = await (await fetch(`${ts.url}/api/v1.0/metadata`)).json();
    expect(md).toEqual(rest);
    expect(metadataFromProto(await call(c.Seldon, 'ModelMetadata', {}))).toEqual(md);
    expect(metadataFromProto(await call(c.Seldon, 'ModelMetadata', { name: 'demo-movies' }))).toEqual(md);
    const other = await tryCall(c.Seldon, 'ModelMetadata', { name: 'someone-else' });
    expect(other).toMatchObject({ ok: false, codeName: 'NOT_FOUND', reason: 'MICROSERVICE_NOT_FOUND' });
    expect(other.ok || other.details).toMatch(/no model named "someone-else"/);
  });

  it('Seldon/GraphMetadata is UNIMPLEMENTED with a clear message', async () => {
    const r = await tryCall(c.Seldon, 'GraphMetadata', {});
    expect(r).toMatchObject({ ok: false, codeName: 'UNIMPLEMENTED' });
    expect(r.ok || r.details).toMatch(/GraphMetadata not available on the Model level/);
  });

  it('TransformInput / TransformOutput pass the message through (Generic, Transformer, OutputTransformer)', async () => {
    const msg = { data: { names: ['a', 'b'], ndarray: [[1, 2]] }, meta: { puid: 'p1', tags: { foo: 'bar' } } };
    const calls: [keyof SeldonClients, string][] = [
      ['Generic', 'TransformInput'],
      ['Generic', 'TransformOutput'],
      ['Transformer', 'TransformInput'],
      ['OutputTransformer', 'TransformOutput'],
    ];
    for (const [svc, method] of calls) {
      const res = messageFromProto(await call(c[svc] as grpc.Client, method, messageToProto(msg)));
      expect(res.data).toEqual(msg.data);
      expect(res.meta.puid).toBe('p1');
      expect(res.meta.tags).toMatchObject({ foo: 'bar', model_name: 'demo-movies' });
    }
    const empty = await tryCall(c.Transformer, 'TransformInput', {});
    expect(empty).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT' });
  });

  it('a customData (google.protobuf.Any) message passes through with its type URL', async () => {
    const any = { type_url: 'type.googleapis.com/example.Thing', value: Buffer.from('abc') };
    const res = await call(c.Transformer as grpc.Client, 'TransformInput', { customData: any });
    expect(res.customData.type_url).toBe(any.type_url);
    expect(Buffer.from(res.customData.value, 'base64').toString()).toBe('abc'); // the client reads bytes as base64
  });

  it('Route and Aggregate are UNIMPLEMENTED (a MODEL node), on Generic, Router and Combiner', async () => {
    for (const [svc, method, text] of [
      ['Generic', 'Route', 'Route not defined'],
      ['Router', 'Route', 'Route not defined'],
      ['Generic', 'Aggregate', 'Aggregate not defined'],
      ['Combiner', 'Aggregate', 'Aggregate not defined'],
    ] as const) {
      const req = method === 'Route' ? messageToProto({ data: { ndarray: [[1]] } }) : { seldonMessages: [messageToProto({ data: { ndarray: [[1]] } })] };
      const r = await tryCall(c[svc], method, req);
      expect(r).toMatchObject({ ok: false, codeName: 'UNIMPLEMENTED' });
      expect(r.ok || r.details).toContain(text);
    }
  });
});

describe('errors map to gRPC codes', () => {
  const bad: [string, unknown, RegExp][] = [
    ['no payload', {}, /needs one of data, jsonData, strData, binData/],
    ['jsonData without a user', predictJson({ k: 3 }), /^jsonData .*user_id/],
    ['k above max_k', predictJson({ user_id: '1', k: 100000 }), /larger than max_k/],
    ['ragged ndarray', messageToProto({ data: { ndarray: [['1', '2'], ['3']] } }), /ragged/],
    ['tensor shape mismatch', messageToProto({ data: { tensor: { shape: [3], values: [1, 2] } } }), /holds 2 values but shape/],
    ['empty strData', messageToProto({ strData: '' }), /strData is empty/],
    ['customData', messageToProto({ customData: { '@type': 'type.googleapis.com/x.Y', value: '' } }), /customData is not supported/],
    [
      'tftensor',
      messageToProto({ data: { tftensor: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: 1 }, { size: 1 }] }, float_val: [1] } } }),
      /data\.tftensor is not supported; send data\.ndarray or data\.tensor/,
    ],
    ['feedback reward out of range', null, /reward/],
  ];
  for (const [name, req, text] of bad) {
    it(`INVALID_ARGUMENT: ${name}`, async () => {
      const r = req === null ? await tryCall(c.Model, 'SendFeedback', { reward: 2 }) : await tryCall(c.Model, 'Predict', req);
      expect(r).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT', reason: 'MICROSERVICE_BAD_DATA' });
      expect(r.ok || r.details).toMatch(text);
    });
  }

  it('INTERNAL for a real fault, without leaking its text', async () => {
    const saved = learner.override;
    learner.override = {
      learn: async () => {
        throw new Error('secret: disk on fire at /var/lib/x');
      },
    };
    try {
      const r = await tryCall(c.Model, 'SendFeedback', feedbackToProto({ request: { jsonData: { user_id: '1' } }, reward: 1 }));
      expect(r).toMatchObject({ ok: false, codeName: 'INTERNAL', details: 'internal error', reason: 'MICROSERVICE_INTERNAL_ERROR' });
    } finally {
      learner.override = saved;
    }
  });

  it('malformed message bytes are INVALID_ARGUMENT and the server keeps serving', async () => {
    const garbage = [
      Buffer.from([0x0a, 0x05, 0x41]), // field 1 says 5 bytes follow, 1 does
      Buffer.from([0x07]), // wire type 7 does not exist
      Buffer.from('this is not a protobuf message at all'),
    ];
    for (const path of ['/seldon.protos.Model/Predict', '/seldon.protos.Model/SendFeedback', '/seldon.protos.Combiner/Aggregate', '/seldon.protos.Seldon/ModelMetadata']) {
      for (const bytes of garbage) {
        const r = await rawCall(address, path, bytes);
        expect(r.ok, path).toBe(false);
        if (!r.ok) {
          expect(grpc.status[r.code]).toBe('INVALID_ARGUMENT');
          expect(r.details).toMatch(/^malformed seldon\.protos\.\w+ message: /);
        }
      }
    }
    // jsonData nested deeper than the JSON depth limit: refused on the wire bytes, before decoding.
    for (const depth of [60, 5000]) {
      const r = await rawCall(address, '/seldon.protos.Model/Predict', nestedJsonData(depth));
      expect(r.ok || [grpc.status[r.code], r.details]).toEqual(['INVALID_ARGUMENT', 'the message is nested more than 32 levels deep (limit RECSERVE_MAX_JSON_DEPTH=32)']);
    }
    // Empty bytes are a valid (empty) message.
    const md = await rawCall(address, '/seldon.protos.Model/Metadata', Buffer.alloc(0));
    expect(md.ok).toBe(true);
    const unknown = await rawCall(address, '/seldon.protos.Model/Nope', Buffer.alloc(0));
    expect(unknown.ok || grpc.status[unknown.code]).toBe('UNIMPLEMENTED');
    const res = await call(c.Model, 'Predict', messageToProto({ strData: '1' }));
    expect(JSON.parse(res.strData).recommendations[0].user_id).toBe('1');
  });
});

describe('reflection and health', () => {
  it('reflection (v1 and v1alpha) lists the Seldon services and health', async () => {
    for (const version of ['v1', 'v1alpha'] as const) {
      const client = reflectionClient(address, version);
      try {
        const list = await reflect(client, { list_services: '*' });
        const names = list.list_services_response.service.map((s: { name: string }) => s.name);
        for (const s of SERVICES) expect(names).toContain(`seldon.protos.${s}`);
        expect(names).toContain('grpc.health.v1.Health');
      } finally {
        client.close();
      }
    }
  });

  it('reflection serves linkable descriptors: real file names and dependency lists, as grpcurl needs', async () => {
    const client = reflectionClient(address);
    try {
      // grpcurl's walk: the file holding the service, then every dependency by file name, recursively.
      const FDP = (descriptorExt as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto;
      const files = new Map<string, any>();
      const take = (res: any) => {
        expect(res.error_response).toBeUndefined();
        for (const b of res.file_descriptor_response.file_descriptor_proto) {
          const f = FDP.toObject(FDP.decode(Buffer.from(b)), { arrays: true }) as any;
          files.set(f.name, f);
        }
      };
      take(await reflect(client, { file_containing_symbol: 'seldon.protos.Model' }));
      const prediction = files.get('prediction.proto');
      expect(prediction.package).toBe('seldon.protos');
      expect([...prediction.dependency].sort()).toEqual(['google/protobuf/any.proto', 'google/protobuf/empty.proto', 'google/protobuf/struct.proto', 'tensorflow/core/framework/tensor.proto']);
      const queue = [...files.values()].flatMap((f) => f.dependency as string[]);
      while (queue.length) {
        const dep = queue.shift()!;
        if (!files.has(dep)) take(await reflect(client, { file_by_filename: dep }));
        expect(files.has(dep), dep).toBe(true);
        queue.push(...files.get(dep).dependency.filter((d: string) => !files.has(d)));
      }
      // The descriptors alone describe the protocol: rebuild it and round-trip a message.
      const root = (protobuf.Root as unknown as { fromDescriptor(d: unknown): protobuf.Root }).fromDescriptor({ file: [...files.values()] });
      const SM = root.lookupType('seldon.protos.SeldonMessage');
      expect(SM.fields.data.id).toBe(3);
      expect(root.lookupType('tensorflow.TensorProto').fields.tensor_shape.id).toBe(2);
      const bytes = SM.encode(SM.fromObject({ strData: '42', meta: { puid: 'p' } })).finish();
      const res = await rawCall(address, '/seldon.protos.Model/Predict', Buffer.from(bytes));
      expect(res.ok).toBe(true);
      if (res.ok) expect((SM.toObject(SM.decode(res.bytes)) as any).meta.puid).toBe('p');
    } finally {
      client.close();
    }
  });

  it('health says SERVING for the server and each service, NOT_FOUND for unknown ones', async () => {
    const h = healthClient(address);
    try {
      expect(await call(h, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
      expect(await call(h, 'Check', { service: 'seldon.protos.Model' })).toEqual({ status: 'SERVING' });
      const r = await tryCall(h, 'Check', { service: 'nope.Nope' });
      expect(r).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });
    } finally {
      h.close();
    }
  });
});

describe('deadlines and cancellation', () => {
  /** A feedback handler that waits until its call is aborted and records that it was. */
  function blockingHandler() {
    const seen: { aborted: boolean; reason?: string }[] = [];
    const handler: Learner = {
      learn: (_event, _model, ctx) =>
        new Promise((_resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('never aborted')), 5000);
          ctx.signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            seen.push({ aborted: true, reason: (ctx.signal?.reason as Error)?.message });
            reject(ctx.signal?.reason);
          });
        }),
    };
    return { handler, seen };
  }

  async function grpcCount(code: string, route = 'seldon.protos.Model/SendFeedback') {
    const m = await ts.server.metrics.registry.getSingleMetric('recserve_requests_total')!.get();
    return m.values.find((v) => v.labels.transport === 'grpc' && v.labels.route === route && v.labels.code === code)?.value ?? 0;
  }

  it('a call past its deadline gets DEADLINE_EXCEEDED and its work is aborted', async () => {
    const saved = learner.override;
    const { handler, seen } = blockingHandler();
    learner.override = handler;
    const before = await grpcCount('DEADLINE_EXCEEDED');
    try {
      const t0 = Date.now();
      const r = await tryCall(c.Model, 'SendFeedback', feedbackToProto({ request: { jsonData: { user_id: '1' } }, reward: 1 }), { deadlineMs: 300 });
      expect(r).toMatchObject({ ok: false, codeName: 'DEADLINE_EXCEEDED' });
      expect(Date.now() - t0).toBeLessThan(2000);
      await waitFor(() => seen.length === 1);
      expect(seen[0]).toEqual({ aborted: true, reason: 'the deadline passed' });
      await waitFor(async () => (await grpcCount('DEADLINE_EXCEEDED')) === before + 1);
    } finally {
      learner.override = saved;
    }
  });

  it('a call the client cancels is aborted on the server and counted as CANCELLED', async () => {
    const saved = learner.override;
    const { handler, seen } = blockingHandler();
    learner.override = handler;
    const before = await grpcCount('CANCELLED');
    try {
      const pending = new Promise<grpc.ServiceError | null>((resolve) => {
        const callObj = (c.Model as any).SendFeedback(feedbackToProto({ request: { jsonData: { user_id: '1' } }, reward: 1 }), (err: grpc.ServiceError | null) => resolve(err));
        setTimeout(() => callObj.cancel(), 200);
      });
      expect((await pending)?.code).toBe(grpc.status.CANCELLED);
      await waitFor(() => seen.length === 1);
      expect(seen[0]).toEqual({ aborted: true, reason: 'the caller cancelled the call' });
      await waitFor(async () => (await grpcCount('CANCELLED')) === before + 1);
    } finally {
      learner.override = saved;
    }
  });
});

describe('message size limits', () => {
  it('accepts requests up to the REST body limit and answers up to 64 MiB by default', async () => {
    expect(ts.server.config.grpcMaxMessageBytes).toBe(64 * 1024 * 1024);
    expect(ts.server.config.grpcMaxReceiveBytes).toBe(ts.server.config.bodyLimitBytes);
    const big = ' '.repeat(4.5 * 1024 * 1024) + '7';
    const res = await call(c.Model, 'Predict', messageToProto({ strData: big }));
    expect(JSON.parse(res.strData).recommendations[0].user_id).toBe('7');
    const tooBig = await tryCall(c.Model, 'Predict', messageToProto({ strData: ' '.repeat(6 * 1024 * 1024) + '7' }));
    expect(tooBig).toMatchObject({ ok: false, codeName: 'RESOURCE_EXHAUSTED' });
    // The refusal leaves the shared connection usable.
    const after = await call(c.Model, 'Predict', messageToProto({ strData: '7' }));
    expect(JSON.parse(after.strData).recommendations[0].user_id).toBe('7');
  });

  it('the seldon.io/grpc-max-message-size annotation sets the limit', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-ann-'));
    try {
      const file = path.join(dir, 'annotations');
      writeFileSync(file, 'seldon.io/grpc-max-message-size="1048576"\nother="x"\n');
      expect(loadConfig({ RECSERVE_PODINFO_ANNOTATIONS: file })).toMatchObject({ grpcMaxMessageBytes: 1048576, grpcMaxReceiveBytes: 1048576 });
      expect(loadConfig({ RECSERVE_PODINFO_ANNOTATIONS: path.join(dir, 'none'), RECSERVE_GRPC_MAX_MESSAGE_SIZE: '2000000' }).grpcMaxMessageBytes).toBe(2000000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a small limit refuses larger requests and responses with RESOURCE_EXHAUSTED', async () => {
    const small = await startGrpcServer({
      config: { ...ts.server.config, grpcPort: 0, grpcMaxMessageBytes: 4096, grpcMaxReceiveBytes: 4096 },
      dataplane: ts.server.dataplane,
      metrics: ts.server.metrics,
      log: ts.server.log,
    });
    const client = seldonClients(`127.0.0.1:${small.port}`, { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
    try {
      const big = await tryCall(client.Model, 'Predict', messageToProto({ strData: ' '.repeat(8000) + '1' }));
      expect(big).toMatchObject({ ok: false, codeName: 'RESOURCE_EXHAUSTED' });
      const bigAnswer = await tryCall(client.Model, 'Predict', predictJson({ user_id: '1', k: 100 }));
      expect(bigAnswer).toMatchObject({ ok: false, codeName: 'RESOURCE_EXHAUSTED' });
      expect(bigAnswer.ok || bigAnswer.details).toMatch(/above the gRPC max message size of 4096 bytes/);
      const fits = await tryCall(client.Model, 'Predict', predictJson({ user_id: '1', k: 2 }));
      expect(fits.ok).toBe(true);
    } finally {
      client.close();
      await small.close(1000);
    }
  });
});

describe('metrics', () => {
  it('count gRPC calls by method and code, with latency histograms', async () => {
    await call(c.Model, 'Predict', predictJson({ user_id: '9' }));
    await tryCall(c.Model, 'Predict', {});
    const text = await (await fetch(`${ts.metricsUrl}/prometheus`)).text();
    expect(text).toMatch(/recserve_requests_total\{[^}]*transport="grpc",route="seldon\.protos\.Model\/Predict",code="OK"[^}]*\} [1-9]/);
    expect(text).toMatch(/recserve_requests_total\{[^}]*transport="grpc",route="seldon\.protos\.Model\/Predict",code="INVALID_ARGUMENT"[^}]*\} [1-9]/);
    expect(text).toMatch(/recserve_request_duration_seconds_count\{[^}]*transport="grpc",route="seldon\.protos\.Model\/Predict"[^}]*\} [1-9]/);
  });
});

describe('readiness', () => {
  it('before a model is loaded: health NOT_SERVING and data RPCs UNAVAILABLE', async () => {
    const config = { ...ts.server.config, grpcPort: 0 };
    const log = createLogger('silent');
    const metrics = createMetrics(config);
    const registry = new ModelRegistry(inProcessScorer);
    const service = new RecommenderService({ registry, limits: config.limits, metrics, learner: null, startup: new StartupGate(registry, 0) });
    const dataplane = new DataPlane(service, config, log);
    let srv: RunningGrpcServer | null = null;
    const clients = () => seldonClients(`127.0.0.1:${srv!.port}`);
    srv = await startGrpcServer({ config, dataplane, metrics, log });
    const cl = clients();
    const h = healthClient(`127.0.0.1:${srv.port}`);
    try {
      expect(await call(h, 'Check', { service: '' })).toEqual({ status: 'NOT_SERVING' });
      expect(await call(h, 'Check', { service: 'seldon.protos.Model' })).toEqual({ status: 'NOT_SERVING' });
      for (const [svc, method, req] of [
        ['Model', 'Predict', predictJson({ user_id: '1' })],
        ['Model', 'Metadata', {}],
        ['Model', 'SendFeedback', { reward: 1 }],
      ] as const) {
        const r = await tryCall(cl[svc], method, req);
        expect(r).toMatchObject({ ok: false, codeName: 'UNAVAILABLE', reason: 'MICROSERVICE_UNAVAILABLE' });
        expect(r.ok || r.details).toMatch(/no model is loaded yet/);
      }
    } finally {
      cl.close();
      h.close();
      await srv.close(1000);
    }
  });

  // Last: it starts the shared server's drain.
  it('health turns NOT_SERVING once the server starts draining', async () => {
    const h = healthClient(address);
    try {
      expect(await call(h, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
      ts.server.service.startDraining();
      await waitFor(async () => (await call(h, 'Check', { service: '' })).status === 'NOT_SERVING', 3000);
    } finally {
      h.close();
    }
  });
});

/** SeldonMessage{jsonData: [[[…]]]} nested `depth` lists deep, encoded by hand. */
function nestedJsonData(depth: number): Buffer {
  const varint = (n: number) => {
    const b: number[] = [];
    for (; n > 127; n = Math.floor(n / 128)) b.push((n & 127) | 128);
    b.push(n);
    return Buffer.from(b);
  };
  const field = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), varint(body.length), body]);
  let value = Buffer.alloc(0); // an empty google.protobuf.Value
  for (let i = 0; i < depth; i++) value = field(0x32 /* Value.list_value */, field(0x0a /* ListValue.values */, value));
  return field(0x32 /* SeldonMessage.jsonData */, value);
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
