// Seeded mutation fuzzing of the REST transport: thousands of mutated Seldon messages (from every payload
// form of README's API section) sent over real HTTP to a real server with the demo model, as a JSON body,
// a form field `json=`, `GET ?json=` and multipart, to the predict and feedback routes. Every answer must
// come within the timeout, never be a 5xx, carry Seldon's error body when it is an error, leak no stack or
// path, and quote little input; the server must stay alive (checked every 100 requests, so a crash is
// attributed to the requests just before it).
//   RECSERVE_FUZZ_SEED=n     another seed (the default is fixed, so CI runs the same payloads)
//   RECSERVE_FUZZ_SCALE=x    x times as many payloads
//   RECSERVE_FUZZ_ONLY=i     only payload i (replays a failure)
//   RECSERVE_FUZZ_TRACE=file append each payload's label before sending it (for a crash that kills the process)
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { clipText, restProblems, send, type RawAnswer, type RawRequest } from './answers.js';
import { FEEDBACK_SEEDS, GOOD_PREDICT, PREDICT_SEEDS, SEED_PUID, TARGETED } from './corpus.js';
import { clipPayload, mutatorFor, Raw, serialize, type Json, type Mutator, type Tree } from './mutate.js';
import { rng } from '../../src/util/random.js';

const SEED = Number(process.env.RECSERVE_FUZZ_SEED ?? 20_240_917);
const SCALE = Number(process.env.RECSERVE_FUZZ_SCALE ?? 1);
const ONLY = process.env.RECSERVE_FUZZ_ONLY === undefined ? undefined : Number(process.env.RECSERVE_FUZZ_ONLY);
const TRACE = process.env.RECSERVE_FUZZ_TRACE;
const TIMEOUT_MS = 10_000;
const LIVENESS_EVERY = 100;

type Form = 'json' | 'form' | 'get' | 'multipart';
const PLAN: Record<Form, number> = { json: 900, form: 450, get: 350, multipart: 450 };
/** Characters of JSON text a mutant may have per form (bytes are at most twice that): under the 5 MB body limit, and short for URLs. */
const BUDGET: Record<Form, number> = { json: 2 << 20, form: 512 << 10, get: 24 << 10, multipart: 1 << 20 };

const ROUTES = {
  json: { predict: ['/api/v1.0/predictions', '/predict', '/api/v0.1/predictions'], feedback: ['/api/v1.0/feedback', '/send-feedback', '/api/v0.1/feedback'] },
  form: { predict: ['/predict', '/api/v1.0/predictions'], feedback: ['/send-feedback', '/api/v1.0/feedback'] },
  get: { predict: ['/predict'], feedback: ['/send-feedback'] },
  multipart: { predict: ['/predict', '/api/v1.0/predictions'], feedback: ['/send-feedback', '/api/v1.0/feedback'] },
} as const;

interface Case {
  index: number;
  form: Form;
  req: RawRequest;
  label: string;
  payload: Buffer;
}

