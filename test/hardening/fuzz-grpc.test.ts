// Seeded fuzzing of the gRPC transport over ONE client channel (one HTTP/2 connection), as Seldon's
// executor multiplexes many clients over few connections: semantic junk (mutated Seldon messages and
// feedback encoded from proto/prediction.proto, the oversized fields, 10,000-deep values) and raw
// malformed bytes (random, truncated, wrong wire types, overlong varints). Every answer must be a proper
// status (OK, INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNIMPLEMENTED) within the deadline, with
// short details and no leaked internals, and after every bad call a good call on the SAME channel must
// succeed (an oversized error trailer once tore the shared connection down).
//   RECSERVE_FUZZ_SEED, RECSERVE_FUZZ_SCALE, RECSERVE_FUZZ_ONLY, RECSERVE_FUZZ_TRACE as in fuzz-rest.test.ts.
import { appendFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { clipText } from './answers.js';
import { FEEDBACK_SEEDS, PREDICT_SEEDS, SEED_PUID, TARGETED } from './corpus.js';
import { deepJsonData, encode, GOOD, goodCall, grpcProblems, junkMessage, lengthDelimited, M, rawUnary, tag, tensorShapeMessage, varint, type GrpcAnswer } from './grpc-junk.js';
import { clipPayload, mutatorFor, type Json, type Mutator, type Tree } from './mutate.js';

const SEED = Number(process.env.RECSERVE_FUZZ_SEED ?? 20_240_917);
const SCALE = Number(process.env.RECSERVE_FUZZ_SCALE ?? 1);
const ONLY = process.env.RECSERVE_FUZZ_ONLY === undefined ? undefined : Number(process.env.RECSERVE_FUZZ_ONLY);
const TRACE = process.env.RECSERVE_FUZZ_TRACE;
const COUNT = Math.round(600 * SCALE);
const BUDGET = 1 << 20;
const PREDICT_METHODS = [M('Model', 'Predict'), M('Seldon', 'Predict')];
const FEEDBACK_METHODS = [M('Model', 'SendFeedback'), M('Generic', 'SendFeedback'), M('Seldon', 'SendFeedback')];
const ALL_METHODS = [...PREDICT_METHODS, ...FEEDBACK_METHODS, M('Seldon', 'ModelMetadata'), M('Model', 'Metadata'), M('Generic', 'TransformInput'), M('Combiner', 'Aggregate'), M('Seldon', 'GraphMetadata')];

interface Case {
  index: number;
  kind: string;
  method: string;
  bytes: Buffer;
  label: string;
}

function semantic(m: Mutator): { method: string; bytes: Buffer } {
  const feedback = m.chance(0.45);
  let seed: Tree = m.pick(feedback ? FEEDBACK_SEEDS : PREDICT_SEEDS);
  if (m.chance(0.2)) {
    const t = m.pick(TARGETED);
    seed = t.apply(structuredClone(seed) as { [k: string]: Json }, m.longString(BUDGET / 2));
    m.steps.push(`targeted ${t.name}`);
  }
  const tree = m.mutantTree(seed, BUDGET);
  if (!feedback && m.chance(0.15)) {
    // strData carries JSON text: give it text-level junk too.
    const text = m.mutant(m.pick(PREDICT_SEEDS.map((s) => (s as { jsonData?: Json }).jsonData ?? null)), BUDGET, 0.5).toString('utf8');
    m.steps.push('as strData');
    return { method: m.pick(PREDICT_METHODS), bytes: encode('SeldonMessage', { strData: text }) };
  }
  return { method: m.pick(feedback ? FEEDBACK_METHODS : PREDICT_METHODS), bytes: junkMessage(feedback ? 'Feedback' : 'SeldonMessage', tree) };
}

/** The oversized gRPC fields and the shapes protobufjs cannot write. */
function special(m: Mutator): { method: string; bytes: Buffer } {
  const mb = 'p'.repeat(1 << 20);
  const cases: [string, () => { method: string; bytes: Buffer }][] = [
    ['tensor shape of 100k entries', () => ({ method: M('Model', 'Predict'), bytes: tensorShapeMessage(Array.from({ length: 100_000 }, () => 1)) })],
    ['tensor shape [400000000,0]', () => ({ method: M('Model', 'Predict'), bytes: tensorShapeMessage([400000000, 0]) })],
    ['tensor shape [4294967296,0] (raw varint)', () => ({ method: M('Model', 'Predict'), bytes: tensorShapeMessage([4294967296n, 0]) })],
    ['tensor shape [-1,-1]', () => ({ method: M('Model', 'Predict'), bytes: tensorShapeMessage([-1, -1]) })],
    ['tensor shape [2^63,1]', () => ({ method: M('Model', 'Predict'), bytes: tensorShapeMessage([2n ** 63n, 1]) })],
    ['1 MB puid (predict)', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { meta: { puid: mb }, strData: '1' }) })],
    ['1 MB puid (feedback)', () => ({ method: m.pick(FEEDBACK_METHODS), bytes: encode('Feedback', { response: { meta: { puid: mb } }, reward: 1 }) })],
    ['5,000-item truth', () => ({ method: m.pick(FEEDBACK_METHODS), bytes: encode('Feedback', { request: { strData: '1' }, truth: { data: { ndarray: { values: Array.from({ length: 5000 }, (_, i) => ({ listValue: { values: [{ stringValue: `item-${i}` }] } })) } } }, reward: 1 }) })],
    ['200 KB filter key', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { jsonData: { structValue: { fields: { user_id: { stringValue: '1' }, filter: { structValue: { fields: { ['f'.repeat(200_000)]: { stringValue: 'Comedy' } } } } } } } }) })],
    ['1 MB ModelMetadata name', () => ({ method: M('Seldon', 'ModelMetadata'), bytes: encode('SeldonModelMetadataRequest', { name: 'n'.repeat(1 << 20) }) })],
    ['ModelMetadata unicode name', () => ({ method: M('Seldon', 'ModelMetadata'), bytes: encode('SeldonModelMetadataRequest', { name: m.pick(['\ud800', '\u0000', '\u202e', 'demo-movies\u0000', '../../etc/passwd', '']) }) })],
    ['10,000-deep list jsonData', () => ({ method: M('Model', 'Predict'), bytes: deepJsonData(10_000, 'list') })],
    ['10,000-deep struct jsonData', () => ({ method: M('Model', 'Predict'), bytes: deepJsonData(10_000, 'struct') })],
    ['5,000 tags', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { meta: { tags: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`t${i}`, { numberValue: i }])) }, strData: '1' }) })],
    ['1 MB tag key', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { meta: { tags: { [mb]: { numberValue: 1 } } }, strData: '1' }) })],
    ['10,000 metrics', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { meta: { metrics: Array.from({ length: 10_000 }, (_, i) => ({ key: `m${i}`, value: i })) }, strData: '1' }) })],
    ['1 MB metric key', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { meta: { metrics: [{ key: mb, value: 1 }] }, strData: '1' }) })],
    ['1 MB requestPath', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { meta: { requestPath: { [mb]: mb } }, strData: '1' }) })],
    ['100k names', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { data: { names: Array.from({ length: 100_000 }, (_, i) => `n${i}`), ndarray: { values: [] } } }) })],
    ['1 MB strData user id', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { strData: mb }) })],
    ['NaN reward', () => ({ method: m.pick(FEEDBACK_METHODS), bytes: encode('Feedback', { response: { meta: { puid: SEED_PUID } }, reward: NaN }) })],
    ['Infinity tensor values', () => ({ method: M('Model', 'Predict'), bytes: encode('SeldonMessage', { data: { tensor: { shape: [1, 2], values: [Infinity, NaN] } } }) })],
    ['tftensor', () => ({ method: M('Model', 'Predict'), bytes: lengthDelimited(3, lengthDelimited(4, Buffer.concat([tag(1, 0), varint(1)]))) })],
    ['customData 1 MB', () => ({ method: M('Model', 'Predict'), bytes: lengthDelimited(7, Buffer.concat([lengthDelimited(1, Buffer.from('type.googleapis.com/x')), lengthDelimited(2, Buffer.from(mb))])) })],
  ];
  const [name, make] = m.pick(cases);
  m.steps.push(name);
  return make();
}

