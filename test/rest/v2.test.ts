// The Open Inference Protocol V2 over REST, on a real server with the demo model (users "1".."300",
// items "1".."120", genre = GENRES[(id − 1) mod 8]) and real ONNX sessions: every /v2 route, the
// tensors, parameters and outputs selection, the binary tensor data extension in both directions,
// every kind of bad input answered {"error"} with the V2 status, and the feedback extension learning.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo, DEMO, ensureDemoModel } from '../../src/model-format/demo.js';
import { decodeBytes, decodeFp32, decodeInt64, encodeTensor } from '../../src/protocols/v2/binary.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const catalog = buildDemo().extras.catalog;
const genreOf = (itemId: string) => catalog[Number(itemId) - 1].genre as string;
const MODEL = 'demo-movies';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => t?.stop());

interface Answer {
  status: number;
  body: any;
  text: string;
  raw: Buffer;
  headers: Headers;
}

async function call(method: string, route: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch((route.startsWith('http') ? '' : t.url) + route, { method, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body), headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers } });
  const raw = Buffer.from(await res.arrayBuffer());
  const text = raw.toString('utf8');
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: a binary answer or an empty body
  }
  return { status: res.status, body: parsed, text, raw, headers: res.headers };
}

const infer = (request: unknown, route = `/v2/models/${MODEL}/infer`) => call('POST', route, typeof request === 'string' ? request : JSON.stringify(request));
const userInput = (ids: (string | number)[], datatype = 'BYTES') => ({ name: 'user_id', datatype, shape: [ids.length], data: ids });
const output = (a: Answer, name: string) => a.body.outputs.find((o: { name: string }) => o.name === name);
/** Rows of an [n, w] output, each cut to its real length by `count`. */
const rows = (a: Answer): string[][] => {
  const ids = output(a, 'item_id');
  const counts = output(a, 'count').data as number[];
  const w = ids.shape[1];
  return counts.map((c, r) => ids.data.slice(r * w, r * w + c));
};

/** A V2 error: the status, and a body that is exactly {"error": "<message>"}. */
function expectV2Error(a: Answer, status: number, message?: RegExp): void {
  expect(a.status, a.text).toBe(status);
  expect(Object.keys(a.body)).toEqual(['error']);
  expect(typeof a.body.error).toBe('string');
  if (message) expect(a.body.error).toMatch(message);
}

