// Bad input never crashes the server or leaks a stack trace: each case answers in Seldon's error
// format with a message that says what is wrong, and the server keeps serving afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSeldonError, postJson, startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ RECSERVE_BODY_LIMIT: '64kb' });
});
afterAll(async () => t?.stop());

async function raw(path: string, init: RequestInit) {
  const res = await fetch(t.url + path, init);
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* keep text */
  }
  return { status: res.status, body, headers: res.headers };
}

const json = (body: string, type = 'application/json') => ({ method: 'POST', headers: { 'content-type': type }, body });

// [name, path, request, expected status, a fragment the message must contain]
const cases: [string, string, RequestInit, number, RegExp][] = [
  ['malformed JSON', '/api/v1.0/predictions', json('{"jsonData": {"user_id": '), 400, /Can't find JSON in data.*not valid JSON/],
  ['NaN is not JSON', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "k": NaN}}'), 400, /not valid JSON/],
  ['wrong content type', '/api/v1.0/predictions', json('{"jsonData":{"user_id":"1"}}', 'text/plain'), 400, /Content-Type is "text\/plain"/],
  ['empty body', '/api/v1.0/predictions', json(''), 400, /Can't find JSON in data/],
  ['no body, GET without json', '/predict', { method: 'GET' }, 400, /Can't find JSON in data/],
  ['invalid json in the query', '/predict?json=%7Bnope', { method: 'GET' }, 400, /query parameter json is not valid JSON/],
  ['invalid json in the form field', '/predict', { method: 'POST', body: new URLSearchParams({ json: '{nope' }) }, 400, /form field json is not valid JSON/],
  ['a JSON array body', '/api/v1.0/predictions', json('[1, 2]'), 400, /must be object/],
  ['a JSON string body', '/api/v1.0/predictions', json('"hello"'), 400, /must be object/],
  ['no payload key', '/api/v1.0/predictions', json('{"meta": {}}'), 400, /needs one of data, jsonData, strData, binData/],
  ['unknown top-level key', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1"}, "foo": 1}'), 400, /unknown field "foo"/],
  ['two payloads', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1"}, "strData": "1"}'), 400, /exactly one payload/],
  ['negative k', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "k": -3}}'), 400, /jsonData\/k must be >= 1/],
  ['zero k', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "k": 0}}'), 400, /jsonData\/k must be >= 1/],
  ['huge k', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "k": 1000000000}}'), 400, /k=1000000000 is larger than max_k=1000/],
  ['fractional k', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "k": 2.5}}'), 400, /jsonData\/k must be integer/],
  ['k as a string', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "k": "NaN"}}'), 400, /jsonData\/k must be integer/],
  ['id that is an object', '/api/v1.0/predictions', json('{"jsonData": {"user_id": {"a": 1}}}'), 400, /jsonData\/user_id/],
  ['id that is a float', '/api/v1.0/predictions', json('{"jsonData": {"user_id": 1.5}}'), 400, /jsonData\/user_id/],
  ['both user_id and users', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "users": ["2"]}}'), 400, /exactly one/],
  ['unknown jsonData field', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "top": 3}}'), 400, /unknown field "top"/],
  ['unknown filter field', '/api/v1.0/predictions', json('{"jsonData": {"user_id": "1", "filter": {"colour": "red"}}}'), 400, /unknown catalog field "colour"/],
  ['ragged ndarray', '/api/v1.0/predictions', json('{"data": {"ndarray": [["1", "2"], ["3"]]}}'), 400, /ragged/],
  ['three columns', '/api/v1.0/predictions', json('{"data": {"ndarray": [["1", "2", "3"]]}}'), 400, /3 columns/],
  ['empty ndarray', '/api/v1.0/predictions', json('{"data": {"ndarray": []}}'), 400, /empty/],
  ['null id in ndarray', '/api/v1.0/predictions', json('{"data": {"ndarray": [[null]]}}'), 400, /data.ndarray\/0\/0: an id must be/],
  ['bool id in ndarray', '/api/v1.0/predictions', json('{"data": {"ndarray": [[true]]}}'), 400, /an id must be/],
  ['tensor shape mismatch', '/api/v1.0/predictions', json('{"data": {"tensor": {"shape": [3], "values": [1, 2]}}}'), 400, /holds 2 values but shape \[3\] needs 3/],
  ['tensor with a fractional id', '/api/v1.0/predictions', json('{"data": {"tensor": {"shape": [1], "values": [1.5]}}}'), 400, /an id must be/],
  ['tftensor', '/api/v1.0/predictions', json('{"data": {"tftensor": {"dtype": "DT_FLOAT"}}}'), 400, /tftensor is not supported/],
  ['k in tags as a word', '/api/v1.0/predictions', json('{"meta": {"tags": {"k": "many"}}, "data": {"ndarray": [["1"]]}}'), 400, /meta.tags.k must be a whole number/],
  ['pair with an unknown item', '/api/v1.0/predictions', json('{"data": {"ndarray": [["1", "no-such-item"]]}}'), 400, /unknown item_id "no-such-item"/],
  ['pair with an unknown user', '/api/v1.0/predictions', json('{"jsonData": {"pairs": [["ghost", "1"]]}}'), 400, /unknown user_id "ghost"/],
  ['strData that is broken JSON', '/api/v1.0/predictions', json('{"strData": "{oops"}'), 400, /strData is not valid JSON/],
  ['empty strData', '/api/v1.0/predictions', json('{"strData": "  "}'), 400, /strData is empty/],
  ['customData', '/api/v1.0/predictions', json('{"customData": {"@type": "x"}}'), 400, /customData is not supported/],
  ['feedback with an unknown field', '/api/v1.0/feedback', json('{"request": {"data": {"ndarray": [[1]]}}, "reward": 1, "bogus": 2}'), 400, /unknown field "bogus"/],
  ['feedback with an unknown nested field', '/send-feedback', json('{"request": {"data": {"ndarray": [[1]], "extra": 1}}, "reward": 1}'), 400, /request\/data: unknown field "extra"/],
  ['feedback reward above 1', '/api/v1.0/feedback', json('{"reward": 42}'), 400, /reward must be <= 1/],
  ['feedback reward negative', '/api/v1.0/feedback', json('{"reward": -0.5}'), 400, /reward must be >= 0/],
  ['feedback reward as a string', '/api/v1.0/feedback', json('{"reward": "NaN"}'), 400, /reward must be number/],
  ['feedback that is an array', '/api/v1.0/feedback', json('[]'), 400, /feedback must be a Feedback object/],
];

