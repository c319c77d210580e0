// Seeded fuzzing of the Open Inference Protocol V2 over gRPC on ONE client channel: a few hundred
// mutated ModelInferRequest messages (typed and raw contents; datatypes, shapes, contents fields, raw
// framing, parameters, outputs, names and ids mutated at the message level and encoded from
// proto/inference/grpc_service.proto by protobufjs, then some flipped or cut at the byte level), plus
// the other RPCs with junk. Every answer must be a proper status (never INTERNAL or UNKNOWN) within the
// deadline, with short details and no leaked internals, and a good ModelInfer on the same channel must
// succeed after each one.
//   RECSERVE_FUZZ_SEED, RECSERVE_FUZZ_SCALE, RECSERVE_FUZZ_ONLY as in fuzz-rest.test.ts.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_ROOT } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { clipText } from './answers.js';
import { grpcProblems, rawUnary } from './grpc-junk.js';
import { clipPayload, mutatorFor, type Mutator } from './mutate.js';

const SEED = Number(process.env.RECSERVE_FUZZ_SEED ?? 20_261_201);
const SCALE = Number(process.env.RECSERVE_FUZZ_SCALE ?? 1);
const ONLY = process.env.RECSERVE_FUZZ_ONLY === undefined ? undefined : Number(process.env.RECSERVE_FUZZ_ONLY);
const COUNT = Math.round(400 * SCALE);
const V2 = (rpc: string) => `/inference.GRPCInferenceService/${rpc}`;
const MODEL = 'demo-movies';

let protoRoot: protobuf.Root | null = null;
function v2Type(name: string): protobuf.Type {
  protoRoot ??= protobuf.loadSync(path.join(PROTO_ROOT, 'inference/grpc_service.proto'));
  return protoRoot.lookupType(`inference.${name}`);
}
function encode(name: string, obj: Record<string, unknown>): Buffer {
  const t = v2Type(name);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

const frame = (values: Buffer[]) => Buffer.concat(values.flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), b]));
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const int64Raw = (xs: bigint[]) => Buffer.concat(xs.map((x) => { const b = Buffer.alloc(8); b.writeBigInt64LE(x); return b; }));

type Req = { modelName?: string; modelVersion?: string; id?: string; parameters?: Record<string, unknown>; inputs: Record<string, any>[]; outputs?: { name: string }[]; rawInputContents?: Buffer[] };

/** Valid requests to start from: typed and raw, recommend and pairs. */
function seeds(): Req[] {
  return [
    { modelName: MODEL, id: 'f1', parameters: { k: { int64Param: 3 } }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2], contents: { bytesContents: [utf8('1'), utf8('2')] } }] },
    { modelName: MODEL, inputs: [{ name: 'user_id', datatype: 'INT64', shape: [2], contents: { int64Contents: [5, 6] } }], outputs: [{ name: 'score' }] },
    { modelName: MODEL, parameters: { filter: { stringParam: '{"genre":"Comedy"}' }, exclude_seen: { boolParam: false } }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1] }], rawInputContents: [frame([utf8('7')])] },
    { modelName: MODEL, inputs: [{ name: 'user_id', datatype: 'INT64', shape: [1] }], rawInputContents: [int64Raw([8n])] },
    { modelName: MODEL, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2], contents: { bytesContents: [utf8('1'), utf8('9')] } }, { name: 'item_id', datatype: 'BYTES', shape: [2], contents: { bytesContents: [utf8('5'), utf8('6')] } }] },
    { modelName: MODEL, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2] }, { name: 'item_id', datatype: 'BYTES', shape: [2] }], rawInputContents: [frame([utf8('3'), utf8('4')]), frame([utf8('10'), utf8('11')])] },
  ];
}

