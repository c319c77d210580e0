// The V2 codec on its own: JSON bodies read into neutral tensors, tensors decoded into the core's
// recommend / pair-scoring calls with v1's bounds (k, max_k, max_users, filters, limits) checked before
// any allocation, and answers encoded as rectangular output tensors.
import { describe, expect, it } from 'vitest';
import { refusal } from './refusal.js';
import { DEFAULT_PARAMS } from '../../../src/config/index.js';
import { LIMIT_DEFAULTS, type Limits } from '../../../src/config/limits.js';
import type { PredictOutput } from '../../../src/core/types.js';
import { encodeTensor } from '../../../src/protocols/v2/binary.js';
import { decodeInfer, encodeInfer, readInferRequest } from '../../../src/protocols/v2/codec.js';
import type { InferRequest, InputTensor } from '../../../src/protocols/v2/tensors.js';

const params = DEFAULT_PARAMS;
const limits: Limits = LIMIT_DEFAULTS;

const users = (data: unknown, datatype = 'BYTES', shape = [Array.isArray(data) ? data.length : 1]): InputTensor => ({ name: 'user_id', datatype, shape, data });
const decode = (req: InferRequest, p = params, l = limits) => decodeInfer(req, p, l);

describe('readInferRequest', () => {
  it('reads id, parameters, inputs and outputs', () => {
    const req = readInferRequest(
      { id: 'r1', parameters: { k: 3 }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1'], parameters: { content_type: 'str' } }], outputs: [{ name: 'item_id' }] },
      limits,
    );
    expect(req).toEqual({ id: 'r1', parameters: { k: 3 }, inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: ['1'], parameters: { content_type: 'str' } }], outputs: [{ name: 'item_id' }] });
  });

  it('refuses what is not an inference request, naming the field', () => {
    expect(refusal(() => readInferRequest([], limits))).toMatch(/must be a JSON object, got a list/);
    expect(refusal(() => readInferRequest({ input: [] }, limits))).toMatch(/unknown field "input"/);
    expect(refusal(() => readInferRequest({ inputs: [] }, limits))).toMatch(/inputs must be a non-empty list/);
    expect(refusal(() => readInferRequest({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: 1, data: ['1'] }] }, limits))).toMatch(/inputs\/0\/shape must be a list/);
    expect(refusal(() => readInferRequest({ inputs: [{ name: 7, datatype: 'BYTES', shape: [1] }] }, limits))).toMatch(/inputs\/0\/name must be a string/);
    expect(refusal(() => readInferRequest({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], values: [] }] }, limits))).toMatch(/unknown field "values"/);
    expect(refusal(() => readInferRequest({ id: 5, inputs: [users(['1'])] }, limits))).toMatch(/id must be a string/);
    expect(refusal(() => readInferRequest({ id: 'x'.repeat(300), inputs: [users(['1'])] }, limits))).toMatch(/id is 300 characters; at most 256 \(limit RECSERVE_MAX_ID_LENGTH=256\)/);
    expect(refusal(() => readInferRequest({ parameters: [], inputs: [users(['1'])] }, limits))).toMatch(/parameters must be a JSON object/);
    expect(refusal(() => readInferRequest({ inputs: [users(['1'])], outputs: { name: 'score' } }, limits))).toMatch(/outputs must be a list/);
  });
});

