// Seeded mutation fuzzing of the V2 REST routes: hundreds of mutated inference and feedback requests
// (JSON bodies, and binary-extension bodies whose header, sizes and bytes are mutated) sent over real
// HTTP to a real server with the demo model. Every answer must come in time, never be a 5xx, carry
// V2's {"error": "…"} body when it is an error, leak no stack or path, and quote little input; the
// server must keep serving (checked every 100 requests).
//   RECSERVE_FUZZ_SEED=n   another seed (the default is fixed, so CI runs the same requests)
//   RECSERVE_FUZZ_SCALE=x  x times as many requests
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTensor } from '../../src/protocols/v2/binary.js';
import { rng } from '../../src/util/random.js';
import { clipText, leakIn, MAX_ERROR_TEXT, send, type RawAnswer, type RawRequest } from './answers.js';
import { clipPayload, mutatorFor, type Json, type Mutator } from './mutate.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SEED = Number(process.env.RECSERVE_FUZZ_SEED ?? 20_261_201);
const SCALE = Number(process.env.RECSERVE_FUZZ_SCALE ?? 1);
const TIMEOUT_MS = 10_000;
const LIVENESS_EVERY = 100;
const BUDGET = 1 << 20;
const MODEL = 'demo-movies';
const SEED_ID = 'v2-fuzz-seed-id';

const users = (data: Json[], datatype = 'BYTES'): Json => ({ name: 'user_id', datatype, shape: [data.length], data });
const INFER_SEEDS: Json[] = [
  { inputs: [users(['1'])] },
  { id: 'fuzz-1', parameters: { k: 3, exclude_seen: false }, inputs: [users(['1', 'newcomer'])] },
  { parameters: { k: 5, filter: { genre: ['Comedy', 'Drama'] }, explore: 1 }, inputs: [users([1, 2], 'INT64')] },
  { parameters: { filter: '{"genre":"Action"}' }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2, 1], data: [['3'], ['4']] }], outputs: [{ name: 'item_id' }, { name: 'count' }] },
  { inputs: [users(['1', '2']), { name: 'item_id', datatype: 'BYTES', shape: [2], data: ['5', '17'] }] },
  { parameters: { k: 2, binary_data_output: true }, inputs: [users(['7'])], outputs: [{ name: 'score', parameters: { binary_data: false } }, { name: 'item_id' }] },
];
const FEEDBACK_SEEDS: Json[] = [
  { id: SEED_ID, reward: 1, truth: ['1'] },
  { user_id: '9', items: ['1', '2'], truth: ['2'], reward: 0.5 },
  { id: 'unknown-id', reward: 0 },
];
const ROUTES = {
  infer: [`/v2/models/${MODEL}/infer`, `/v2/models/${MODEL}/versions/demo-1/infer`, '/v2/models/other/infer'],
  feedback: [`/v2/models/${MODEL}/feedback`],
};

type Kind = 'infer' | 'binary' | 'feedback' | 'path';
const PLAN: Record<Kind, number> = { infer: 300, binary: 150, feedback: 100, path: 50 };

interface Case {
  index: number;
  kind: Kind;
  req: RawRequest;
  label: string;
}

