// Client-controlled sizes are refused before any work, with the limit named, the same way on every
// path; the served OpenAPI document states the configured limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clip, MESSAGE_LIMIT, translate } from '../../src/errors.js';
import { DEFAULT_PARAMS } from '../../src/config/index.js';
import { LIMIT_DEFAULTS } from '../../src/config/limits.js';
import { decodePredict, ndarrayRows, tensorRows } from '../../src/protocols/seldon-v1/codec.js';
import { scanText, textDepth, valueDepth } from '../../src/protocols/json.js';
import { encodeWithLibrary, seldonProtos } from '../../src/protocols/seldon-v1/proto-json.js';
import { wireShape } from '../../src/transport/grpc/wire-budget.js';
import { startTestServer, requestJson, type TestServer } from '../helpers/server.js';

const limits = LIMIT_DEFAULTS;
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return translate(e);
  }
  throw new Error('expected a refusal');
};

describe('tensor shapes are checked before rows are built', () => {
  it.each([
    [[400000000, 0], /dimension above 100000/],
    [[4294967296, 0], /dimension above 100000/],
    [[0, 400000000], /dimension above 100000/],
    [[2, 2, 2], /must be \[n\] or \[n, columns\]/],
    [[], /must be \[n\] or \[n, columns\]/],
    [[1.5], /whole numbers/],
    [[3], /holds 0 values but shape \[3\] needs 3/],
  ])('shape %j', (shape, message) => {
    const t = refusal(() => tensorRows({ shape: shape as number[], values: [] }, limits, 'data.tensor'));
    expect(t.kind).toBe('bad_data');
    expect(t.message).toMatch(message);
  });

  it('a shape with a 0 dimension and no values is empty, not 400M rows', () => {
    expect(tensorRows({ shape: [5, 0], values: [] }, limits, 'data.tensor')).toEqual([]);
    expect(tensorRows({ shape: [2, 2], values: [1, 2, 3, 4] }, limits, 'data.tensor')).toEqual([[1, 2], [3, 4]]);
  });

  it('ndarray rows are bounded too', () => {
    const t = refusal(() => ndarrayRows(new Array(limits.maxTensorValues + 1).fill(1), limits, 'data.ndarray'));
    expect(t.message).toMatch(/RECSERVE_MAX_TENSOR_VALUES=100000/);
  });
});

describe('names mean what they say', () => {
  const decode = (data: object) => decodePredict({ data } as never, DEFAULT_PARAMS, limits).input;
  it('finds columns by name, in any order, aliases and case included', () => {
    expect(decode({ names: ['item_id', 'user_id'], ndarray: [['5', '1']] })).toEqual({ op: 'pairs', pairs: [['1', '5']] });
    expect(decode({ names: ['UID', 'Item'], ndarray: [['1', '5']] })).toEqual({ op: 'pairs', pairs: [['1', '5']] });
    expect(decode({ ndarray: [['1', '5']] })).toEqual({ op: 'pairs', pairs: [['1', '5']] });
  });
  it.each([
    [{ names: ['movie', 'user_id'], ndarray: [['5', '1']] }, /column name "movie" is not allowed here; use user_id/],
    [{ names: ['user_id', 'user_id'], ndarray: [['5', '1']] }, /not allowed here/],
    [{ names: ['score'], ndarray: [['5']] }, /column name "score" is not allowed/],
    [{ names: ['item_id'], ndarray: [['5']] }, /use user_id, user, users, uid/],
  ])('refuses %j', (data, message) => {
    expect(refusal(() => decode(data)).message).toMatch(message);
  });
});

describe('meta, ids and filters', () => {
  const decode = (msg: object) => decodePredict(msg as never, DEFAULT_PARAMS, limits);
  it('refuses a long puid, many tags and big tags', () => {
    expect(refusal(() => decode({ meta: { puid: 'p'.repeat(257) }, jsonData: { user_id: '1' } })).message).toMatch(/RECSERVE_MAX_ID_LENGTH=256/);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`t${i}`, i]));
    expect(refusal(() => decode({ meta: { tags: many }, jsonData: { user_id: '1' } })).message).toMatch(/RECSERVE_MAX_TAGS=64/);
    expect(refusal(() => decode({ meta: { tags: { big: 'x'.repeat(20_000) } }, jsonData: { user_id: '1' } })).message).toMatch(/RECSERVE_MAX_TAGS_BYTES=16384/);
  });
  it('refuses long ids in tables and a filter with too many values in all', () => {
    expect(refusal(() => decode({ data: { ndarray: [['u'.repeat(300)]] } })).message).toMatch(/at most 256 characters, got 300/);
    const filter = Object.fromEntries(Array.from({ length: 3 }, (_, f) => [`f${f}`, Array.from({ length: 400 }, (_, i) => i)]));
    expect(refusal(() => decode({ jsonData: { user_id: '1', filter } })).message).toMatch(/1200 accepted values; at most 1000 in all \(limit RECSERVE_MAX_FILTER_VALUES=1000\)/);
  });
});