describe('decodeInfer: recommend', () => {
  it('takes BYTES or INT64 ids, flat or nested, [n] or [n, 1], with v1 defaults', () => {
    const flat = decode({ inputs: [users(['1', 'new-user'])] });
    expect(flat.input).toEqual({ op: 'recommend', request: { users: ['1', 'new-user'], k: params.k, excludeSeen: params.exclude_seen, filter: null } });
    expect(flat.outputs.map((o) => o.name)).toEqual(['item_id', 'score', 'strategy', 'count']);
    const nested = decode({ inputs: [users([['1'], ['2']], 'BYTES', [2, 1])] });
    expect(nested.input).toMatchObject({ request: { users: ['1', '2'] } });
    const numeric = decode({ inputs: [users([1, -2], 'INT64')] });
    expect(numeric.input).toMatchObject({ request: { users: ['1', '-2'] } });
    const grpc = decode({ inputs: [users([9007199254740993n], 'INT64')] });
    expect(grpc.input).toMatchObject({ request: { users: ['9007199254740993'] } });
  });

  it('reads k, exclude_seen, filter (object or JSON text) and explore from the parameters', () => {
    const req = decode({ parameters: { k: 4, exclude_seen: false, filter: { genre: ['Comedy', 'Drama'] }, explore: 2, content_type: 'str' }, inputs: [users(['1'])] });
    expect(req.input).toEqual({ op: 'recommend', request: { users: ['1'], k: 4, excludeSeen: false, filter: { genre: ['Comedy', 'Drama'] }, explore: 2 } });
    const text = decode({ parameters: { k: '4', filter: '{"genre":"Comedy"}' }, inputs: [users(['1'])] });
    expect(text.input).toMatchObject({ request: { k: 4, filter: { genre: 'Comedy' } } });
  });

  it('bounds k, explore, filters and the user count as v1 does', () => {
    expect(refusal(() => decode({ parameters: { k: 0 }, inputs: [users(['1'])] }))).toMatch(/k must be ≥ 1/);
    expect(refusal(() => decode({ parameters: { k: 1001 }, inputs: [users(['1'])] }))).toMatch(/larger than max_k=1000/);
    expect(refusal(() => decode({ parameters: { k: 2.5 }, inputs: [users(['1'])] }))).toMatch(/k must be a whole number/);
    expect(refusal(() => decode({ parameters: { exclude_seen: 'yes' }, inputs: [users(['1'])] }))).toMatch(/exclude_seen must be true or false/);
    expect(refusal(() => decode({ parameters: { k: 3, explore: 4 }, inputs: [users(['1'])] }))).toMatch(/explore=4 is larger than k=3/);
    expect(refusal(() => decode({ parameters: { filter: '{"genre":' }, inputs: [users(['1'])] }))).toMatch(/parameters.filter is not valid JSON/);
    expect(refusal(() => decode({ parameters: { filter: ['Comedy'] }, inputs: [users(['1'])] }))).toMatch(/filter must be an object/);
    const manyFields = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, 'x']));
    expect(refusal(() => decode({ parameters: { filter: manyFields }, inputs: [users(['1'])] }))).toMatch(/RECSERVE_MAX_FILTER_FIELDS=16/);
    const manyValues = { a: Array.from({ length: 600 }, String), b: Array.from({ length: 600 }, String) };
    expect(refusal(() => decode({ parameters: { filter: manyValues }, inputs: [users(['1'])] }))).toMatch(/1200 accepted values; at most 1000/);
    expect(refusal(() => decode({ inputs: [users(Array.from({ length: 3 }, String))] }, { ...params, max_users: 2 }))).toMatch(/3 users; at most 2 per request \(graph parameter max_users\)/);
  });

  it('refuses oversized shapes before looking at the data', () => {
    // The data is not even a list: the shape is refused first, so nothing is allocated for it.
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [400_000_000], data: null }] }))).toMatch(/a dimension above 100000 \(limit RECSERVE_MAX_TENSOR_VALUES/);
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2000], data: null }] }))).toMatch(/2000 users; at most 1000/);
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [3, 2], data: null }] }))).toMatch(/ids are shape \[n\] \(or \[n, 1\]\)/);
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [-1], data: [] }] }))).toMatch(/whole numbers ≥ 0/);
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [0], data: [] }] }))).toMatch(/is empty/);
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [], data: [] }] }))).toMatch(/ids are shape/);
  });

  it('refuses data that does not match the shape or the datatype', () => {
    expect(refusal(() => decode({ inputs: [users(['1', '2'], 'BYTES', [3])] }))).toMatch(/holds 2 values but its shape says 3/);
    expect(refusal(() => decode({ inputs: [users(['1', '2', '3'], 'BYTES', [2])] }))).toMatch(/more than the 2 values/);
    expect(refusal(() => decode({ inputs: [users('1', 'BYTES', [1])] }))).toMatch(/data must be a list/);
    expect(refusal(() => decode({ inputs: [users([1], 'BYTES')] }))).toMatch(/element 0 is number 1; a BYTES element is a string/);
    expect(refusal(() => decode({ inputs: [users(['1'], 'INT64')] }))).toMatch(/element 0 is the string "1"; an INT64 element is a whole number/);
    expect(refusal(() => decode({ inputs: [users([1.5], 'INT64')] }))).toMatch(/an INT64 element is a whole number/);
    expect(refusal(() => decode({ inputs: [users([2 ** 60], 'INT64')] }))).toMatch(/beyond 2\^53.*send such ids as BYTES/);
    expect(refusal(() => decode({ inputs: [users([''])] }))).toMatch(/is empty; an id is a non-empty string/);
    expect(refusal(() => decode({ inputs: [users(['x'.repeat(257)])] }))).toMatch(/at most 256/);
    expect(refusal(() => decode({ inputs: [users(['1'], 'FP32')] }))).toMatch(/datatype "FP32"; ids are BYTES or INT64/);
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1] }] }))).toMatch(/has no data/);
  });

  it('refuses missing, unknown and repeated inputs, and unknown or repeated outputs', () => {
    expect(refusal(() => decode({ inputs: [{ ...users(['1']), name: 'users' }] }))).toMatch(/unknown input "users"; this model takes user_id/);
    expect(refusal(() => decode({ inputs: [{ ...users(['5']), name: 'item_id' }] }))).toMatch(/needs a user_id input/);
    expect(refusal(() => decode({ inputs: [users(['1']), users(['2'])] }))).toMatch(/"user_id" is given more than once/);
    expect(refusal(() => decode({ inputs: [users(['1'])], outputs: [{ name: 'scores' }] }))).toMatch(/unknown output "scores"; recommend answers item_id, score, strategy, count/);
    expect(refusal(() => decode({ inputs: [users(['1'])], outputs: [{ name: 'score' }, { name: 'score' }] }))).toMatch(/asked more than once/);
  });

  it('decodes binary ids (BYTES and the full INT64 range)', () => {
    const bytes = encodeTensor({ name: 'u', datatype: 'BYTES', shape: [2], data: ['1', 'visitor'] });
    expect(decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [2], raw: bytes }] }).input).toMatchObject({ request: { users: ['1', 'visitor'] } });
    const int64 = Buffer.alloc(8);
    int64.writeBigInt64LE(2n ** 62n);
    expect(decode({ inputs: [{ name: 'user_id', datatype: 'INT64', shape: [1], raw: int64 }] }).input).toMatchObject({ request: { users: [String(2n ** 62n)] } });
    const empty = encodeTensor({ name: 'u', datatype: 'BYTES', shape: [1], data: [''] });
    expect(refusal(() => decode({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], raw: empty }] }))).toMatch(/element 0 is empty/);
  });
});