/** A binary-extension body of user ids, then its header length, sizes or bytes mutated. */
function binaryCase(m: Mutator): { body: Buffer; headers: Record<string, string> } {
  const ids = m.pick([['1'], ['1', '2', 'newcomer'], ['x'.repeat(300)], ['']]);
  const datatype = m.chance(0.3) ? 'INT64' : 'BYTES';
  const tensor = datatype === 'INT64' ? encodeTensor({ name: 'u', datatype: 'INT64', shape: [ids.length], data: ids.map((_, i) => i + 1) }) : encodeTensor({ name: 'u', datatype: 'BYTES', shape: [ids.length], data: ids });
  let size = tensor.length;
  let shape: Json = [ids.length];
  let tail: Buffer = tensor;
  switch (m.pick(['size', 'shape', 'bytes', 'truncate', 'extra', 'none'] as const)) {
    case 'size':
      size = m.pick([0, size - 1, size + 1, -1, 2 ** 40, 1.5]);
      m.steps.push(`binary_data_size ${size}`);
      break;
    case 'shape':
      shape = m.pick<Json>([[ids.length + 1], [0], [4_000_000_000], [ids.length, 2], [], ['1']]);
      m.steps.push(`shape ${JSON.stringify(shape)}`);
      break;
    case 'bytes':
      tail = m.mutateBytes(tensor);
      break;
    case 'truncate':
      tail = tensor.subarray(0, m.int(tensor.length));
      m.steps.push(`truncated to ${tail.length}`);
      break;
    case 'extra':
      tail = Buffer.concat([tensor, Buffer.from([1, 2, 3])]);
      m.steps.push('3 extra bytes');
      break;
    default:
      break;
  }
  const json = Buffer.from(JSON.stringify({ parameters: { k: 2 }, inputs: [{ name: 'user_id', datatype, shape, parameters: { binary_data_size: size } }] }));
  const headerLength = m.chance(0.3) ? m.pick(['0', '-1', 'abc', String(json.length - 1), String(json.length + tail.length + 1), '99999999999999999', ` ${json.length}`]) : String(json.length);
  if (headerLength !== String(json.length)) m.steps.push(`header length ${JSON.stringify(headerLength)}`);
  return { body: Buffer.concat([json, tail]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': headerLength } };
}

function buildCase(index: number, kind: Kind): Case {
  const m = mutatorFor(SEED, index);
  let req: RawRequest;
  switch (kind) {
    case 'infer':
      req = { method: 'POST', path: m.pick(ROUTES.infer), headers: { 'content-type': m.pick(['application/json', 'application/json', 'text/plain', 'application/octet-stream']) }, body: m.mutant(m.pick(INFER_SEEDS), BUDGET) };
      break;
    case 'binary': {
      const { body, headers } = binaryCase(m);
      req = { method: 'POST', path: ROUTES.infer[0], headers, body };
      break;
    }
    case 'feedback':
      req = { method: 'POST', path: m.pick(ROUTES.feedback), headers: { 'content-type': 'application/json' }, body: m.mutant(m.pick(FEEDBACK_SEEDS), BUDGET) };
      break;
    default: {
      const name = m.pick(['%00', '..%2F..%2Fetc', 'x'.repeat(3000), '%F0%9F', 'demo-movies%20', '__proto__', 'constructor']);
      const path = m.pick([`/v2/models/${name}`, `/v2/models/${name}/ready`, `/v2/models/${MODEL}/versions/${name}`, `/v2/models/${MODEL}/versions/${name}/ready`]);
      m.steps.push(`path ${clipText(path, 60)}`);
      req = m.chance(0.5) ? { method: 'GET', path } : { method: 'POST', path: `${path}/infer`, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(INFER_SEEDS[0])) };
    }
  }
  return { index, kind, req, label: m.label() || 'seed' };
}

/** Every problem with one answer: no answer or a stall, a 5xx, an error body that is not {"error"}, a leak. */
function v2Problems(a: RawAnswer): string[] {
  if (a.error) return [a.error.startsWith('no answer') ? 'stall' : `no answer (${a.error})`];
  const problems: string[] = [];
  const text = a.body.toString('utf8');
  if (a.status >= 500) problems.push(`${a.status} ${JSON.stringify(clipText(text, 120))}`);
  if (a.status >= 400) {
    let error: unknown;
    try {
      const body = JSON.parse(text);
      error = Object.keys(body).length === 1 ? body.error : undefined;
    } catch {
      error = undefined;
    }
    if (typeof error !== 'string') problems.push(`${a.status} without a V2 error body: ${JSON.stringify(clipText(text, 80))}`);
    else if (error.length > MAX_ERROR_TEXT) problems.push(`${a.status} error of ${error.length} chars`);
  }
  const leak = leakIn(text.replace(/\\n/g, '\n'));
  if (leak) problems.push(`leak: ${leak}`);
  return problems;
}

function schedule(): Kind[] {
  const kinds: Kind[] = [];
  for (const [kind, n] of Object.entries(PLAN) as [Kind, number][]) for (let i = 0; i < Math.round(n * SCALE); i++) kinds.push(kind);
  const r = rng(SEED);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  return kinds;
}

let ts: TestServer;
let base: URL;
let agent: http.Agent;
const json = (v: Json) => Buffer.from(JSON.stringify(v));

beforeAll(async () => {
  ts = await startTestServer();
  base = new URL(ts.url);
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  // The feedback corpus names SEED_ID: make it a prediction the server remembers.
  const a = await send(base, agent, { method: 'POST', path: ROUTES.infer[0], headers: { 'content-type': 'application/json' }, body: json({ id: SEED_ID, inputs: [users(['1'])] }) }, TIMEOUT_MS);
  expect(a.status).toBe(200);
});

afterAll(async () => {
  agent?.destroy();
  await ts?.stop();
});

async function alive(): Promise<string | null> {
  const live = await send(base, agent, { method: 'GET', path: '/v2/health/live' }, TIMEOUT_MS);
  if (live.status !== 200) return `live answered ${live.status} ${live.error ?? ''}`;
  const good = await send(base, agent, { method: 'POST', path: ROUTES.infer[0], headers: { 'content-type': 'application/json' }, body: json(INFER_SEEDS[0]) }, TIMEOUT_MS);
  if (good.status !== 200) return `a valid infer answered ${good.status} ${good.error ?? clipText(good.body.toString(), 120)}`;
  return null;
}

describe('V2 REST fuzzing', () => {
  it('every seed answers 200 (the fuzzer starts from valid requests)', async () => {
    const bad: string[] = [];
    for (const [path, seeds] of [[ROUTES.infer[0], INFER_SEEDS], [ROUTES.feedback[0], FEEDBACK_SEEDS]] as const) {
      for (const s of seeds) {
        const a = await send(base, agent, { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: json(s) }, TIMEOUT_MS);
        if (a.status !== 200) bad.push(`${path} ${JSON.stringify(s)}: ${a.status} ${clipText(a.body.toString(), 200)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it(`mutated requests (seed ${SEED}): no 5xx, V2 error bodies, no leaks, the server keeps serving`, { timeout: 300_000 }, async () => {
    const kinds = schedule();
    const statuses: Record<string, Record<string, number>> = {};
    const failures: string[] = [];
    let dead: string | null = null;
    for (const [i, kind] of kinds.entries()) {
      const c = buildCase(i, kind);
      const a = await send(base, agent, c.req, TIMEOUT_MS);
      const byKind = (statuses[kind] ??= {});
      const status = a.error ? 'no answer' : String(a.status);
      byKind[status] = (byKind[status] ?? 0) + 1;
      for (const p of v2Problems(a)) failures.push(`${p} — index ${i} ${kind} [${c.label}] ${c.req.method} ${clipText(c.req.path, 60)} ${clipPayload(c.req.body ?? '', 160)}`);
      if ((i + 1) % LIVENESS_EVERY === 0 || i === kinds.length - 1) {
        const why = await alive();
        if (why) {
          dead = `not serving after request ${i}: ${why}`;
          break;
        }
      }
    }
    console.log(`V2 REST fuzz, seed ${SEED}: ${kinds.length} requests; statuses per kind: ${JSON.stringify(statuses)}`);
    expect(dead).toBeNull();
    expect(failures.slice(0, 20)).toEqual([]);
    // The mutants reach both sides of the checks: answers and refusals.
    const answered = Object.values(statuses).reduce((n, byStatus) => n + (byStatus['200'] ?? 0), 0);
    expect(answered).toBeGreaterThan(0);
    expect(statuses.infer?.['400']).toBeGreaterThan(0);
    expect(statuses.binary?.['400']).toBeGreaterThan(0);
  });
});