const DATATYPES = ['BYTES', 'INT64', 'FP32', 'FP16', 'BF16', 'BOOL', 'UINT64', 'bytes', '', 'STRING', 'X'.repeat(300)];
const DIMS: (number | string)[] = [0, 1, 2, 3, -1, -5, 100_001, 1_000_000_000, '9223372036854775807', '-9223372036854775808', '4294967296'];
const CONTENT_FIELDS = ['boolContents', 'intContents', 'int64Contents', 'uintContents', 'uint64Contents', 'fp32Contents', 'fp64Contents', 'bytesContents'];
const STRINGS = ['', '\u0000', '\ud800', '../../etc/passwd', 'demo-movies\u0000', 'ü'.repeat(100), 'n'.repeat(100_000), MODEL];
const PARAM_NAMES = ['k', 'exclude_seen', 'filter', 'explore', 'binary_data_output', '__proto__', 'constructor', ''];
const PARAM_VALUES: Record<string, unknown>[] = [
  { int64Param: 0 }, { int64Param: -1 }, { int64Param: '9223372036854775807' }, { int64Param: 2000 }, { boolParam: true }, { stringParam: 'ten' },
  { stringParam: '{"genre":["Drama","Action"]}' }, { stringParam: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' }, { stringParam: '{"x":' },
  { doubleParam: 2.5 }, { doubleParam: NaN }, { uint64Param: '18446744073709551615' }, {},
];

/** One message-level mutation of a request. */
function mutate(m: Mutator, req: Req): void {
  const input = req.inputs.length > 0 ? m.pick(req.inputs) : null;
  const op = m.pick(['datatype', 'shape', 'shapeLength', 'contentsField', 'dropContents', 'addContents', 'bytesElement', 'rawJunk', 'rawCount', 'rawTruncate', 'rawLength', 'param', 'output', 'name', 'inputName', 'manyInputs', 'id', 'version', 'manyElements'] as const);
  m.steps.push(op);
  switch (op) {
    case 'datatype':
      if (input) input.datatype = m.pick(DATATYPES);
      break;
    case 'shape':
      if (input) input.shape = input.shape.map((d: unknown) => (m.chance(0.5) ? m.pick(DIMS) : d));
      break;
    case 'shapeLength':
      if (input) input.shape = m.pick([[], [1, 1], [2, 1], [1, 2, 3], Array.from({ length: 1000 }, () => 1)]);
      break;
    case 'contentsField':
      if (input?.contents) input.contents = { [m.pick(CONTENT_FIELDS)]: Object.values(input.contents)[0] };
      break;
    case 'dropContents':
      if (input) delete input.contents;
      break;
    case 'addContents':
      if (input) input.contents = { [m.pick(CONTENT_FIELDS)]: m.pick([[1, 2], [utf8('1')], [true], [1.5], []]) };
      break;
    case 'bytesElement':
      if (input) input.contents = { bytesContents: [m.pick([Buffer.from([0xff]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.alloc(0), Buffer.alloc(5000, 0x61), utf8('\u0000')])] };
      break;
    case 'rawJunk':
      req.rawInputContents = req.inputs.map(() => Buffer.from(Array.from({ length: m.int(40) }, () => m.int(256))));
      break;
    case 'rawCount':
      req.rawInputContents = m.pick([[], [Buffer.alloc(0)], [Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(8)]]);
      break;
    case 'rawTruncate':
      req.rawInputContents = (req.rawInputContents ?? []).map((b) => b.subarray(0, m.int(b.length + 1)));
      break;
    case 'rawLength': {
      // A BYTES element whose 4-byte length lies.
      const len = Buffer.alloc(4);
      len.writeUInt32LE(m.pick([0xffffffff, 1 << 30, 7, 0]));
      req.rawInputContents = req.inputs.map(() => Buffer.concat([len, utf8('12')]));
      break;
    }
    case 'param':
      req.parameters = { ...req.parameters, [m.pick(PARAM_NAMES)]: m.pick(PARAM_VALUES) };
      break;
    case 'output':
      req.outputs = m.pick([[{ name: 'rank' }], [{ name: 'score' }, { name: 'score' }], [{ name: '' }], Array.from({ length: 500 }, () => ({ name: 'item_id' }))]);
      break;
    case 'name':
      req.modelName = m.pick(STRINGS);
      break;
    case 'inputName':
      if (input) input.name = m.pick(['item_id', 'user_id', 'USER_ID', '', '\ud800', 'x'.repeat(10_000)]);
      break;
    case 'manyInputs':
      req.inputs = Array.from({ length: m.pick([0, 3, 2000]) }, () => structuredClone(req.inputs[0] ?? { name: 'user_id', datatype: 'BYTES', shape: [1] }));
      break;
    case 'id':
      req.id = m.pick(STRINGS);
      break;
    case 'version':
      req.modelVersion = m.pick(['demo-1', 'demo-0', '', '1', '\u0000']);
      break;
    case 'manyElements':
      if (input) {
        const n = m.pick([1001, 100_001]);
        input.shape = [n];
        input.contents = input.datatype === 'INT64' ? { int64Contents: Array.from({ length: n }, (_, i) => i) } : { bytesContents: Array.from({ length: n }, (_, i) => utf8(String(i % 300))) };
      }
      break;
  }
}

interface Case {
  index: number;
  method: string;
  bytes: Buffer;
  label: string;
}

function buildCase(seed: number, index: number): Case {
  const m = mutatorFor(seed ^ 0x7632 /* "v2": apart from the other streams */, index);
  if (m.chance(0.1)) {
    // The other RPCs, with junk names and flags.
    const [rpc, type, obj] = m.pick([
      ['ModelMetadata', 'ModelMetadataRequest', { name: m.pick(STRINGS), version: m.pick(['', 'demo-0', '\ud800']) }],
      ['ModelReady', 'ModelReadyRequest', { name: m.pick(STRINGS), version: m.pick(['', 'demo-1', 'x']) }],
      ['RepositoryIndex', 'RepositoryIndexRequest', { repositoryName: m.pick(STRINGS), ready: m.chance(0.5) }],
      ['RepositoryModelLoad', 'RepositoryModelLoadRequest', { modelName: m.pick(STRINGS), parameters: { config: { stringParam: '{}' } } }],
      ['RepositoryModelUnload', 'RepositoryModelUnloadRequest', { modelName: m.pick(STRINGS.filter((s) => s !== MODEL)) }],
    ] as const);
    m.steps.push(rpc);
    return { index, method: V2(rpc), bytes: encode(type, obj), label: m.label() };
  }
  const req = structuredClone(m.pick(seeds()));
  m.steps.push(req.rawInputContents ? 'raw seed' : 'typed seed');
  for (let n = 1 + m.int(3); n > 0; n--) mutate(m, req);
  let bytes = encode('ModelInferRequest', req);
  if (m.chance(0.25)) bytes = m.mutateBytes(bytes);
  return { index, method: V2('ModelInfer'), bytes, label: m.label() };
}

const GOOD = encode('ModelInferRequest', seeds()[0]);

let ts: TestServer;
let client: grpc.Client;

beforeAll(async () => {
  ts = await startTestServer(process.env.RECSERVE_FUZZ_LOG ? { LOG_LEVEL: process.env.RECSERVE_FUZZ_LOG } : {});
  client = new grpc.Client(`127.0.0.1:${ts.server.ports.grpc}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
});
afterAll(async () => {
  client?.close();
  await ts?.stop();
});

describe('V2 gRPC fuzzing on one channel', () => {
  it(`mutated ModelInfer messages, typed and raw (seed ${SEED}): never INTERNAL/UNKNOWN, and the server keeps serving`, { timeout: 600_000 }, async () => {
    // The seeds are valid: each is answered OK before it is mutated.
    for (const s of seeds()) expect((await rawUnary(client, V2('ModelInfer'), encode('ModelInferRequest', s))).code, JSON.stringify(s.inputs)).toBe(0);
    const indices = ONLY !== undefined ? [ONLY] : Array.from({ length: COUNT }, (_, i) => i);
    const codes: Record<string, number> = {};
    const failures: { c: Case; problems: string[]; details: string; code: number }[] = [];
    for (const i of indices) {
      const c = buildCase(SEED, i);
      const a = await rawUnary(client, c.method, c.bytes);
      const name = grpc.status[a.code] ?? String(a.code);
      codes[name] = (codes[name] ?? 0) + 1;
      const problems = grpcProblems(a);
      const after = await rawUnary(client, V2('ModelInfer'), GOOD);
      if (after.code !== 0) problems.push(`the next good ModelInfer on the channel failed: ${grpc.status[after.code]} ${clipText(after.details, 120)}`);
      if (problems.length) failures.push({ c, problems, details: a.details, code: a.code });
    }
    console.log(`V2 gRPC fuzz, seed ${SEED}, scale ${SCALE}: ${indices.length} hostile calls on one channel; codes ${JSON.stringify(codes)}; ${failures.length} failures`);
    expect(
      failures.map((f) => `index ${f.c.index} ${f.c.method} [${f.c.label}] ${clipPayload(f.c.bytes.toString('base64'), 100)}: ${f.problems.join('; ')} (${grpc.status[f.code]} ${clipText(f.details, 160)})`),
    ).toEqual([]);
    // The mutations reach the codec's checks, not only the wire decoder.
    expect(codes.INVALID_ARGUMENT ?? 0).toBeGreaterThan(indices.length / 4);
  });
});