/** Malformed bytes: random, truncated or flipped valid messages, wrong wire types, overlong varints, bad lengths. */
function malformed(m: Mutator): { method: string; bytes: Buffer } {
  const method = m.pick(ALL_METHODS);
  const valid = m.pick([
    GOOD,
    encode('SeldonMessage', { data: { names: ['user_id'], tensor: { shape: [2, 1], values: [3, 7] } }, meta: { puid: 'p', tags: { k: { numberValue: 2 } } } }),
    encode('Feedback', { request: { strData: '1' }, truth: { strData: '["18"]' }, reward: 1 }),
    encode('SeldonModelMetadataRequest', { name: 'demo-movies' }),
  ]);
  const op = m.pick(['random', 'truncate', 'flip', 'wireType', 'overlongVarint', 'hugeLength', 'fieldZero', 'group', 'unknownField', 'deepUnknown'] as const);
  m.steps.push(op);
  switch (op) {
    case 'random':
      return { method, bytes: Buffer.from(Array.from({ length: m.int(257) }, () => m.int(256))) };
    case 'truncate':
      return { method, bytes: valid.subarray(0, m.int(valid.length)) };
    case 'flip':
      return { method, bytes: m.mutateBytes(valid) };
    case 'wireType': {
      // The first tag keeps its field number but gets another (or an invalid) wire type.
      const out = Buffer.from(valid);
      out[0] = (out[0] & ~7) | m.pick([0, 1, 3, 4, 5, 6, 7]);
      return { method, bytes: out };
    }
    case 'overlongVarint':
      // A tag or length varint of 11+ bytes (more than 64 bits).
      return { method, bytes: Buffer.concat([Buffer.alloc(m.pick([11, 20, 100]), 0xff), Buffer.from([0x01]), valid]) };
    case 'hugeLength':
      return { method, bytes: Buffer.concat([tag(m.pick([3, 5, 6, 2, 1]), 2), varint(m.pick([2 ** 31, 2 ** 32 + 5, 2 ** 53])), Buffer.from('abc')]) };
    case 'fieldZero':
      return { method, bytes: Buffer.concat([Buffer.from([0x02, 0x01, 0x00]), valid]) };
    case 'group':
      // Start-group without an end (field 5 strData as a group), or an end-group out of nowhere.
      return { method, bytes: m.chance(0.5) ? Buffer.concat([tag(5, 3), valid]) : Buffer.concat([valid, tag(9, 4)]) };
    case 'unknownField':
      return { method, bytes: Buffer.concat([valid, lengthDelimited(m.pick([15, 100, 536870911]), Buffer.alloc(m.pick([0, 10, 100_000]), 0x41))]) };
    default: {
      // 5,000 nested unknown length-delimited fields.
      let body: Buffer = Buffer.alloc(0);
      for (let i = 0; i < 5000; i++) body = lengthDelimited(99, body);
      return { method, bytes: Buffer.concat([valid, body]) };
    }
  }
}