describe('health and metadata', () => {
  it('GET /v2 names the server, its package version and the extensions it implements', async () => {
    const a = await call('GET', '/v2');
    expect(a.status).toBe(200);
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    expect(a.body).toEqual({ name: 'recserve', version, extensions: ['binary_tensor_data', 'recserve_feedback'] });
  });

  it('live, ready and model ready answer 200 with an empty body', async () => {
    for (const route of ['/v2/health/live', '/v2/health/ready', `/v2/models/${MODEL}/ready`, `/v2/models/${MODEL}/versions/${DEMO.version}/ready`]) {
      const a = await call('GET', route);
      expect(a.status, route).toBe(200);
      expect(a.text, route).toBe('');
    }
  });

  it('model metadata lists the tensors and the parameters with their defaults, with or without the version', async () => {
    const a = await call('GET', `/v2/models/${MODEL}`);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ name: MODEL, versions: [DEMO.version], platform: 'recserve_onnx' });
    expect(a.body.inputs.map((i: { name: string; datatype: string; shape: number[] }) => [i.name, i.datatype, i.shape])).toEqual([
      ['user_id', 'BYTES', [-1]],
      ['item_id', 'BYTES', [-1]],
    ]);
    expect(a.body.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [o.name, o.datatype, o.shape])).toEqual([
      ['item_id', 'BYTES', [-1, -1]],
      ['score', 'FP32', [-1, -1]],
      ['strategy', 'BYTES', [-1]],
      ['count', 'INT64', [-1]],
      ['rating', 'FP32', [-1, -1]],
      ['because', 'BYTES', [-1, -1]],
    ]);
    expect(a.body.parameters).toMatchObject({ k: 10, max_k: 1000, exclude_seen: true, max_users: 1000, items: DEMO.items });
    expect((await call('GET', `/v2/models/${MODEL}/versions/${DEMO.version}`)).body).toEqual(a.body);
  });

  it('an unknown model or version is a 404 {"error"} on every model route', async () => {
    for (const [method, route] of [
      ['GET', '/v2/models/nope'],
      ['GET', '/v2/models/nope/ready'],
      ['POST', '/v2/models/nope/infer'],
      ['POST', '/v2/models/nope/feedback'],
      ['GET', `/v2/models/${MODEL}/versions/demo-0`],
      ['GET', `/v2/models/${MODEL}/versions/demo-0/ready`],
      ['POST', `/v2/models/${MODEL}/versions/demo-0/infer`],
    ]) {
      const a = await call(method, route, method === 'POST' ? JSON.stringify({ inputs: [userInput(['1'])] }) : undefined);
      expectV2Error(a, 404, route.includes('demo-0') ? /has no version "demo-0"; version "demo-1" serves/ : /^model "nope" is not served here$/);
    }
  });

  it('under /v2, an unknown route is a 404 and a wrong method a 405, both {"error"}; Seldon routes keep their body', async () => {
    expectV2Error(await call('GET', '/v2/models/demo-movies/generate'), 404, /no route/);
    const wrong = await call('GET', `/v2/models/${MODEL}/infer`);
    expectV2Error(wrong, 405, /use POST/);
    expect(wrong.headers.get('allow')).toBe('POST');
    const seldon = await call('POST', '/api/v1.0/predictions', '{bad');
    expect(seldon.body.status.reason).toBe('MICROSERVICE_BAD_DATA');
  });
});