describe('JSON depth is measured without recursion', () => {
  it('text depth ignores brackets inside strings and stops early', () => {
    expect(textDepth('{"a":[1,{"b":"[[[{{{"}]}')).toBe(3);
    expect(textDepth('"\\"[["')).toBe(0);
    expect(textDepth('['.repeat(1_000_000), 40)).toBe(41);
  });
  it('value depth of a 100,000-deep value', () => {
    let v: unknown = 1;
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(valueDepth(v, 32)).toBe(33);
    expect(valueDepth({ a: [{ b: 1 }] })).toBe(3);
  });
});

describe('a message is counted before it is parsed or decoded', () => {
  it('counts JSON values by separators and openers, stopping at the budget', () => {
    expect(scanText('{"a":[1,2,3],"b":{}}')).toEqual({ depth: 2, values: 6 });
    expect(scanText('["a,b","c"]').values).toBe(2);
    expect(scanText(`[${'{},'.repeat(1_000_000)}{}]`, 32, 250_000).values).toBe(250_001);
  });

  it('counts protobuf fields and packed elements on the wire, into sub-messages and Struct maps', () => {
    const msg = seldonProtos().type('seldon.protos.SeldonMessage');
    const metrics = encodeWithLibrary(msg, { meta: { metrics: Array.from({ length: 300_000 }, () => ({})) } });
    expect(wireShape(msg, metrics, 250_000, 72).values).toBeGreaterThan(250_000);
    const packed = encodeWithLibrary(msg, { data: { tensor: { shape: [50_000, 2], values: new Array(100_000).fill(1.5) } } });
    const shape = wireShape(msg, packed, 10_000_000, 72);
    expect(shape.values).toBeGreaterThanOrEqual(100_000);
    expect(shape.values).toBeLessThan(100_010);
    let value: unknown = 1;
    for (let i = 0; i < 40; i++) value = [value]; // a Value holding a ListValue holding a Value …
    const deep = encodeWithLibrary(msg, { jsonData: value });
    expect(wireShape(msg, deep, 250_000, 72).depth).toBeGreaterThan(72);
    // Read as the decoder reads it: a group is refused (it would hide what follows), an over-long tag is
    // counted as its low 32 bits (field 2, meta), a length past the end is refused.
    const metricsBody = metrics.subarray(0, metrics.length); // 12 <len> (2a 00)×300,000
    expect(wireShape(msg, Buffer.concat([Buffer.from([0x7b, 0x7c]), metricsBody]), 250_000, 72).malformedAt).toBe(0);
    const longTag = Buffer.concat([Buffer.from([0x92, 0x80, 0x80, 0x80, 0x10]), metricsBody.subarray(1)]);
    expect(wireShape(msg, longTag, 250_000, 72).values).toBeGreaterThan(250_000);
    expect(wireShape(msg, Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]), 250_000, 72).malformedAt).toBe(1);
    expect(wireShape(msg, Buffer.alloc(0), 250_000, 72)).toEqual({ values: 0, depth: 1, malformedAt: -1 });
    const tags = encodeWithLibrary(msg, { meta: { tags: { a: Array.from({ length: 20 }, () => 1) } } });
    expect(wireShape(msg, tags, 250_000, 72).values).toBeGreaterThanOrEqual(20);
  });
});

describe('errors quote a short prefix of client input', () => {
  it('clips long messages and never splits a surrogate pair', () => {
    expect(clip('x'.repeat(500)).length).toBe(201);
    expect(clip('a'.repeat(199) + '😀' + 'b')).toBe('a'.repeat(199) + '…');
    const t = translate(new (class extends Error {})('x'));
    expect(t.message).toBe('internal error');
    expect(MESSAGE_LIMIT).toBeLessThanOrEqual(1000);
  });
});

