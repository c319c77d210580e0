// The HTTP transport under odd or hostile requests, over raw sockets (node:net) so headers and bodies
// are exactly what an attacker sends: multipart that is garbage, too big or has too many parts, bodies
// whose Content-Encoding lies, unknown Expect headers, connection floods and pipelining clients that
// never read. Every refusal is a 4xx in Seldon's format, and the server answers a predict after each.
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSeldonError, postJson, startTestServer, type TestServer } from '../helpers/server.js';

const LIMIT = 64 * 1024;
const MAX_PARTS = 4;
const MAX_CONNECTIONS = 24;
const MAX_PIPELINED = 4;
const USERS = 250;

let ts: TestServer;
let port: number;

beforeAll(async () => {
  ts = await startTestServer({
    RECSERVE_BODY_LIMIT: String(LIMIT),
    RECSERVE_MAX_MULTIPART_PARTS: String(MAX_PARTS),
    RECSERVE_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    RECSERVE_MAX_PIPELINED: String(MAX_PIPELINED),
    RECSERVE_MAX_RESULT_ITEMS: '30000', // the non-reading client's answers must be big (250 users × k=120)
    RECSERVE_MAX_RANKED_ITEMS: '30000',
  });
  port = ts.server.ports.http;
});
afterAll(async () => ts?.stop());

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: any;
}

/** Opens a socket, writes `head` (and then each of `then`, one per tick), resolves with the first answer. */
function rawRequest(head: string | Buffer, then: (string | Buffer)[] = []): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (a: RawAnswer) => {
      done = true;
      socket.destroy();
      resolve(a);
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const a = parseAnswer(buf);
      if (a) finish(a);
    });
    socket.on('error', (e) => !done && reject(e));
    socket.on('close', () => !done && reject(new Error(`closed without a complete answer: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`)));
    socket.write(head);
    let i = 0;
    const next = () => {
      if (done || i >= then.length) return;
      socket.write(then[i++], () => setImmediate(next));
    };
    next();
  });
}

/** The first complete HTTP/1.1 answer in buf (skipping 100 Continue), or null. */
function parseAnswer(buf: Buffer): RawAnswer | null {
  let text = buf.toString('latin1');
  while (text.startsWith('HTTP/1.1 100')) {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return null;
    text = text.slice(end + 4);
  }
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  const length = Number(headers['content-length'] ?? 0);
  const rest = Buffer.from(text.slice(end + 4), 'latin1');
  if (rest.length < length) return null;
  const raw = rest.subarray(0, length).toString('utf8');
  let body: any = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    /* not JSON */
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

const PREDICT = '/api/v1.0/predictions';
const head = (lines: string[]) => `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
const goodMessage = JSON.stringify({ jsonData: { user_id: '1', k: 2 } });

async function expectServing(): Promise<void> {
  const r = await postJson(`${ts.url}${PREDICT}`, { jsonData: { user_id: '1', k: 2 } });
  expect(r.status).toBe(200);
  expect(r.body.jsonData.recommendations[0].items).toHaveLength(2);
}

function part(name: string, value: string, boundary = 'XyZ'): string {
  return `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}