describe('inference', () => {
  it('recommends: [n, w] item ids and scores, a strategy and a count per user, the id echoed', async () => {
    const a = await infer({ id: 'req-1', parameters: { k: 4 }, inputs: [userInput(['1', 'v2-stranger'])] });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ model_name: MODEL, model_version: DEMO.version, id: 'req-1' });
    expect(a.body.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [o.name, o.datatype, o.shape])).toEqual([
      ['item_id', 'BYTES', [2, 4]],
      ['score', 'FP32', [2, 4]],
      ['strategy', 'BYTES', [2]],
      ['count', 'INT64', [2]],
    ]);
    expect(output(a, 'strategy').data).toEqual(['personalized', 'cold_start']);
    expect(output(a, 'count').data).toEqual([4, 4]);
    const scores = output(a, 'score').data as number[];
    expect(scores.slice(0, 4)).toEqual([...scores.slice(0, 4)].sort((x, y) => y - x));
    for (const s of scores) expect(Math.fround(s)).toBe(s);
  });

  it('generates a UUID id when the request has none', async () => {
    const a = await infer({ inputs: [userInput(['2'])] });
    expect(a.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(output(a, 'count').data).toEqual([10]); // the default k
  });

  it('reads INT64 ids and nested data as the same users', async () => {
    const bytes = await infer({ parameters: { k: 3 }, inputs: [userInput(['7', '8'])] });
    const int64 = await infer({ parameters: { k: 3 }, inputs: [userInput([7, 8], 'INT64')] });
    const nested = await infer({ parameters: { k: 3 }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2, 1], data: [['7'], ['8']] }] });
    expect(rows(int64)).toEqual(rows(bytes));
    expect(rows(nested)).toEqual(rows(bytes));
  });

  it('applies filter (an object or its JSON text) and exclude_seen; short rows are padded and counted', async () => {
    for (const filter of [{ genre: 'Comedy' }, '{"genre":"Comedy"}']) {
      const a = await infer({ parameters: { k: 5, filter }, inputs: [userInput(['1', '2'])] });
      expect(a.status, a.text).toBe(200);
      for (const row of rows(a)) for (const item of row) expect(genreOf(item)).toBe('Comedy');
    }
    const seenIncluded = rows(await infer({ parameters: { k: 120, exclude_seen: false }, inputs: [userInput(['1'])] }))[0];
    const seenLeftOut = rows(await infer({ parameters: { k: 120 }, inputs: [userInput(['1'])] }))[0];
    expect(seenIncluded).toHaveLength(120);
    expect(seenLeftOut.length).toBeLessThan(120);
    // Two users whose unseen lists differ in length: the shorter row is padded with "" and 0.
    const both = await infer({ parameters: { k: 120 }, inputs: [userInput(['1', 'v2-stranger'])] });
    const [known, cold] = output(both, 'count').data as number[];
    expect(cold).toBe(120);
    expect(known).toBe(seenLeftOut.length);
    const ids = output(both, 'item_id').data as string[];
    expect(ids.slice(known, 120).every((id) => id === '')).toBe(true);
    expect((output(both, 'score').data as number[]).slice(known, 120).every((s) => s === 0)).toBe(true);
  });

  it('scores (user, item) pairs when item_id is given: score [n]', async () => {
    const a = await infer({ inputs: [userInput(['1', '2']), { name: 'item_id', datatype: 'BYTES', shape: [2], data: ['5', '17'] }] });
    expect(a.status, a.text).toBe(200);
    expect(a.body.outputs).toHaveLength(1);
    expect(a.body.outputs[0]).toMatchObject({ name: 'score', datatype: 'FP32', shape: [2] });
    const unknownItem = await infer({ inputs: [userInput(['1']), { name: 'item_id', datatype: 'BYTES', shape: [1], data: ['no-such-item'] }] });
    expectV2Error(unknownItem, 400, /unknown item_id "no-such-item"/);
  });

  it('answers only the outputs asked, in the order asked', async () => {
    const a = await infer({ parameters: { k: 2 }, inputs: [userInput(['3'])], outputs: [{ name: 'strategy' }, { name: 'item_id' }] });
    expect(a.body.outputs.map((o: { name: string }) => o.name)).toEqual(['strategy', 'item_id']);
    expectV2Error(await infer({ inputs: [userInput(['3'])], outputs: [{ name: 'ranking' }] }), 400, /unknown output "ranking"/);
  });

  it('serves the versioned route for the serving version', async () => {
    const a = await infer({ id: 'versioned', parameters: { k: 2 }, inputs: [userInput(['4'])] }, `/v2/models/${MODEL}/versions/${DEMO.version}/infer`);
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ id: 'versioned', model_version: DEMO.version });
  });
});