/** Percent-encodes every byte outside the unreserved set, so invalid UTF-8 reaches the server as sent. */
function pct(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

function seedMessage(m: Mutator, op: 'predict' | 'feedback', budget: number): Tree {
  let msg: Tree = m.pick(op === 'predict' ? PREDICT_SEEDS : FEEDBACK_SEEDS);
  if (m.chance(0.2)) {
    const t = m.pick(TARGETED);
    msg = t.apply(structuredClone(msg) as { [k: string]: Json }, m.longString(budget / 2));
    m.steps.push(`targeted ${t.name}`);
  }
  return msg;
}

/** Header mutations for POST bodies: wrong or odd Content-Type, encodings that do not match, Expect. */
function mutateHeaders(m: Mutator, headers: Record<string, string>, body: Buffer): Buffer {
  const op = m.pick(['contentType', 'contentType', 'encoding', 'gzipValid', 'expect', 'chunked', 'puidHeader'] as const);
  switch (op) {
    case 'contentType': {
      const ct = m.pick(['text/plain', 'application/xml', 'application/json; charset=latin1', 'application/json; charset=utf-16', '', 'multipart/form-data', 'multipart/form-data; boundary=', 'application/x-www-form-urlencoded', 'application/vnd.api+json', 'application/json;;;', '*/*', 'application/json; charset="utf-8"', 'application/JSON']);
      if (ct) headers['content-type'] = ct;
      else delete headers['content-type'];
      m.steps.push(`content-type ${JSON.stringify(ct)}`);
      return body;
    }
    case 'encoding': {
      const enc = m.pick(['gzip', 'deflate', 'br', 'x-unknown', 'gzip, gzip', 'identity']);
      headers['content-encoding'] = enc;
      m.steps.push(`content-encoding ${enc} (body not encoded)`);
      return body;
    }
    case 'gzipValid':
      headers['content-encoding'] = 'gzip';
      m.steps.push('content-encoding gzip (gzipped)');
      return gzipSync(body);
    case 'expect': {
      const expect = m.pick(['foo', '100-continue', 'x'.repeat(100), '']);
      headers.expect = expect;
      m.steps.push(`expect ${JSON.stringify(clipText(expect, 20))}`);
      return body;
    }
    case 'chunked':
      headers['transfer-encoding'] = 'chunked';
      m.steps.push('chunked');
      return body;
    default: {
      const puid = m.pick(['x'.repeat(300), 'y'.repeat(8000), '', '../../etc/passwd']);
      headers['seldon-puid'] = puid;
      m.steps.push(`seldon-puid header of ${puid.length} chars`);
      return body;
    }
  }
}

function multipartBody(m: Mutator, msg: Tree, budget: number): { body: Buffer; contentType: string } {
  const boundary = `fuzz${m.int(1e9)}`;
  const parts: { name: string; data: Buffer; file?: boolean }[] = [];
  const tree = m.mutantTree(msg, budget);
  if (tree !== null && typeof tree === 'object' && !Array.isArray(tree) && !(tree instanceof Raw)) {
    for (const [key, value] of Object.entries(tree)) {
      if (key === 'binData' && typeof value === 'string') parts.push({ name: key, data: Buffer.from(value, 'base64'), file: true });
      else if (key === 'strData' && typeof value === 'string') parts.push({ name: key, data: Buffer.from(value) });
      else parts.push({ name: key, data: Buffer.from(serialize(value)) });
    }
  } else {
    parts.push({ name: m.pick(['jsonData', 'strData', 'data', 'request']), data: Buffer.from(serialize(tree)) });
  }
  if (parts.length && m.chance(0.25)) {
    const p = m.pick(parts);
    p.data = m.mutateBytes(p.data);
  }
  if (m.chance(0.1)) {
    parts.push({ name: 'binData', data: Buffer.from(Array.from({ length: m.int(300) }, () => m.int(256))), file: true });
    m.steps.push('extra binData file part');
  }
  if (m.chance(0.05)) {
    for (let i = 0; i < 30; i++) parts.push({ name: `field${i}`, data: Buffer.from('1') });
    m.steps.push('30 extra parts');
  }
  if (m.chance(0.05) && parts.length) {
    parts.push({ ...parts[0] });
    m.steps.push(`duplicate part ${parts[0].name}`);
  }
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = p.file ? `form-data; name="${p.name}"; filename="blob.bin"` : `form-data; name="${p.name}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.file ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`), p.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  let body: Buffer = Buffer.concat(chunks);
  let contentType = `multipart/form-data; boundary=${boundary}`;
  if (m.chance(0.1)) {
    body = m.mutateBytes(body);
    m.steps.push('(whole multipart body)');
  }
  if (m.chance(0.05)) {
    contentType = m.pick(['multipart/form-data', `multipart/form-data; boundary=other`, `multipart/form-data; boundary="${boundary}`, 'multipart/mixed; boundary=' + boundary]);
    m.steps.push(`content-type ${contentType}`);
  }
  return { body, contentType };
}

function buildCase(seed: number, index: number, form: Form): Case {
  const m = mutatorFor(seed, index);
  const op = m.chance(0.5) ? 'predict' : 'feedback';
  const route = m.pick(ROUTES[form][op]);
  const budget = BUDGET[form];
  const msg = seedMessage(m, op, budget);
  const headers: Record<string, string> = {};
  let req: RawRequest;
  let payload: Buffer;
  switch (form) {
    case 'json': {
      payload = m.mutant(msg, budget);
      headers['content-type'] = 'application/json';
      const body = m.chance(0.15) ? mutateHeaders(m, headers, payload) : payload;
      req = { method: 'POST', path: route, headers, body };
      break;
    }
    case 'form': {
      payload = m.mutant(msg, budget);
      let text = `json=${pct(payload)}`;
      if (m.chance(0.1)) {
        const extra = m.pick([`&json=${pct(payload)}`, '&other=1', '&json=', '&%zz=1', '&json=%zz', `&${'a'.repeat(5000)}=1`]);
        text += extra;
        m.steps.push(`form +${clipText(extra, 20)}`);
      }
      let body: Buffer = Buffer.from(text);
      if (m.chance(0.1)) body = m.mutateBytes(body);
      headers['content-type'] = 'application/x-www-form-urlencoded';
      if (m.chance(0.1)) body = mutateHeaders(m, headers, body);
      req = { method: 'POST', path: route, headers, body };
      break;
    }
    case 'get': {
      payload = m.mutant(msg, budget);
      let query = `json=${pct(payload)}`;
      if (m.chance(0.1)) {
        const extra = m.pick([`&json=${pct(payload)}`, '&json', '&json=%', '&json=%zz', '&other=1', '&json[]=1']);
        query += extra;
        m.steps.push(`query +${extra.slice(0, 20)}`);
      }
      req = { method: 'GET', path: `${route}?${query}` };
      break;
    }
    default: {
      const { body, contentType } = multipartBody(m, msg, budget);
      payload = body;
      headers['content-type'] = contentType;
      req = { method: 'POST', path: route, headers, body };
    }
  }
  return { index, form, req, payload, label: m.label() || 'seed' };
}