describe('decodeInfer: what a gRPC servicer hands over', () => {
  it('takes bytes_contents as Uint8Array ids and int64 parameters as bigints', () => {
    const ids = [Buffer.from('1'), new TextEncoder().encode('visitor-é')];
    const d = decode({ parameters: { k: 4n, explore: 1n, exclude_seen: false, filter: '{"genre":"Drama"}' }, inputs: [users(ids)] });
    expect(d.input).toEqual({ op: 'recommend', request: { users: ['1', 'visitor-é'], k: 4, excludeSeen: false, filter: { genre: 'Drama' }, explore: 1 } });
    expect(refusal(() => decode({ inputs: [users([Uint8Array.from([0xc3, 0x28])])] }))).toMatch(/element 0 is not valid UTF-8/);
    expect(refusal(() => decode({ inputs: [users([new Uint8Array(2000)])] }))).toMatch(/2000 bytes; an id is at most 256 characters/);
    expect(refusal(() => decode({ parameters: { k: 2n ** 60n }, inputs: [users(['1'])] }))).toMatch(/k must be a whole number/);
  });
});

describe('decodeInfer: pairs', () => {
  const items = (data: unknown[], datatype = 'BYTES'): InputTensor => ({ name: 'item_id', datatype, shape: [data.length], data });
  it('pairs user_id and item_id row by row', () => {
    const d = decode({ inputs: [items(['5', '17']), users([1, 2], 'INT64')] }); // in any order
    expect(d.input).toEqual({ op: 'pairs', pairs: [['1', '5'], ['2', '17']] });
    expect(d.outputs).toEqual([{ name: 'score' }]);
  });

  it('refuses rows that do not line up, too many pairs, and recommend outputs', () => {
    expect(refusal(() => decode({ inputs: [users(['1', '2']), items(['5'])] }))).toMatch(/item_id has 1 rows but user_id has 2/);
    const n = limits.maxPairs + 1;
    expect(refusal(() => decode({ inputs: [users(Array.from({ length: n }, String)), items(Array.from({ length: n }, String))] }))).toMatch(/1001 pairs in one request; at most 1000 \(limit RECSERVE_MAX_PAIRS/);
    expect(refusal(() => decode({ inputs: [users(['1']), items(['5'])], outputs: [{ name: 'item_id' }] }))).toMatch(/pair scoring answers score/);
  });
});

describe('encodeInfer', () => {
  const output: PredictOutput = {
    op: 'recommend',
    recommendations: [
      { userId: '1', strategy: 'personalized', items: [{ itemId: '18', score: 4.21, fields: null }, { itemId: '7', score: 3.5, fields: null }] },
      { userId: 'new', strategy: 'cold_start', items: [{ itemId: '3', score: 0.9, fields: null }] },
      { userId: '2', strategy: 'personalized', items: [] },
    ],
  };

  it('answers rectangular tensors as wide as the longest list, padded with "" and 0, with the real lengths in count', () => {
    const all = encodeInfer(output, [{ name: 'item_id' }, { name: 'score' }, { name: 'strategy' }, { name: 'count' }]);
    expect(all).toEqual([
      { name: 'item_id', datatype: 'BYTES', shape: [3, 2], data: ['18', '7', '3', '', '', ''] },
      { name: 'score', datatype: 'FP32', shape: [3, 2], data: [Math.fround(4.21), 3.5, Math.fround(0.9), 0, 0, 0] },
      { name: 'strategy', datatype: 'BYTES', shape: [3], data: ['personalized', 'cold_start', 'personalized'] },
      { name: 'count', datatype: 'INT64', shape: [3], data: [2, 1, 0] },
    ]);
  });

  it('answers only the outputs asked, in the order asked; pair scores are [n]', () => {
    expect(encodeInfer(output, [{ name: 'count' }, { name: 'item_id', parameters: { binary_data: true } }]).map((t) => t.name)).toEqual(['count', 'item_id']);
    expect(encodeInfer({ op: 'pairs', scores: [1.25, 2] }, [{ name: 'score' }])).toEqual([{ name: 'score', datatype: 'FP32', shape: [2], data: [1.25, 2] }]);
  });
});
