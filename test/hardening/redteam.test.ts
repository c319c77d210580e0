// Regression tests from an independent black-box attack review of the hardened server: variations of the
// issue's findings (other number forms, other payload carriers, other ways to name a puid) that hold on
// main. Real HTTP, real gRPC on one shared channel, the demo model's real ONNX session, real SQLite.
import http from 'node:http';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSeldonError, postJson, startTestServer, type TestServer } from '../helpers/server.js';
import { restProblems, send, type RawRequest } from './answers.js';
import { goodCall, lengthDelimited, M, rawUnary, varint } from './grpc-junk.js';

const TIMEOUT_MS = 10_000;
let ts: TestServer;
let base: URL;
let agent: http.Agent;
let client: grpc.Client;

beforeAll(async () => {
  ts = await startTestServer();
  base = new URL(ts.url);
  agent = new http.Agent({ keepAlive: true });
  client = new grpc.Client(`127.0.0.1:${ts.server.ports.grpc}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
});

afterAll(async () => {
  client?.close();
  agent?.destroy();
  await ts?.stop();
});

const jsonReq = (path: string, body: string, headers: Record<string, string> = {}): RawRequest => ({
  method: 'POST',
  path,
  headers: { 'content-type': 'application/json', ...headers },
  body: Buffer.from(body),
});

/** A 4xx in Seldon's format with none of the fuzzers' problems; returns the info text. */
async function refusedInfo(req: RawRequest, status?: number): Promise<string> {
  const a = await send(base, agent, req, TIMEOUT_MS);
  const where = `${req.method} ${req.path.slice(0, 60)}`;
  expect(restProblems(a, TIMEOUT_MS), where).toEqual([]);
  if (status !== undefined) expect(a.status, where).toBe(status);
  else expect(a.status >= 400 && a.status < 500, `${where} answered ${a.status}`).toBe(true);
  return expectSeldonError(JSON.parse(a.body.toString()));
}

describe('tensor shapes in number forms the issue did not list', () => {
  // 1e308 and 2**53+1 are not safe integers; a duplicate "shape" key keeps the last one (JSON.parse).
  const shapes = ['[1e308,0]', '[9007199254740993,0]', '[0,1000000000]'];
  for (const shape of shapes) {
    it(`shape ${shape} is a 400 naming RECSERVE_MAX_TENSOR_VALUES on predict and in feedback response and truth`, async () => {
      const tensor = `{"shape":${shape},"values":[]}`;
      const bodies: [string, string][] = [
        ['/api/v1.0/predictions', `{"data":{"tensor":${tensor}}}`],
        ['/api/v1.0/feedback', `{"request":{"jsonData":{"user_id":"1"}},"response":{"data":{"tensor":${tensor}}},"reward":1}`],
        ['/api/v1.0/feedback', `{"request":{"jsonData":{"user_id":"1"}},"truth":{"data":{"tensor":${tensor}}},"reward":1}`],
      ];
      for (const [path, body] of bodies) expect(await refusedInfo(jsonReq(path, body), 400)).toMatch(/RECSERVE_MAX_TENSOR_VALUES/);
    });
  }

  it('a duplicate "shape" key cannot smuggle a huge shape past a small one', async () => {
    const info = await refusedInfo(jsonReq('/predict', '{"data":{"tensor":{"shape":[1,1],"shape":[1000000000,0],"values":[]}}}'), 400);
    expect(info).toMatch(/RECSERVE_MAX_TENSOR_VALUES/);
  });
});

describe('nesting carried inside strings and parts', () => {
  const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

  it('10,000-deep JSON inside strData and binData is a 400 naming RECSERVE_MAX_JSON_DEPTH', async () => {
    const inner = `{"user_id":"1","filter":${deep(10_000)}}`;
    for (const body of [{ strData: inner }, { binData: Buffer.from(inner).toString('base64') }]) {
      expect(await refusedInfo(jsonReq('/predict', JSON.stringify(body)), 400)).toMatch(/RECSERVE_MAX_JSON_DEPTH/);
    }
  });

  it('a 10,000-deep multipart meta part is a 400 naming RECSERVE_MAX_JSON_DEPTH', async () => {
    const b = 'redteamboundary';
    const body =
      `--${b}\r\nContent-Disposition: form-data; name="meta"\r\n\r\n{"tags":${deep(10_000)}}\r\n` +
      `--${b}\r\nContent-Disposition: form-data; name="strData"\r\n\r\n1\r\n--${b}--\r\n`;
    const req: RawRequest = { method: 'POST', path: '/predict', headers: { 'content-type': `multipart/form-data; boundary=${b}` }, body: Buffer.from(body) };
    expect(await refusedInfo(req, 400)).toMatch(/RECSERVE_MAX_JSON_DEPTH/);
  });

  it('50,000-deep ListValues over gRPC (in meta.tags and in a feedback truth) are INVALID_ARGUMENT; the channel keeps serving', async () => {
    let v = lengthDelimited(3, Buffer.from('1')); // Value{string_value: "1"}
    for (let i = 0; i < 50_000; i++) v = lengthDelimited(6, lengthDelimited(1, v)); // Value{list_value{values: [v]}}
    const tagEntry = Buffer.concat([lengthDelimited(1, Buffer.from('a')), lengthDelimited(2, v)]);
    const good = lengthDelimited(5, Buffer.from('1')); // strData "1"
    const predict = Buffer.concat([lengthDelimited(2, lengthDelimited(2, tagEntry)), good]);
    const feedback = Buffer.concat([lengthDelimited(1, good), lengthDelimited(4, lengthDelimited(6, v))]);
    for (const [method, bytes] of [[M('Model', 'Predict'), predict], [M('Model', 'SendFeedback'), feedback]] as const) {
      const a = await rawUnary(client, method, bytes);
      expect(a.code, method).toBe(grpc.status.INVALID_ARGUMENT);
      expect(a.details.length).toBeLessThan(300);
      expect(await goodCall(client)).toBeNull();
    }
  });
});

describe('compressed bodies', () => {
  it('a gzip bomb (200 MB of spaces in 200 KB) is a 413 naming RECSERVE_BODY_LIMIT', async () => {
    const req: RawRequest = {
      method: 'POST',
      path: '/predict',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: zlib.gzipSync(Buffer.alloc(200 * 1024 * 1024, 32)),
    };
    expect(await refusedInfo(req, 413)).toMatch(/RECSERVE_BODY_LIMIT/);
  });
});

describe('a feedback retry is recorded once however it names the prediction or its truth', () => {
  it('the same items sent again via Seldon-Puid, request.meta.puid, ndarray or strData truth are duplicates', async () => {
    const pred = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { user_id: 'redteam-retry-user', k: 3 } });
    expect(pred.status).toBe(200);
    const puid: string = pred.body.meta.puid;
    const item: string = pred.body.jsonData.recommendations[0].items[0].item_id;
    const first = await postJson(`${ts.url}/api/v1.0/feedback`, { response: { meta: { puid } }, truth: { jsonData: [item] }, reward: 1 });
    expect(first.status).toBe(200);
    expect(first.body.meta.tags.feedback_duplicate).toBeUndefined();
    const retries: [unknown, Record<string, string>][] = [
      [{ truth: { jsonData: [item] }, reward: 1 }, { 'seldon-puid': puid }],
      [{ request: { meta: { puid }, jsonData: { user_id: 'redteam-retry-user' } }, truth: { jsonData: [item] }, reward: 1 }, {}],
      [{ response: { meta: { puid } }, truth: { data: { ndarray: [[item]] } }, reward: 1 }, {}],
      [{ response: { meta: { puid } }, truth: { strData: item }, reward: 1 }, {}],
      [{ response: { meta: { puid } }, truth: { jsonData: [item, item] }, reward: 1 }, {}],
      [{ response: { meta: { puid } }, truth: { jsonData: [Number(item)] }, reward: 1 }, {}],
    ];
    for (const [body, headers] of retries) {
      const r = await postJson(`${ts.url}/api/v1.0/feedback`, body, headers);
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(r.body.meta.tags.feedback_duplicate, JSON.stringify(body)).toBe(true);
      expect(r.body.meta.tags.feedback_interactions).toBe(0);
    }
  });
});

describe('puid and id length on feedback', () => {
  it('a Seldon-Puid header past RECSERVE_MAX_ID_LENGTH is a 400 on REST feedback and INVALID_ARGUMENT on gRPC SendFeedback', async () => {
    const long = 'p'.repeat(7000);
    const info = await refusedInfo(jsonReq('/api/v1.0/feedback', '{"reward":1}', { 'seldon-puid': long }), 400);
    expect(info).toMatch(/RECSERVE_MAX_ID_LENGTH/);
    expect(info.length).toBeLessThan(300);
    const md = new grpc.Metadata();
    md.set('seldon-puid', long);
    const reward1 = Buffer.concat([varint((3 << 3) | 5), Buffer.from([0, 0, 0x80, 0x3f])]); // Feedback{reward: 1.0f}
    const code = await new Promise<number>((resolve) => {
      const id = (b: Buffer) => b;
      client.makeUnaryRequest(M('Model', 'SendFeedback'), id, id, reward1, md, { deadline: Date.now() + TIMEOUT_MS }, (err) => resolve(err ? err.code : 0));
    });
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await goodCall(client)).toBeNull();
  });
});
