// The predict/feedback fast path (src/rest/fast-path.ts) must answer exactly as the express routes do.
// The same requests go to the bare express app and to the fast path in front of it (as the server
// installs it), both over the same data plane; status, body (but the generated puid), Content-Type,
// CORS header and the request metrics must agree. A counting fallback shows which path answered.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restHandlers } from '../../src/server.js';
import { createRestApp } from '../../src/transport/rest/app.js';
import { withFastPath } from '../../src/transport/rest/fast-path.js';
import { V2_PREFIX, v2ErrorWriter, v2Infer } from '../../src/protocols/v2/rest-routes.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface Answer {
  status: number;
  body: unknown;
  type: string | null;
  cors: string | null;
  length: string | null;
  text: string;
}

async function send(base: string, path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer> {
  const r = await fetch(`${base}${path}`, { method: 'POST', headers, body });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, body: parsed, type: r.headers.get('content-type'), cors: r.headers.get('access-control-allow-origin'), length: r.headers.get('content-length'), text };
}

/** Drops what legitimately differs between two calls: a generated puid. */
function comparable(a: Answer, keepPuid: boolean) {
  const body = a.body as { meta?: { puid?: string } };
  const copy = JSON.parse(JSON.stringify(body ?? null));
  if (!keepPuid && copy?.meta?.puid) copy.meta.puid = '<generated>';
  return { status: a.status, type: a.type, cors: a.cors, body: copy, lengthMatches: Number(a.length) === Buffer.byteLength(a.text) };
}

const CASES: { name: string; path: string; body: string; headers?: Record<string, string>; keepPuid?: boolean }[] = [
  { name: 'jsonData user_id', path: '/api/v1.0/predictions', body: '{"jsonData":{"user_id":"1","k":3}}' },
  { name: 'users, filter, exclude_seen', path: '/api/v1.0/predictions', body: '{"jsonData":{"users":["1","2","nobody"],"k":4,"exclude_seen":false,"filter":{"genre":"Comedy"}}}' },
  { name: 'ndarray', path: '/api/v0.1/predictions', body: '{"data":{"ndarray":[["3"],["4"]]},"meta":{"tags":{"k":2}}}' },
  { name: 'pairs', path: '/predict', body: '{"jsonData":{"pairs":[["1","2"],["3","4"]]}}' },
  { name: 'strData', path: '/api/v1.0/predictions', body: '{"strData":"7"}' },
  { name: 'puid from header', path: '/api/v1.0/predictions', body: '{"jsonData":{"user_id":"2"}}', headers: { 'content-type': 'application/json', 'seldon-puid': 'abc-123' }, keepPuid: true },
  { name: 'puid from meta', path: '/api/v1.0/predictions', body: '{"jsonData":{"user_id":"2"},"meta":{"puid":"p-9","tags":{"a":1}}}', keepPuid: true },
  { name: 'charset param', path: '/api/v1.0/predictions', body: '{"jsonData":{"user_id":"5"}}', headers: { 'content-type': 'application/json; charset=utf-8' } },
  { name: 'invalid JSON', path: '/api/v1.0/predictions', body: '{"jsonData":' },
  { name: 'not an object', path: '/api/v1.0/predictions', body: '[1,2,3]' },
  { name: 'unknown field', path: '/api/v1.0/predictions', body: '{"jsonData":{"user_id":"1"},"extra":1}' },
  { name: 'k too large', path: '/api/v1.0/predictions', body: '{"jsonData":{"user_id":"1","k":100000}}' },
  { name: 'two payloads', path: '/api/v1.0/predictions', body: '{"jsonData":{"user_id":"1"},"strData":"1"}' },
  { name: 'empty message', path: '/api/v1.0/predictions', body: '{}' },
  { name: 'unknown pair user', path: '/api/v1.0/predictions', body: '{"jsonData":{"pairs":[["nobody","2"]]}}' },
  { name: 'feedback', path: '/api/v1.0/feedback', body: '{"request":{"jsonData":{"user_id":"1"}},"truth":{"jsonData":{"item_id":"3"}},"reward":1}' },
  { name: 'feedback, bad reward', path: '/api/v0.1/feedback', body: '{"request":{"jsonData":{"user_id":"1"}},"reward":2}' },
  { name: 'feedback, not an object', path: '/send-feedback', body: '"x"' },
  // Open Inference Protocol V2 infer (plain JSON; errors are V2's {"error"}).
  { name: 'V2 infer', path: '/v2/models/demo-movies/infer', body: '{"id":"f1","inputs":[{"name":"user_id","datatype":"BYTES","shape":[2],"data":["1","nobody"]}],"parameters":{"k":3}}' },
  { name: 'V2 infer, INT64 ids, outputs chosen', path: '/v2/models/demo-movies/infer', body: '{"id":"f2","inputs":[{"name":"user_id","datatype":"INT64","shape":[1],"data":[2]}],"outputs":[{"name":"score"}]}' },
  { name: 'V2 pair scores', path: '/v2/models/demo-movies/infer', body: '{"id":"f3","inputs":[{"name":"user_id","datatype":"BYTES","shape":[1],"data":["1"]},{"name":"item_id","datatype":"BYTES","shape":[1],"data":["7"]}]}' },
  { name: 'V2 binary output asked', path: '/v2/models/demo-movies/infer', body: '{"id":"f4","inputs":[{"name":"user_id","datatype":"BYTES","shape":[1],"data":["1"]}],"parameters":{"binary_data_output":true}}' },
  { name: 'V2 invalid JSON', path: '/v2/models/demo-movies/infer', body: '{"inputs":' },
  { name: 'V2 wrong datatype', path: '/v2/models/demo-movies/infer', body: '{"inputs":[{"name":"user_id","datatype":"FP32","shape":[1],"data":[1]}]}' },
  { name: 'V2 unknown model', path: '/v2/models/nope/infer', body: '{"inputs":[{"name":"user_id","datatype":"BYTES","shape":[1],"data":["1"]}]}' },
];