describe('over HTTP, with configured limits', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ RECSERVE_MAX_PAIRS: '3', RECSERVE_MAX_JSON_DEPTH: '8', RECSERVE_MAX_RESULT_ITEMS: '10' });
  });
  afterAll(async () => s?.stop());

  it('a refusal names the limit and its setting', async () => {
    const pairs = [['1', '2'], ['1', '3'], ['2', '4'], ['3', '5']];
    const r = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { jsonData: { pairs } });
    expect(r.status).toBe(400);
    expect(r.body.status.info).toMatch(/at most 3 \(limit RECSERVE_MAX_PAIRS=3\)/);
    const t = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { data: { names: ['user_id', 'item_id'], ndarray: pairs } });
    expect(t.status).toBe(400);
    expect(t.body.status.info).toMatch(/RECSERVE_MAX_PAIRS=3/);
    const ok = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { jsonData: { pairs: pairs.slice(0, 3) } });
    expect(ok.status).toBe(200);
  });

  it('deep JSON is refused at parse time on the body, the form, the query and strData', async () => {
    const deep = { jsonData: { user_id: '1', filter: { genre: 'Drama' } }, meta: { tags: { a: [[[[[[[[1]]]]]]]] } } };
    const body = await requestJson('POST', `${s.url}/api/v1.0/predictions`, deep);
    expect(body.status).toBe(400);
    expect(body.body.status.info).toMatch(/nested more than 8 levels deep \(limit RECSERVE_MAX_JSON_DEPTH=8\)/);
    const q = await fetch(`${s.url}/predict?json=${encodeURIComponent(JSON.stringify(deep))}`);
    expect(q.status).toBe(400);
    const form = await fetch(`${s.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `json=${encodeURIComponent(JSON.stringify(deep))}` });
    expect(form.status).toBe(400);
    const str = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { strData: `{"user_id":"1","filter":${'['.repeat(20)}${']'.repeat(20)}}` });
    expect(str.status).toBe(400);
    expect(str.body.status.info).toMatch(/RECSERVE_MAX_JSON_DEPTH/);
    // JSON text inside a feedback payload (truth, response) is checked the same way.
    const fb = await requestJson('POST', `${s.url}/api/v1.0/feedback`, { request: { jsonData: { user_id: '1' } }, truth: { strData: `${'['.repeat(20)}${']'.repeat(20)}` }, reward: 1 });
    expect(fb.status).toBe(400);
    expect(fb.body.status.info).toMatch(/truth\.strData is nested more than 8 levels deep \(limit RECSERVE_MAX_JSON_DEPTH=8\)/);
  });

  it('bounds the size of an answer (users × k) before ranking anything', async () => {
    const big = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { jsonData: { users: ['1', '2', 'new-1'], k: 4 } });
    expect(big.status).toBe(400);
    expect(big.body.status.info).toMatch(/3 users × k=4 would answer 12 items; at most 10 .*\(limit RECSERVE_MAX_RESULT_ITEMS=10\)/);
    const table = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { meta: { tags: { k: 4 } }, data: { names: ['user_id'], ndarray: [['1'], ['2'], ['3']] } });
    expect(table.status).toBe(400);
    const ok = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { jsonData: { users: ['1', '2', 'new-1'], k: 3 } });
    expect(ok.status).toBe(200);
    expect(ok.body.jsonData.recommendations.map((r: { items: unknown[] }) => r.items.length)).toEqual([3, 3, 3]);
  });

  it('a body of a million tiny values is refused before it is parsed', async () => {
    const r = await requestJson('POST', `${s.url}/api/v1.0/predictions`, `{"jsonData":{"user_id":"1"},"zz":[${'{},'.repeat(400_000)}{}]}`);
    expect(r.status).toBe(400);
    expect(r.body.status.info).toMatch(/holds more than 250000 values \(limit RECSERVE_MAX_JSON_VALUES=250000\)/);
  });

  it('the Seldon-Puid header has the puid length limit on predict too', async () => {
    const r = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { jsonData: { user_id: '1' } }, { 'seldon-puid': 'p'.repeat(5000) });
    expect(r.status).toBe(400);
    expect(r.body.status.info).toMatch(/Seldon-Puid header is 5000 characters; at most 256/);
    expect(JSON.stringify(r.body).length).toBeLessThan(400);
  });

  it('an unknown id is quoted short, and type errors name no limit', async () => {
    const r = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { jsonData: { pairs: [['u'.repeat(256), '1']] } });
    expect(r.status).toBe(400);
    expect(r.body.status.info.length).toBeLessThan(250);
    const t = await requestJson('POST', `${s.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 'ten' } });
    expect(t.body.status.info).not.toMatch(/limit|NaN|graph parameter/);
  });

  it('the served document states the configured limits', async () => {
    const doc = (await requestJson('GET', `${s.url}/seldon.json`)).body;
    expect(doc.components.schemas.RecommendRequest.properties.pairs.maxItems).toBe(3);
    expect(doc.components.schemas.RecommendRequest.properties.users.maxItems).toBe(1000);
  });
});
