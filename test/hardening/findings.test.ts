// Regression tests for findings 1, 2 and 4 of the hardening issue, each the reproducer as the attack
// review sent it, over real HTTP (raw sockets where the bytes matter) and real gRPC on one channel.
import net from 'node:net';
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSeldonError, startTestServer, type TestServer } from '../helpers/server.js';
import { leakIn, MAX_ERROR_TEXT, restProblems, seldonInfo, send, type RawAnswer, type RawRequest } from './answers.js';
import { deepJsonData, encode, goodCall, M, rawUnary, tensorShapeMessage } from './grpc-junk.js';

const TIMEOUT_MS = 10_000;
let ts: TestServer;
let base: URL;
let agent: http.Agent;
let client: grpc.Client;

beforeAll(async () => {
  ts = await startTestServer();
  base = new URL(ts.url);
  agent = new http.Agent({ keepAlive: true });
  client = new grpc.Client(`127.0.0.1:${ts.server.ports.grpc}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
});

afterAll(async () => {
  client?.close();
  agent?.destroy();
  await ts?.stop();
});

const json = (path: string, body: string): RawRequest => ({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) });
const form = (path: string, body: string): RawRequest => ({ method: 'POST', path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(`json=${encodeURIComponent(body)}`) });
const get = (path: string, body: string): RawRequest => ({ method: 'GET', path: `${path}?json=${encodeURIComponent(body)}` });

async function ping(): Promise<string> {
  const a = await send(base, agent, { method: 'GET', path: '/health/ping' }, TIMEOUT_MS);
  return a.error ?? a.body.toString();
}

/** A 4xx in Seldon's format, none of the fuzzers' problems, and the server still answering afterwards. */
async function expectRefused(req: RawRequest, status: number | 'any 4xx', infoPattern?: RegExp): Promise<string> {
  const a = await send(base, agent, req, TIMEOUT_MS);
  const where = `${req.method} ${req.path.slice(0, 60)}`;
  expect(restProblems(a, TIMEOUT_MS), where).toEqual([]);
  if (status === 'any 4xx') expect(a.status >= 400 && a.status < 500, `${where} answered ${a.status}`).toBe(true);
  else expect(a.status, where).toBe(status);
  const info = expectSeldonError(JSON.parse(a.body.toString()));
  if (infoPattern) expect(info, where).toMatch(infoPattern);
  expect(await ping(), `ping after ${where}`).toBe('pong');
  return info;
}

/** One request written byte for byte on a fresh socket; the raw answer split into status, headers and body. */
function rawHttp(head: string, body: Buffer): Promise<RawAnswer> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(Number(base.port), base.hostname);
    const chunks: Buffer[] = [];
    const done = (error?: string) => {
      socket.destroy();
      const text = Buffer.concat(chunks);
      const split = text.indexOf('\r\n\r\n');
      const headText = text.subarray(0, split < 0 ? text.length : split).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1] ?? 0);
      const headers: http.IncomingHttpHeaders = {};
      for (const line of headText.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let rest: Buffer = split < 0 ? Buffer.alloc(0) : text.subarray(split + 4);
      if (/chunked/i.test(String(headers['transfer-encoding'] ?? ''))) rest = dechunk(rest);
      else if (headers['content-length'] !== undefined) rest = rest.subarray(0, Number(headers['content-length']));
      resolve({ status, headers, body: rest, ms: Date.now() - started, error: status ? undefined : error ?? 'no status line' });
    };
    socket.setTimeout(TIMEOUT_MS, () => done(`no answer within ${TIMEOUT_MS} ms`));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // One answer is all we want: stop once its body is complete.
      const t = Buffer.concat(chunks);
      const split = t.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(t.subarray(0, split).toString('latin1'))?.[1];
      if (split >= 0 && len !== undefined && t.length >= split + 4 + Number(len)) done();
      else if (split >= 0 && t.subarray(split).includes('\r\n0\r\n\r\n')) done();
    });
    socket.on('end', () => done());
    socket.on('error', (e) => done(e.message));
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) break;
    const n = parseInt(b.subarray(at, eol).toString('latin1'), 16);
    if (!n) break;
    out.push(b.subarray(eol + 2, eol + 2 + n));
    at = eol + 2 + n + 2;
  }
  return Buffer.concat(out);
}

describe('finding 1: a tensor shape that allocates before it is checked', () => {
  const predictRoutes = ['/api/v1.0/predictions', '/api/v0.1/predictions', '/predict'];
  const feedbackRoutes = ['/api/v1.0/feedback', '/api/v0.1/feedback', '/send-feedback'];

  for (const shape of ['[400000000,0]', '[4294967296,0]']) {
    const message = `{"data":{"tensor":{"shape":${shape},"values":[]}}}`;

    it(`shape ${shape} is a clear 400 on every predict route, as a form field and as GET ?json=`, async () => {
      for (const route of predictRoutes) await expectRefused(json(route, message), 400, /shape|tensor/i);
      await expectRefused(form('/predict', message), 400, /shape|tensor/i);
      await expectRefused(get('/predict', message), 400, /shape|tensor/i);
    });

    it(`shape ${shape} as a feedback request is a clear 400 on every feedback route`, async () => {
      const feedback = `{"request":${message},"truth":{"jsonData":["18"]},"reward":1}`;
      for (const route of feedbackRoutes) await expectRefused(json(route, feedback), 400, /shape|tensor/i);
      await expectRefused(get('/send-feedback', feedback), 400, /shape|tensor/i);
    });
  }

  it('shape [400000000,0] over gRPC Model/Predict (12 bytes) is INVALID_ARGUMENT and the channel keeps serving', async () => {
    const bytes = tensorShapeMessage([400000000, 0]);
    expect(bytes.length).toBe(12);
    const a = await rawUnary(client, M('Model', 'Predict'), bytes);
    expect([grpc.status[a.code], a.details]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/shape|tensor/i)]);
    expect(await goodCall(client)).toBeNull();
  });

  it('shape [4294967296,0] over gRPC (a 64-bit varint in an int32 field) is refused or read as int32, never a crash', async () => {
    const a = await rawUnary(client, M('Model', 'Predict'), tensorShapeMessage([4294967296n, 0]));
    // proto3 reads an int32 varint modulo 2^32: [0,0] is an empty tensor, which may be refused or answered empty.
    expect(['OK', 'INVALID_ARGUMENT']).toContain(grpc.status[a.code]);
    expect(a.details.length).toBeLessThanOrEqual(MAX_ERROR_TEXT);
    expect(await goodCall(client)).toBeNull();
  });
});

describe('finding 2: 5xx (or a bare status) for bad input', () => {
  const DEPTH = 10_000;
  const deepList = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
  const deepObject = '{"a":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH);

  it('a 10,000-deep ndarray is a 400 in Seldon format on the JSON, form and GET paths', async () => {
    const message = `{"data":{"ndarray":${deepList}}}`;
    await expectRefused(json('/api/v1.0/predictions', message), 400);
    await expectRefused(json('/predict', message), 400);
    await expectRefused(form('/predict', message), 400);
    await expectRefused(json('/api/v1.0/feedback', `{"request":${message},"reward":1}`), 400);
  });

  it('10,000-deep meta.tags are a 400 for predict and feedback (nothing echoes or quotes them)', async () => {
    await expectRefused(json('/api/v1.0/predictions', `{"meta":{"tags":${deepObject}},"jsonData":{"user_id":"1"}}`), 400);
    await expectRefused(json('/api/v1.0/predictions', `{"meta":{"tags":{"a":${deepList}}},"jsonData":{"user_id":"no-such-user"}}`), 400);
    await expectRefused(json('/api/v1.0/feedback', `{"request":{"meta":{"tags":${deepObject}},"jsonData":{"user_id":"1"}},"truth":{"jsonData":["18"]},"reward":1}`), 400);
    await expectRefused(json('/send-feedback', `{"response":{"meta":{"puid":"p","tags":${deepObject}}},"reward":1}`), 400);
  });

  it('a garbage multipart body is a 4xx in Seldon format', async () => {
    const bodies: [string, string][] = [
      ['multipart/form-data; boundary=xyz', 'this is not multipart at all'],
      ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="jsonData"\r\n\r\n{"user_id":"1"}'], // never closed
      ['multipart/form-data; boundary=xyz', '--xyz\r\nGarbage-Header\r\n\r\n1\r\n--xyz--\r\n'],
      ['multipart/form-data', '--xyz\r\nContent-Disposition: form-data; name="jsonData"\r\n\r\n{"user_id":"1"}\r\n--xyz--\r\n'], // no boundary
    ];
    for (const route of ['/api/v1.0/predictions', '/predict', '/send-feedback']) {
      for (const [contentType, body] of bodies) await expectRefused({ method: 'POST', path: route, headers: { 'content-type': contentType }, body: Buffer.from(body) }, 'any 4xx');
    }
  });

  // Found by the fuzzer (not in the review): multer hands a repeated field over as an array.
  it('a multipart field sent twice is a 4xx, not a 500', async () => {
    const part = '--xyz\r\nContent-Disposition: form-data; name="jsonData"\r\n\r\n{"user_id":"1"}\r\n';
    await expectRefused({ method: 'POST', path: '/predict', headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, body: Buffer.from(part + part + '--xyz--\r\n') }, 'any 4xx');
  });

  // Found by the fuzzer: node's HTTP parser answers an over-long URL (GET ?json=) 431 with no body.
  it('GET ?json= longer than the header limit is a 4xx with a Seldon body', async () => {
    const message = JSON.stringify({ jsonData: { user_id: 'x'.repeat(20_000) } });
    for (const route of ['/predict', '/send-feedback']) {
      const a = await send(base, agent, get(route, message), TIMEOUT_MS);
      expect(restProblems(a, TIMEOUT_MS), route).toEqual([]);
      expect(a.status >= 400 && a.status < 500, `${route} answered ${a.status}`).toBe(true);
    }
    expect(await ping()).toBe('pong');
  });

  for (const encoding of ['gzip', 'deflate', 'br']) {
    it(`Content-Encoding: ${encoding} with a body that is not ${encoding} is a 4xx in Seldon format (raw socket)`, async () => {
      const body = Buffer.from('{"jsonData":{"user_id":"1"}}');
      for (const route of ['/api/v1.0/predictions', '/api/v1.0/feedback']) {
        const a = await rawHttp(`POST ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: ${encoding}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body);
        expect(restProblems(a, TIMEOUT_MS), route).toEqual([]);
        expect(a.status >= 400 && a.status < 500, `${route} answered ${a.status}`).toBe(true);
        expect(seldonInfo(a.body.toString())).not.toBeNull();
      }
      expect(await ping()).toBe('pong');
    });
  }

  it('an unknown Expect header is a 4xx with a Seldon body (raw socket)', async () => {
    const body = Buffer.from('{"jsonData":{"user_id":"1"}}');
    for (const route of ['/api/v1.0/predictions', '/predict', '/send-feedback']) {
      const a = await rawHttp(`POST ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: something-else\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body);
      expect(restProblems(a, TIMEOUT_MS), route).toEqual([]);
      expect(a.status >= 400 && a.status < 500, `${route} answered ${a.status}`).toBe(true);
    }
    expect(await ping()).toBe('pong');
  });
});

describe('finding 4: gRPC details echo unbounded input and tear down the shared connection', () => {
  const mb = 'p'.repeat(1 << 20);
  const cases: [string, string, Buffer][] = [
    ['tensor shape of 100k entries', M('Model', 'Predict'), tensorShapeMessage(Array.from({ length: 100_000 }, () => 1))],
    ['1 MB puid on predict', M('Model', 'Predict'), encode('SeldonMessage', { meta: { puid: mb }, strData: '1' })],
    ['1 MB puid on feedback', M('Model', 'SendFeedback'), encode('Feedback', { response: { meta: { puid: mb } }, reward: 1 })],
    ['5,000-item truth', M('Model', 'SendFeedback'), encode('Feedback', { request: { strData: '1' }, truth: { jsonData: { listValue: { values: Array.from({ length: 5000 }, (_, i) => ({ stringValue: `never-shown-item-${i}` })) } } }, reward: 1 })],
    ['5,000-item truth (Generic)', M('Generic', 'SendFeedback'), encode('Feedback', { request: { strData: '1' }, truth: { jsonData: { listValue: { values: Array.from({ length: 5000 }, (_, i) => ({ stringValue: `never-shown-item-${i}` })) } } }, reward: 1 })],
    ['200 KB filter key', M('Model', 'Predict'), encode('SeldonMessage', { jsonData: { structValue: { fields: { user_id: { stringValue: '1' }, filter: { structValue: { fields: { ['f'.repeat(200_000)]: { stringValue: 'Comedy' } } } } } } } })],
    ['1 MB ModelMetadata name', M('Seldon', 'ModelMetadata'), encode('SeldonModelMetadataRequest', { name: 'n'.repeat(1 << 20) })],
    ['10,000-deep jsonData', M('Model', 'Predict'), deepJsonData(10_000, 'list')],
  ];

  for (const [name, method, bytes] of cases) {
    it(`${name}: INVALID_ARGUMENT or NOT_FOUND with short details, then 10 good calls on the same channel succeed`, async () => {
      const a = await rawUnary(client, method, bytes);
      expect(['INVALID_ARGUMENT', 'NOT_FOUND'], `${grpc.status[a.code]}: ${a.details.slice(0, 200)}`).toContain(grpc.status[a.code]);
      expect(a.details.length).toBeLessThanOrEqual(MAX_ERROR_TEXT);
      expect(a.trailerBytes).toBeLessThanOrEqual(4096);
      expect(leakIn(a.details)).toBeNull();
      const after: (string | null)[] = [];
      for (let i = 0; i < 10; i++) after.push(await goodCall(client));
      expect(after).toEqual(Array(10).fill(null));
    });
  }
});