describe('multipart bodies', () => {
  it('a well-formed multipart predict still works', async () => {
    const body = `${part('jsonData', JSON.stringify({ user_id: '1', k: 2 }))}--XyZ--\r\n`;
    const r = await rawRequest(head(['Content-Type: multipart/form-data; boundary=XyZ', `Content-Length: ${body.length}`]) + body);
    expect(r.status).toBe(200);
    expect(r.body.jsonData.recommendations[0].items).toHaveLength(2);
  });

  it.each([
    ['garbage under a declared boundary', 'multipart/form-data; boundary=XyZ', 'this is not multipart at all'],
    ['no boundary parameter', 'multipart/form-data', 'hello'],
    ['truncated in the middle of a part', 'multipart/form-data; boundary=XyZ', `--XyZ\r\nContent-Disposition: form-data; name="jsonData"\r\n\r\n{"user_id"`],
    ['a part without Content-Disposition', 'multipart/form-data; boundary=XyZ', `--XyZ\r\nX-Nothing: 1\r\n\r\nvalue\r\n--XyZ--\r\n`],
    ['a malformed part header', 'multipart/form-data; boundary=XyZ', `--XyZ\r\n\u0000\u0001garbage-without-colon\r\n\r\nvalue\r\n--XyZ--\r\n`],
  ])('%s → 400 in Seldon format', async (_name, type, body) => {
    const r = await rawRequest(head([`Content-Type: ${type}`, `Content-Length: ${Buffer.byteLength(body)}`]) + body);
    expect(r.status).toBe(400);
    expect(expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA')).toMatch(/multipart|JSON/);
    await expectServing();
  });

  it('a Content-Length beyond the body limit → 413 before any of the body is sent', async () => {
    // Only the headers go out: the answer cannot depend on reading (let alone buffering) the body.
    const r = await rawRequest(head(['Content-Type: multipart/form-data; boundary=XyZ', `Content-Length: ${200 * 1024 * 1024}`]));
    expect(r.status).toBe(413);
    expect(expectSeldonError(r.body)).toMatch(/larger than the limit of 65536 bytes \(RECSERVE_BODY_LIMIT\)/);
    expect(r.headers.connection).toBe('close');
    await expectServing();
  });

  it('a chunked multipart body is counted over all its parts: 413 once the total passes the limit, before it ends', async () => {
    // Each part is well under the limit (multer's per-part limit alone would accept every one of them),
    // and the body is never finished: the 413 must come from counting the whole body as it streams.
    const piece = part('strData', 'x'.repeat(20 * 1024));
    const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
    const r = await rawRequest(head(['Content-Type: multipart/form-data; boundary=XyZ', 'Transfer-Encoding: chunked']), Array.from({ length: 40 }, () => chunk(piece)));
    expect(r.status).toBe(413);
    expect(expectSeldonError(r.body)).toMatch(/RECSERVE_BODY_LIMIT/);
    await expectServing();
  });

  it('more parts than RECSERVE_MAX_MULTIPART_PARTS → 400 naming the limit', async () => {
    const body = `${Array.from({ length: MAX_PARTS + 3 }, (_, i) => part(`f${i}`, '1')).join('')}--XyZ--\r\n`;
    const r = await rawRequest(head(['Content-Type: multipart/form-data; boundary=XyZ', `Content-Length: ${body.length}`]) + body);
    expect(r.status).toBe(400);
    expect(expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA')).toMatch(new RegExp(`more than ${MAX_PARTS} parts \\(limit RECSERVE_MAX_MULTIPART_PARTS=${MAX_PARTS}\\)`));
    await expectServing();
  });

  it('a compressed multipart body → 400 (multipart is read uncompressed)', async () => {
    const body = gzipSync(`${part('jsonData', '{"user_id":"1"}')}--XyZ--\r\n`);
    const r = await rawRequest(Buffer.concat([Buffer.from(head(['Content-Type: multipart/form-data; boundary=XyZ', 'Content-Encoding: gzip', `Content-Length: ${body.length}`])), body]));
    expect(r.status).toBe(400);
    expect(expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA')).toMatch(/Content-Encoding/);
  });
});

describe('Content-Encoding', () => {
  it('valid gzip JSON is inflated and served', async () => {
    const body = gzipSync(goodMessage);
    const r = await rawRequest(Buffer.concat([Buffer.from(head(['Content-Type: application/json', 'Content-Encoding: gzip', `Content-Length: ${body.length}`])), body]));
    expect(r.status).toBe(200);
    expect(r.body.jsonData.recommendations[0].items).toHaveLength(2);
  });

  it.each(['gzip', 'deflate', 'br'])('%s with a body that is not %s data → 400 in Seldon format', async (encoding) => {
    const body = 'this is plain text, not compressed';
    const r = await rawRequest(head(['Content-Type: application/json', `Content-Encoding: ${encoding}`, `Content-Length: ${body.length}`]) + body);
    expect(r.status).toBe(400);
    expect(expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA')).toMatch(/not valid data for its Content-Encoding/);
    await expectServing();
  });

  it('an unknown Content-Encoding → 400 naming the supported ones', async () => {
    const r = await rawRequest(head(['Content-Type: application/json', 'Content-Encoding: x-snappy', `Content-Length: ${goodMessage.length}`]) + goodMessage);
    expect(r.status).toBe(400);
    expect(expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA')).toMatch(/Content-Encoding "x-snappy" is not supported; send gzip, deflate, br or identity/);
  });

  it('a gzip bomb is bounded by the body limit after inflation → 413', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)); // 50 MB of spaces in ~50 KB
    expect(bomb.length).toBeLessThan(LIMIT);
    const r = await rawRequest(Buffer.concat([Buffer.from(head(['Content-Type: application/json', 'Content-Encoding: gzip', `Content-Length: ${bomb.length}`])), bomb]));
    expect(r.status).toBe(413);
    expect(expectSeldonError(r.body)).toMatch(/RECSERVE_BODY_LIMIT/);
    await expectServing();
  });

  it('a chunked JSON body beyond the limit → 413 on the express path too', async () => {
    const chunk = `${(16 * 1024).toString(16)}\r\n${' '.repeat(16 * 1024)}\r\n`;
    const r = await rawRequest(head(['Content-Type: application/json', 'Transfer-Encoding: chunked']), [...Array.from({ length: 6 }, () => chunk), '0\r\n\r\n']);
    expect(r.status).toBe(413);
    expectSeldonError(r.body);
  });
});

describe('Expect', () => {
  it('an unknown Expect header → 417 with a Seldon body', async () => {
    const r = await rawRequest(head(['Content-Type: application/json', 'Expect: teapot', `Content-Length: ${goodMessage.length}`]) + goodMessage);
    expect(r.status).toBe(417);
    expect(expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA')).toMatch(/Expect: "teapot" is not supported; only 100-continue is/);
    await expectServing();
  });

  it('Expect: 100-continue gets 100 Continue, then the answer', async () => {
    const answer = await new Promise<{ sawContinue: boolean; answer: RawAnswer }>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      let sentBody = false;
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!sentBody && buf.toString('latin1').startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
          sentBody = true;
          socket.write(goodMessage);
        }
        const a = parseAnswer(buf);
        if (a) {
          socket.destroy();
          resolve({ sawContinue: sentBody, answer: a });
        }
      });
      socket.on('error', reject);
      socket.write(head(['Content-Type: application/json', 'Expect: 100-continue', `Content-Length: ${goodMessage.length}`]));
    });
    expect(answer.sawContinue).toBe(true);
    expect(answer.answer.status).toBe(200);
  });
});