describe('bad input: 400 {"error"} naming the problem', () => {
  const cases: [string, string, RegExp][] = [
    ['malformed JSON', '{"inputs": [', /not valid JSON/],
    ['an empty body', '', /body is empty/],
    ['not an object', '[1, 2]', /must be a JSON object, got a list/],
    ['no inputs', '{"inputs": []}', /inputs must be a non-empty list/],
    ['an unknown input', JSON.stringify({ inputs: [{ name: 'users', datatype: 'BYTES', shape: [1], data: ['1'] }] }), /unknown input "users"/],
    ['no user_id', JSON.stringify({ inputs: [{ name: 'item_id', datatype: 'BYTES', shape: [1], data: ['1'] }] }), /needs a user_id input/],
    ['a datatype ids cannot have', JSON.stringify({ inputs: [{ name: 'user_id', datatype: 'FP32', shape: [1], data: [1] }] }), /datatype "FP32"; ids are BYTES or INT64/],
    ['data that does not match the datatype', JSON.stringify({ inputs: [{ name: 'user_id', datatype: 'INT64', shape: [1], data: ['1'] }] }), /an INT64 element is a whole number/],
    ['fewer values than the shape', JSON.stringify({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [3], data: ['1', '2'] }] }), /holds 2 values but its shape says 3/],
    ['more values than the shape', JSON.stringify({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1', '2'] }] }), /more than the 1 values/],
    ['an oversized shape', JSON.stringify({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [4_000_000_000], data: [] }] }), /a dimension above 100000 \(limit RECSERVE_MAX_TENSOR_VALUES=100000\)/],
    ['more users than max_users', JSON.stringify({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [5000], data: [] }] }), /5000 users; at most 1000/],
    ['an INT64 id beyond 2^53', '{"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [9007199254740993]}]}', /beyond 2\^53/],
    ['k above max_k', JSON.stringify({ parameters: { k: 5000 }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1'] }] }), /larger than max_k=1000/],
    ['too many items in all', JSON.stringify({ parameters: { k: 100 }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [200], data: Array.from({ length: 200 }, String) }] }), /at most 10000 per request/],
    ['a filter that is not JSON', JSON.stringify({ parameters: { filter: '{genre' }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1'] }] }), /parameters.filter is not valid JSON/],
    ['binary_data_output that is not a boolean', JSON.stringify({ parameters: { binary_data_output: 'yes' }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1'] }] }), /binary_data_output must be true or false/],
  ];
  for (const [name, body, message] of cases) {
    it(name, async () => {
      expectV2Error(await infer(body), 400, message);
    });
  }

  it('a body over the limit is a 413 {"error"}', async () => {
    const a = await call('POST', `/v2/models/${MODEL}/infer`, Buffer.alloc(t.server.config.bodyLimitBytes + 1, 0x20));
    expectV2Error(a, 413, /larger than the limit/);
  });
});

describe('binary tensor data extension', () => {
  /** A body of the JSON header then the tensors' bytes, with its Inference-Header-Content-Length. */
  const binaryBody = (header: unknown, ...tensors: Buffer[]) => {
    const json = Buffer.from(JSON.stringify(header));
    return { body: Buffer.concat([json, ...tensors]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) } };
  };
  const binInfer = (b: { body: Buffer; headers: Record<string, string> }) => call('POST', `/v2/models/${MODEL}/infer`, b.body, b.headers);

  it('takes BYTES and INT64 ids in binary, answering what the JSON request answers', async () => {
    const json = await infer({ parameters: { k: 3 }, inputs: [userInput(['11', '12'])] });
    const ids = encodeTensor({ name: 'user_id', datatype: 'BYTES', shape: [2], data: ['11', '12'] });
    const bytes = await binInfer(binaryBody({ parameters: { k: 3 }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: ids.length } }] }, ids));
    expect(bytes.status, bytes.text).toBe(200);
    expect(rows(bytes)).toEqual(rows(json));
    const int64 = encodeTensor({ name: 'user_id', datatype: 'INT64', shape: [2], data: [11, 12] });
    const numeric = await binInfer(binaryBody({ parameters: { k: 3 }, inputs: [{ name: 'user_id', datatype: 'INT64', shape: [2], parameters: { binary_data_size: 16 } }] }, int64));
    expect(rows(numeric)).toEqual(rows(json));
  });

  it('answers in binary when binary_data_output asks, or per output with binary_data', async () => {
    const json = await infer({ id: 'bin', parameters: { k: 3 }, inputs: [userInput(['11', 'v2-stranger'])] });
    const a = await infer({ id: 'bin', parameters: { k: 3, binary_data_output: true }, inputs: [userInput(['11', 'v2-stranger'])] });
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('application/octet-stream');
    const headerLength = Number(a.headers.get('inference-header-content-length'));
    const header = JSON.parse(a.raw.subarray(0, headerLength).toString('utf8'));
    expect(header).toMatchObject({ id: 'bin', model_name: MODEL });
    let at = headerLength;
    const parts: Record<string, Buffer> = {};
    for (const o of header.outputs) {
      expect(o.data).toBeUndefined();
      parts[o.name] = a.raw.subarray(at, at + o.parameters.binary_data_size);
      at += o.parameters.binary_data_size;
    }
    expect(at).toBe(a.raw.length);
    expect(decodeBytes(parts.item_id, 6, 256, 'item_id')).toEqual(output(json, 'item_id').data);
    expect(decodeFp32(parts.score, 6, 'score')).toEqual(output(json, 'score').data);
    expect(decodeBytes(parts.strategy, 2, 64, 'strategy')).toEqual(['personalized', 'cold_start']);
    expect(decodeInt64(parts.count, 2, 'count')).toEqual([3n, 3n]);

    const one = await infer({ parameters: { k: 3 }, inputs: [userInput(['11'])], outputs: [{ name: 'item_id' }, { name: 'score', parameters: { binary_data: true } }] });
    const oneLength = Number(one.headers.get('inference-header-content-length'));
    const oneHeader = JSON.parse(one.raw.subarray(0, oneLength).toString('utf8'));
    expect(oneHeader.outputs[0].data).toHaveLength(3);
    expect(oneHeader.outputs[1]).toMatchObject({ name: 'score', parameters: { binary_data_size: 12 } });
    // An output's binary_data: false wins over binary_data_output.
    const jsonAgain = await infer({ parameters: { k: 3, binary_data_output: true }, inputs: [userInput(['11'])], outputs: [{ name: 'item_id', parameters: { binary_data: false } }] });
    expect(jsonAgain.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('refuses a header that lies about lengths', async () => {
    const ids = encodeTensor({ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['11'] });
    const header = { inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: ids.length } }] };
    const good = binaryBody(header, ids);
    const lies: [string, Record<string, string>, Buffer, RegExp][] = [
      ['header past the body', { ...good.headers, 'inference-header-content-length': String(good.body.length + 10) }, good.body, /the body has only/],
      ['header not a number', { ...good.headers, 'inference-header-content-length': 'lots' }, good.body, /must be a whole number of bytes/],
      ['header cutting the JSON', { ...good.headers, 'inference-header-content-length': '10' }, good.body, /not valid JSON/],
      ['raw binary body', { ...good.headers, 'inference-header-content-length': '0' }, good.body, /raw binary body/],
      ['leftover bytes', good.headers, Buffer.concat([good.body, Buffer.from('xx')]), /2 bytes of binary data after the JSON header/],
      ['too few bytes', good.headers, good.body.subarray(0, good.body.length - 1), /only 5 bytes of binary data are left/],
    ];
    for (const [, headers, body, message] of lies) expectV2Error(await call('POST', `/v2/models/${MODEL}/infer`, body, headers), 400, message);
    const lyingElement = binaryBody({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 5 } }] }, Buffer.from([99, 0, 0, 0, 0x31]));
    expectV2Error(await binInfer(lyingElement), 400, /declares 99 bytes but only 1 are left/);
    const noHeader = await infer(header);
    expectV2Error(noHeader, 400, /no Inference-Header-Content-Length header/);
  });
});