describe('bad requests get 400 in Seldon format', () => {
  it.each(cases)('%s', async (_name, path, init, status, fragment) => {
    const r = await raw(path, init);
    expect(r.status).toBe(status);
    const info = expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA');
    expect(info).toMatch(fragment);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
  });
});

describe('routes, methods and limits', () => {
  it('unknown paths get 404 in Seldon format', async () => {
    for (const path of ['/nope', '/api/v1.0/nope', '/api/v2/models']) {
      const r = await raw(path, { method: 'GET' });
      expect(r.status).toBe(404);
      expect(expectSeldonError(r.body, 'MICROSERVICE_NOT_FOUND')).toMatch(/no route/);
    }
  });

  it('a wrong method gets 405 with an Allow header', async () => {
    const a = await raw('/health/ping', { method: 'POST' });
    expect(a.status).toBe(405);
    expect(a.headers.get('allow')).toBe('GET');
    expectSeldonError(a.body, 'MICROSERVICE_METHOD_NOT_ALLOWED');
    const b = await raw('/api/v1.0/predictions', { method: 'GET' });
    expect(b.status).toBe(405);
    expect(b.headers.get('allow')).toBe('POST');
    const c = await raw('/api/v1.0/predictions', { method: 'DELETE' });
    expect(c.status).toBe(405);
  });

  it('a body over the limit gets 413 in Seldon format', async () => {
    const users = Array.from({ length: 20_000 }, (_, i) => String(i));
    const r = await raw('/api/v1.0/predictions', json(JSON.stringify({ jsonData: { users } })));
    expect(r.status).toBe(413);
    expect(expectSeldonError(r.body)).toMatch(/larger than the limit/);
  });

  it('too many users in one request is refused before any work', async () => {
    const users = Array.from({ length: 1001 }, (_, i) => String(i));
    const r = await raw('/api/v1.0/predictions', json(JSON.stringify({ jsonData: { users } })));
    expect(r.status).toBe(400);
    expect(expectSeldonError(r.body)).toMatch(/at most 1000/);
  });

  it('still serves after all of the above', async () => {
    const r = await postJson(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 1 } });
    expect(r.status).toBe(200);
    const ping = await fetch(`${t.url}/health/ping`);
    expect(await ping.text()).toBe('pong');
  });
});