describe('connections', () => {
  it(`idle sockets beyond RECSERVE_MAX_CONNECTIONS are dropped and a fresh probe still answers`, async () => {
    const sockets: net.Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < MAX_CONNECTIONS * 2; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('close', () => closedByServer++);
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      sockets.push(s);
    }
    try {
      const ping = await fetch(`${ts.url}/health/ping`);
      expect(ping.status).toBe(200);
      expect(await ping.text()).toBe('pong');
      // Every connection beyond the limit evicted an older idle one: at most the limit stay open.
      await new Promise((r) => setTimeout(r, 100));
      expect(closedByServer).toBeGreaterThanOrEqual(MAX_CONNECTIONS);
      await expectServing();
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('pipelined requests are all answered, in order', async () => {
    const n = MAX_PIPELINED * 5;
    const one = (i: number) => {
      const m = JSON.stringify({ jsonData: { user_id: String(i + 1), k: 1 } });
      return head(['Content-Type: application/json', `Content-Length: ${m.length}`]) + m;
    };
    const answers = await new Promise<RawAnswer[]>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      const out: RawAnswer[] = [];
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const a = parseAnswer(buf);
          if (!a) break;
          out.push(a);
          // Drop the answer just parsed (its head and body) from the buffer.
          const end = buf.indexOf('\r\n\r\n') + 4 + Number(a.headers['content-length']);
          buf = buf.subarray(end);
        }
        if (out.length === n) {
          socket.destroy();
          resolve(out);
        }
      });
      socket.on('error', reject);
      socket.write(Array.from({ length: n }, (_, i) => one(i)).join(''));
    });
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(200));
    expect(answers.map((a) => a.body.jsonData.recommendations[0].user_id)).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)));
  });

  it('a client that pipelines and never reads does not make the server run its requests ahead', async () => {
    // Big answers (250 users × k=120, ~2.5 MB) so the kernel's socket buffers hold only a few; small
    // requests, so one 64 KB read holds dozens: without the cap Node starts every request it has read.
    const m = JSON.stringify({ jsonData: { users: Array.from({ length: USERS }, (_, i) => `v${i}`), k: 120 } });
    const total = 300;
    const requests = (head(['Content-Type: application/json', `Content-Length: ${m.length}`]) + m).repeat(total);
    const before = await predictCount();
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause(); // never read
    socket.write(requests);
    try {
      // Wait until the server stops answering this connection (the count stays put), then look.
      let last = -1;
      let now = await predictCount();
      for (let i = 0; i < 50 && now !== last; i++) {
        await new Promise((r) => setTimeout(r, 200));
        last = now;
        now = await predictCount();
      }
      const ran = Math.floor(now - before); // requests of this connection the server computed
      expect(ran).toBeGreaterThan(0);
      expect(ran).toBeLessThanOrEqual(2 * MAX_PIPELINED + 6); // the cap, plus what the kernel buffers took
      await expectServing(); // other connections are served meanwhile
    } finally {
      socket.destroy();
    }
  });
});

/** Predictions the server has computed so far (answered or not): recserve_recommendations_total / USERS. */
async function predictCount(): Promise<number> {
  const text = await (await fetch(`${ts.metricsUrl}/prometheus`)).text();
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('recserve_recommendations_total{')) n += Number(line.split(' ').at(-1));
  return n / USERS;
}

describe('slow senders', () => {
  let slow: TestServer;
  beforeAll(async () => {
    slow = await startTestServer({ RECSERVE_HEADERS_TIMEOUT_MS: '500', RECSERVE_REQUEST_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => slow?.stop());

  it.each([
    ['headers that never end (RECSERVE_HEADERS_TIMEOUT_MS)', `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n`],
    ['a body that never ends (RECSERVE_REQUEST_TIMEOUT_MS)', `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jsonData"`],
  ])('%s: the server answers 408 and closes the socket', async (_what, partial) => {
    const socket = net.connect(slow.server.ports.http, '127.0.0.1');
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.write(partial);
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    const r = await postJson(`${slow.url}${PREDICT}`, { jsonData: { user_id: '1', k: 1 } });
    expect(r.status).toBe(200);
  });
});