describe('feedback extension', () => {
  const feedback = (body: unknown) => call('POST', `/v2/models/${MODEL}/feedback`, JSON.stringify(body));
  const itemsOfGenre = (g: string) => catalog.map((c, i) => [String(i + 1), c.genre] as const).filter(([, cg]) => cg === g).map(([id]) => id);

  it('learns from a feedback naming the request id: a new user who chose comedies gets a personalized list with more comedies', async () => {
    const before = await infer({ id: 'v2-fb-1', parameters: { k: 10 }, inputs: [userInput(['v2-newcomer'])] });
    expect(output(before, 'strategy').data).toEqual(['cold_start']);
    const comedies = itemsOfGenre('Comedy').slice(0, 3);
    const fb = await feedback({ id: 'v2-fb-1', reward: 1, truth: comedies });
    expect(fb.status, fb.text).toBe(200);
    expect(fb.body).toMatchObject({ id: 'v2-fb-1', model_name: MODEL, model_version: DEMO.version });
    expect(fb.body.parameters.folded_in_users).toEqual(['v2-newcomer']);
    const after = await infer({ parameters: { k: 10 }, inputs: [userInput(['v2-newcomer'])] });
    expect(output(after, 'strategy').data).toEqual(['personalized']);
    const list = rows(after)[0];
    const comedyCount = (l: string[]) => l.filter((i) => genreOf(i) === 'Comedy').length;
    expect(comedyCount(list)).toBeGreaterThan(comedyCount(rows(before)[0]));
    for (const c of comedies) expect(list).not.toContain(c);
    // The same feedback again is a retry: acknowledged, not stored twice.
    const again = await feedback({ id: 'v2-fb-1', reward: 1, truth: comedies });
    expect(again.body.parameters).toMatchObject({ feedback_duplicate: true, feedback_interactions: 0 });
  });

  it('takes what was shown (user_id, items) when the server does not remember the prediction', async () => {
    const fb = await feedback({ user_id: '9', items: ['1', '2', '3'], truth: ['2'], reward: 1 });
    expect(fb.status, fb.text).toBe(200);
    expect(fb.body.parameters.feedback_interactions).toBe(3);
    const rowsStored = await t.server.feedback.stores.peek()!.userInteractions('9');
    expect(rowsStored.map((r) => [r.itemId, r.kind]).sort()).toEqual([
      ['1', 'skipped'],
      ['2', 'chosen'],
      ['3', 'skipped'],
    ]);
  });

  it('refuses a feedback it cannot read, with V2 errors', async () => {
    expectV2Error(await feedback({ id: 'x', reward: 2 }), 400, /reward must be a number in \[0, 1\]/);
    expectV2Error(await feedback({ id: 'x', puid: 'y' }), 400, /unknown field "puid"/);
    expectV2Error(await feedback({ items: ['1'] }), 400, /give user_id with them/);
    expectV2Error(await feedback({ user_id: '1', truth: '5' }), 400, /truth must be a list/);
    expectV2Error(await feedback({ user_id: '1', truth: Array.from({ length: 201 }, String) }), 400, /at most 200/);
    expectV2Error(await call('POST', `/v2/models/${MODEL}/feedback`, 'nope'), 400, /not valid JSON/);
  });
});