/** The forms in a seeded order, PLAN × SCALE of each. */
function schedule(seed: number): Form[] {
  const forms: Form[] = [];
  for (const [form, n] of Object.entries(PLAN) as [Form, number][]) for (let i = 0; i < Math.round(n * SCALE); i++) forms.push(form);
  const r = rng(seed);
  for (let i = forms.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [forms[i], forms[j]] = [forms[j], forms[i]];
  }
  return forms;
}

/** The same message in each transport form, for the seeds (all must answer 200). */
function seedRequests(): { name: string; req: RawRequest }[] {
  const out: { name: string; req: RawRequest }[] = [];
  const json = (v: Json) => Buffer.from(JSON.stringify(v));
  for (const [op, seeds] of [['predict', PREDICT_SEEDS], ['feedback', FEEDBACK_SEEDS]] as const) {
    seeds.forEach((s, i) => {
      const name = `${op} seed ${i}`;
      for (const route of ROUTES.json[op]) out.push({ name: `${name} json ${route}`, req: { method: 'POST', path: route, headers: { 'content-type': 'application/json' }, body: json(s) } });
      out.push({ name: `${name} form`, req: { method: 'POST', path: ROUTES.form[op][0], headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(`json=${pct(json(s))}`) } });
      out.push({ name: `${name} get`, req: { method: 'GET', path: `${ROUTES.get[op][0]}?json=${pct(json(s))}` } });
      // multipartBody mutates; build the plain one by hand.
      const boundary = 'seedboundary';
      const parts = Object.entries(s as Record<string, Json>).map(([k, v]) =>
        k === 'binData' ? `--${boundary}\r\nContent-Disposition: form-data; name="binData"; filename="b.bin"\r\nContent-Type: application/octet-stream\r\n\r\n${Buffer.from(v as string, 'base64').toString('latin1')}\r\n` : `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${k === 'strData' ? v : JSON.stringify(v)}\r\n`,
      );
      out.push({ name: `${name} multipart`, req: { method: 'POST', path: ROUTES.multipart[op][0], headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: Buffer.from(parts.join('') + `--${boundary}--\r\n`, 'latin1') } });
    });
  }
  return out;
}

let ts: TestServer;
let base: URL;
let agent: http.Agent;

beforeAll(async () => {
  // RECSERVE_FUZZ_LOG=error shows the server's log of internal errors while diagnosing a failure.
  ts = await startTestServer(process.env.RECSERVE_FUZZ_LOG ? { LOG_LEVEL: process.env.RECSERVE_FUZZ_LOG } : {});
  base = new URL(ts.url);
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  // The corpus' feedback names SEED_PUID: make it a prediction the server remembers.
  const a = await send(base, agent, { method: 'POST', path: '/api/v1.0/predictions', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ meta: { puid: SEED_PUID }, jsonData: { user_id: '1', k: 5 } })) }, TIMEOUT_MS);
  expect(a.status).toBe(200);
});

afterAll(async () => {
  agent?.destroy();
  await ts?.stop();
});

async function alive(): Promise<string | null> {
  const ping = await send(base, agent, { method: 'GET', path: '/health/ping' }, TIMEOUT_MS);
  if (ping.status !== 200 || ping.body.toString() !== 'pong') return `ping answered ${ping.status} ${ping.error ?? clipText(ping.body.toString(), 80)}`;
  const good = await send(base, agent, { method: 'POST', path: '/api/v1.0/predictions', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(GOOD_PREDICT)) }, TIMEOUT_MS);
  if (good.status !== 200) return `a valid predict answered ${good.status} ${good.error ?? clipText(good.body.toString(), 120)}`;
  return null;
}