function buildCase(seed: number, index: number): Case {
  const m = mutatorFor(seed ^ 0x67727063 /* "grpc": apart from the REST stream */, index);
  const roll = m.random();
  const kind = roll < 0.5 ? 'semantic' : roll < 0.7 ? 'special' : 'malformed';
  const { method, bytes } = kind === 'semantic' ? semantic(m) : kind === 'special' ? special(m) : malformed(m);
  return { index, kind, method, bytes, label: m.label() };
}

let ts: TestServer;
let client: grpc.Client;

beforeAll(async () => {
  ts = await startTestServer(process.env.RECSERVE_FUZZ_LOG ? { LOG_LEVEL: process.env.RECSERVE_FUZZ_LOG } : {});
  client = new grpc.Client(`127.0.0.1:${ts.server.ports.grpc}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
  // The corpus' feedback names SEED_PUID: make it a prediction the server remembers.
  const a = await rawUnary(client, M('Model', 'Predict'), encode('SeldonMessage', { meta: { puid: SEED_PUID }, strData: '1' }));
  expect(a.code).toBe(0);
});

afterAll(async () => {
  client?.close();
  await ts?.stop();
});

describe('gRPC fuzzing on one channel', () => {
  it(`junk and malformed messages (seed ${SEED}): proper statuses, short details, and the next good call on the same channel succeeds`, { timeout: 600_000 }, async () => {
    const indices = ONLY !== undefined ? [ONLY] : Array.from({ length: COUNT }, (_, i) => i);
    const sent: Record<string, number> = {};
    const codes: Record<string, number> = {};
    const failures: { c: Case; problems: string[]; a: GrpcAnswer }[] = [];
    let goodAfterBad = 0;
    let bytes = 0;
    const started = Date.now();
    for (const i of indices) {
      const c = buildCase(SEED, i);
      if (TRACE) appendFileSync(TRACE, `grpc ${i} ${c.kind} ${c.method} ${c.label.slice(0, 200)}\n`);
      bytes += c.bytes.length;
      const a = await rawUnary(client, c.method, c.bytes);
      sent[`${c.kind} ${c.method}`] = (sent[`${c.kind} ${c.method}`] ?? 0) + 1;
      codes[grpc.status[a.code] ?? String(a.code)] = (codes[grpc.status[a.code] ?? String(a.code)] ?? 0) + 1;
      const problems = grpcProblems(a);
      const after = await goodCall(client);
      goodAfterBad++;
      if (after) problems.push(`the next good call on the channel failed: ${after}`);
      if (problems.length) failures.push({ c, problems, a });
    }
    const seconds = (Date.now() - started) / 1000;
    const classes = new Map<string, { count: number; example: (typeof failures)[number] }>();
    for (const f of failures) {
      for (const p of f.problems) {
        const k = `${f.c.kind} ${f.c.method} | ${p.replace(/\d+/g, 'N').slice(0, 140)}`;
        const e = classes.get(k);
        if (e) e.count++;
        else classes.set(k, { count: 1, example: f });
      }
    }
    console.log(
      [
        `gRPC fuzz, seed ${SEED}, scale ${SCALE}: ${indices.length} hostile calls (${(bytes / 1e6).toFixed(1)} MB) + ${goodAfterBad} good calls on one channel in ${seconds.toFixed(1)} s`,
        `sent: ${JSON.stringify(sent)}`,
        `codes: ${JSON.stringify(codes)}`,
        `failures: ${failures.length} calls in ${classes.size} classes`,
        ...[...classes].map(([k, { count, example: f }]) => `${count} × ${k}\n    e.g. seed ${SEED} index ${f.c.index} [${f.c.label}] bytes ${clipPayload(f.c.bytes.toString('base64'), 120)} (${f.c.bytes.length} B)\n    answer ${grpc.status[f.a.code]} in ${f.a.ms} ms: ${clipText(f.a.details, 160)}`),
      ].join('\n'),
    );
    expect([...classes].map(([k, v]) => `${v.count} × ${k}`)).toEqual([]);
    expect(indices.length).toBeGreaterThanOrEqual(ONLY !== undefined ? 1 : Math.min(500, COUNT));
  });

  it('the server is alive after the fuzzing (a good call on the same channel, and REST ping)', async () => {
    expect(await goodCall(client)).toBeNull();
    const ping = await fetch(`${ts.url}/health/ping`);
    expect(await ping.text()).toBe('pong');
  });
});