describe('metrics', () => {
  it('count V2 requests by their route', async () => {
    const text = await (await fetch(`${t.metricsUrl}/prometheus`)).text();
    expect(text).toMatch(/route="\/v2\/models\/\{name\}\/infer",code="200"/);
  });
});

describe('a server started with a models root and no model (as Seldon Core 2 starts it)', () => {
  let root: string;
  let sc2: TestServer;
  const at = (p: string) => `${sc2.url}${p}`;
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'recserve-v2-root-'));
    await ensureDemoModel(path.join(root, 'recs_1', '1'));
    sc2 = await startTestServer({ RECSERVE_MODELS_ROOT: root, RECSERVE_DEMO: 'false' });
  });
  afterAll(async () => {
    await sc2?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('is ready with no model, lists model_repository, and serves a model once it is loaded by name', async () => {
    expect((await call('GET', at('/v2/health/ready'))).status).toBe(200);
    expect((await call('GET', at('/v2'))).body.extensions).toEqual(['binary_tensor_data', 'recserve_feedback', 'model_repository']);
    const request = JSON.stringify({ id: 'sc2', parameters: { k: 3 }, inputs: [userInput(['1'])] });
    expectV2Error(await call('POST', at('/v2/models/recs_1/infer'), request), 404, /^model "recs_1" is not served here$/);
    expect((await call('POST', at('/v2/repository/models/recs_1/load'), '')).status).toBe(200);
    const a = await call('POST', at('/v2/models/recs_1/infer'), request);
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ model_name: 'recs_1', model_version: DEMO.version, id: 'sc2' });
    expect(rows(a)).toEqual(rows(await infer({ parameters: { k: 3 }, inputs: [userInput(['1'])] })));
    expect((await call('GET', at('/v2/models/recs_1/ready'))).status).toBe(200);
    expect((await call('GET', at('/v2/models/recs_1'))).body.name).toBe('recs_1');
    expect((await call('POST', at('/v2/repository/models/recs_1/unload'), '')).status).toBe(200);
    expectV2Error(await call('POST', at('/v2/models/recs_1/infer'), request), 404);
  });
});