describe('REST fast path', () => {
  let t: TestServer;
  let plain: http.Server;
  let plainBase: string;
  let fast: http.Server;
  let fastBase: string;
  let fellBack = 0;

  beforeAll(async () => {
    t = await startTestServer();
    const { config, dataplane, metrics, log, control, models, repository } = t.server;
    const app = createRestApp({ config, metrics, log, handlers: restHandlers({ config, log, dataplane, control, models, repository }), errorWriters: [{ prefix: V2_PREFIX, write: v2ErrorWriter }] });
    plain = http.createServer(app);
    fast = http.createServer(
      withFastPath({ config, dataplane, metrics, log, v2: { infer: v2Infer({ models, config }), errorWriter: v2ErrorWriter } }, (req, res) => {
        fellBack++;
        app(req, res);
      }),
    );
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => fast.listen(0, '127.0.0.1', r));
    plainBase = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    fastBase = `http://127.0.0.1:${(fast.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((r) => plain?.close(r));
    await new Promise((r) => fast?.close(r));
    await t?.stop();
  });

  for (const c of CASES) {
    it(`answers "${c.name}" as the express route does`, async () => {
      const viaExpress = await send(plainBase, c.path, c.body, c.headers);
      const before = fellBack;
      const viaFast = await send(fastBase, c.path, c.body, c.headers);
      expect(fellBack, 'answered by the fast path').toBe(before);
      expect(comparable(viaFast, c.keepPuid ?? false)).toEqual(comparable(viaExpress, c.keepPuid ?? false));
      expect(viaFast.cors).toBe('*');
    });
  }

  it('counts and labels its requests as the express routes do', async () => {
    const count = async (route: string, code: number) => {
      const text = await (await fetch(`${t.metricsUrl}/prometheus`)).text();
      const m = new RegExp(`^recserve_requests_total\\{[^}]*route="${route.replace(/\./g, '\\.')}",code="${code}"[^}]*\\} (\\S+)$`, 'm').exec(text);
      return Number(m?.[1] ?? 0);
    };
    const route = '/api/v1.0/predictions';
    const ok0 = await count(route, 200);
    const bad0 = await count(route, 400);
    await send(plainBase, route, '{"jsonData":{"user_id":"1"}}');
    await send(fastBase, route, '{"jsonData":{"user_id":"1"}}');
    await send(plainBase, route, '{"jsonData":');
    await send(fastBase, route, '{"jsonData":');
    expect(await count(route, 200)).toBe(ok0 + 2);
    expect(await count(route, 400)).toBe(bad0 + 2);
  });

  it('leaves every other request form to express', async () => {
    const json = '{"jsonData":{"user_id":"1","k":2}}';
    const V2_BODY = '{"id":"e1","inputs":[{"name":"user_id","datatype":"BYTES","shape":[1],"data":["1"]}]}';
    // Query string, form body, trailing slash, other case, text/plain, compressed: express decides.
    const forms: [string, string, Record<string, string>][] = [
      ['/api/v1.0/predictions?json=' + encodeURIComponent(json), '', {}],
      ['/api/v1.0/predictions', 'json=' + encodeURIComponent(json), { 'content-type': 'application/x-www-form-urlencoded' }],
      ['/api/v1.0/predictions/', json, { 'content-type': 'application/json' }],
      ['/API/v1.0/predictions', json, { 'content-type': 'application/json' }],
      ['/api/v1.0/predictions', json, { 'content-type': 'text/plain' }],
      ['/api/v1.0/predictions', json, { 'content-type': 'application/vnd.seldon+json' }],
      // V2: the binary extension's header, a percent-encoded name, a version segment.
      ['/v2/models/demo-movies/infer', V2_BODY, { 'content-type': 'application/json', 'inference-header-content-length': String(Buffer.byteLength(V2_BODY)) }],
      ['/v2/models/demo%2Dmovies/infer', V2_BODY, { 'content-type': 'application/json' }],
      ['/v2/models/demo-movies/versions/demo-1/infer', V2_BODY, { 'content-type': 'application/json' }],
    ];
    for (const [path, body, headers] of forms) {
      const viaExpress = await send(plainBase, path, body, headers);
      const before = fellBack;
      const viaServer = await send(fastBase, path, body, headers);
      expect(fellBack, `${path} ${JSON.stringify(headers)} went to express`).toBe(before + 1);
      expect(comparable(viaServer, false), path).toEqual(comparable(viaExpress, false));
    }
    // The server itself has the fast path in front.
    expect((await send(t.url, '/api/v1.0/predictions', json)).status).toBe(200);
  });
});