describe('REST fuzzing', () => {
  it('every seed answers 200 in every transport form (the fuzzer starts from valid messages)', async () => {
    const bad: string[] = [];
    for (const { name, req } of seedRequests()) {
      const a = await send(base, agent, req, TIMEOUT_MS);
      if (a.status !== 200) bad.push(`${name}: ${a.status} ${a.error ?? clipText(a.body.toString(), 200)}`);
    }
    expect(bad).toEqual([]);
  });

  it(`mutated payloads (seed ${SEED}): no 5xx, Seldon error bodies, no leaks, no stalls, the server stays up`, { timeout: 600_000 }, async () => {
    const forms = schedule(SEED);
    const indices = ONLY !== undefined ? [ONLY] : forms.map((_, i) => i);
    const sent: Record<string, number> = {};
    const statuses: Record<string, Record<string, number>> = {};
    const failures: { c: Case; problems: string[]; a: RawAnswer }[] = [];
    let dead: string | null = null;
    let sinceCheck: number[] = [];
    const started = Date.now();
    let bytes = 0;
    for (const i of indices) {
      const c = buildCase(SEED, i, forms[i]);
      if (TRACE) appendFileSync(TRACE, `${i} ${c.form} ${c.req.method} ${c.req.path.slice(0, 40)} ${c.label.slice(0, 200)}\n`);
      const a = await send(base, agent, c.req, TIMEOUT_MS);
      bytes += c.req.body?.length ?? c.req.path.length;
      const route = c.req.path.split('?')[0];
      const key = `${c.form} ${c.req.method} ${route}`;
      sent[key] = (sent[key] ?? 0) + 1;
      (statuses[c.form] ??= {})[a.error ? 'no answer' : String(a.status)] = ((statuses[c.form] ??= {})[a.error ? 'no answer' : String(a.status)] ?? 0) + 1;
      const problems = restProblems(a, TIMEOUT_MS);
      if (problems.length) failures.push({ c, problems, a });
      sinceCheck.push(i);
      if (sinceCheck.length >= LIVENESS_EVERY || i === indices[indices.length - 1]) {
        const why = await alive();
        if (why) {
          dead = `server not alive after payloads ${sinceCheck[0]}..${sinceCheck[sinceCheck.length - 1]}: ${why}`;
          break;
        }
        sinceCheck = [];
      }
    }
    const seconds = (Date.now() - started) / 1000;

    // Group failures into classes by problem (numbers folded), with where they happened and the first example.
    const classes = new Map<string, { count: number; where: Set<string>; example: (typeof failures)[number] }>();
    for (const f of failures) {
      for (const p of f.problems) {
        // Keep the status (the first word), fold the other numbers.
        const space = p.indexOf(' ');
        const k = (space < 0 ? p : p.slice(0, space) + p.slice(space).replace(/\d+/g, 'N')).slice(0, 140);
        const entry = classes.get(k) ?? { count: 0, where: new Set<string>(), example: f };
        entry.count++;
        entry.where.add(`${f.c.form} ${f.c.req.method} ${f.c.req.path.split('?')[0]}`);
        classes.set(k, entry);
      }
    }
    console.log(
      [
        `REST fuzz, seed ${SEED}, scale ${SCALE}: ${indices.length} payloads (${(bytes / 1e6).toFixed(1)} MB) in ${seconds.toFixed(1)} s`,
        `sent: ${JSON.stringify(sent)}`,
        `statuses per form: ${JSON.stringify(statuses)}`,
        `failures: ${failures.length} payloads in ${classes.size} classes`,
      ].join('\n'),
    );
    const report = [...classes].map(
      ([k, { count, where, example: f }]) => `${count} × ${k}\n    on ${[...where].sort().join(', ')}\n    e.g. seed ${SEED} index ${f.c.index} [${f.c.label}] ${f.c.req.method} ${clipText(f.c.req.path, 80)} payload ${clipPayload(f.c.payload, 200)}\n    answer ${f.a.status} ${f.a.error ?? clipText(f.a.body.toString(), 200)}`,
    );
    if (report.length) console.log(report.join('\n'));
    expect(dead).toBeNull();
    // The class names only: the examples (seed, index, payload, answer) are in the log above.
    expect([...classes].map(([k, v]) => `${v.count} × ${k} (${v.where.size} routes/forms)`)).toEqual([]);
    expect(indices.length).toBeGreaterThanOrEqual(ONLY !== undefined ? 1 : Math.min(2000, Math.round(2150 * SCALE)));
  });

  it('the server is alive after the fuzzing', async () => {
    expect(await alive()).toBeNull();
  });
});
