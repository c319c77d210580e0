// The binary tensor data extension as a pure module: bodies split by Inference-Header-Content-Length,
// inputs given their bytes by binary_data_size, elements decoded and encoded little-endian, and every
// header or size that lies refused as bad data (a 400), never a crash.
import { describe, expect, it } from 'vitest';
import { refusal } from './refusal.js';
import { attachBinaryInputs, binaryResponse, decodeBytes, decodeFp32, decodeInt64, encodeTensor, splitBody } from '../../../src/protocols/v2/binary.js';
import type { InferRequest, OutputTensor } from '../../../src/protocols/v2/tensors.js';

const bytesOf = (...ids: string[]) => encodeTensor({ name: 'x', datatype: 'BYTES', shape: [ids.length], data: ids });

describe('splitBody', () => {
  const body = Buffer.from('{"inputs":[]}ABCD');
  it('is all JSON without the header, and split at the header length with it', () => {
    expect(splitBody(body, undefined)).toEqual({ json: body, binary: null });
    const { json, binary } = splitBody(body, '13');
    expect(json.toString()).toBe('{"inputs":[]}');
    expect(binary!.toString()).toBe('ABCD');
    expect(splitBody(body, String(body.length)).binary!.length).toBe(0);
  });

  it('refuses a header that is not a length, lies past the body, or asks for the raw form', () => {
    expect(refusal(() => splitBody(body, 'ten'))).toMatch(/whole number of bytes/);
    expect(refusal(() => splitBody(body, '-1'))).toMatch(/whole number of bytes/);
    expect(refusal(() => splitBody(body, '1e3'))).toMatch(/whole number of bytes/);
    expect(refusal(() => splitBody(body, String(body.length + 1)))).toMatch(/only 17 bytes/);
    expect(refusal(() => splitBody(body, '0'))).toMatch(/raw binary body/);
  });
});

describe('attachBinaryInputs', () => {
  const request = (...sizes: (number | undefined)[]): InferRequest => ({
    inputs: sizes.map((s, i) => ({ name: `in${i}`, datatype: 'BYTES', shape: [1], ...(s === undefined ? { data: ['a'] } : { parameters: { binary_data_size: s } }) })),
  });

  it('slices the binary part in input order, skipping inputs that carry JSON data', () => {
    const binary = Buffer.concat([bytesOf('u1'), bytesOf('item-9')]);
    const req = request(6, undefined, 10);
    attachBinaryInputs(req, binary);
    expect(decodeBytes(req.inputs[0].raw!, 1, 64, 'a')).toEqual(['u1']);
    expect(req.inputs[1].raw).toBeUndefined();
    expect(decodeBytes(req.inputs[2].raw!, 1, 64, 'c')).toEqual(['item-9']);
  });

  it('refuses sizes that do not add up to the binary part', () => {
    expect(refusal(() => attachBinaryInputs(request(6, 20), Buffer.alloc(16)))).toMatch(/binary_data_size 20 but only 10 bytes/);
    expect(refusal(() => attachBinaryInputs(request(6), Buffer.alloc(9)))).toMatch(/3 bytes of binary data after the JSON header/);
    expect(refusal(() => attachBinaryInputs(request(undefined), Buffer.alloc(1)))).toMatch(/1 bytes of binary data/);
    expect(refusal(() => attachBinaryInputs(request(-4), Buffer.alloc(0)))).toMatch(/binary_data_size must be a whole number/);
    expect(refusal(() => attachBinaryInputs(request(1.5), Buffer.alloc(0)))).toMatch(/binary_data_size must be a whole number/);
  });

  it('refuses binary_data_size without the header, and with data beside it', () => {
    expect(refusal(() => attachBinaryInputs(request(6), null))).toMatch(/no Inference-Header-Content-Length/);
    const both: InferRequest = { inputs: [{ name: 'u', datatype: 'BYTES', shape: [1], data: ['a'], parameters: { binary_data_size: 5 } }] };
    expect(refusal(() => attachBinaryInputs(both, Buffer.alloc(5)))).toMatch(/both data and binary_data_size/);
  });
});

describe('element codecs', () => {
  it('BYTES: 4-byte little-endian lengths, then UTF-8; exactly the count the shape says', () => {
    const buf = bytesOf('1', 'émile', '');
    expect([...buf.subarray(0, 5)]).toEqual([1, 0, 0, 0, 0x31]);
    expect(decodeBytes(buf, 3, 64, 'x')).toEqual(['1', 'émile', '']);
    expect(refusal(() => decodeBytes(buf, 2, 64, 'x'))).toMatch(/more than the 2 elements/);
    expect(refusal(() => decodeBytes(buf, 4, 64, 'x'))).toMatch(/holds 3 elements but the shape says 4/);
    expect(refusal(() => decodeBytes(buf.subarray(0, 2), 1, 64, 'x'))).toMatch(/cut short/);
    const lying = Buffer.from([200, 0, 0, 0, 0x31]);
    expect(refusal(() => decodeBytes(lying, 1, 1000, 'x'))).toMatch(/declares 200 bytes but only 1/);
    expect(refusal(() => decodeBytes(bytesOf('a'.repeat(65)), 1, 64, 'x'))).toMatch(/65 bytes; at most 64/);
    expect(refusal(() => decodeBytes(Buffer.from([2, 0, 0, 0, 0xc3, 0x28]), 1, 64, 'x'))).toMatch(/not valid UTF-8/);
  });

  it('INT64 and FP32: little-endian, fixed size, the whole int64 range', () => {
    const int64 = encodeTensor({ name: 'c', datatype: 'INT64', shape: [2], data: [3, -7] });
    expect(int64.length).toBe(16);
    expect(decodeInt64(int64, 2, 'x')).toEqual([3n, -7n]);
    const big = Buffer.alloc(8);
    big.writeBigInt64LE(2n ** 62n + 1n);
    expect(decodeInt64(big, 1, 'x').map(String)).toEqual(['4611686018427387905']);
    expect(refusal(() => decodeInt64(int64, 3, 'x'))).toMatch(/3 INT64 elements need 24 bytes, got 16/);
    const fp32 = encodeTensor({ name: 's', datatype: 'FP32', shape: [1, 2], data: [0.5, Math.fround(4.21)] });
    expect(decodeFp32(fp32, 2, 'x')).toEqual([0.5, Math.fround(4.21)]);
    expect(refusal(() => decodeFp32(fp32.subarray(1), 2, 'x'))).toMatch(/need 8 bytes, got 7/);
  });
});

describe('binaryResponse', () => {
  const outputs: OutputTensor[] = [
    { name: 'item_id', datatype: 'BYTES', shape: [1, 2], data: ['18', '42'] },
    { name: 'score', datatype: 'FP32', shape: [1, 2], data: [1.5, 0.25] },
  ];
  const response = { model_name: 'm', model_version: '1', id: 'r', outputs };

  it('sends the chosen outputs after the JSON header, sized, without data', () => {
    const out = binaryResponse(response, (t) => t.name === 'score')!;
    const header = JSON.parse(out.body.subarray(0, out.headerLength).toString());
    expect(header.outputs[0]).toEqual(outputs[0]);
    expect(header.outputs[1]).toEqual({ name: 'score', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } });
    expect(decodeFp32(out.body.subarray(out.headerLength), 2, 'score')).toEqual([1.5, 0.25]);
  });

  it('puts several binary outputs back to back in output order, and is null when none is binary', () => {
    const out = binaryResponse(response, () => true)!;
    const header = JSON.parse(out.body.subarray(0, out.headerLength).toString());
    const [a, b] = header.outputs.map((o: { parameters: { binary_data_size: number } }) => o.parameters.binary_data_size);
    const rest = out.body.subarray(out.headerLength);
    expect(rest.length).toBe(a + b);
    expect(decodeBytes(rest.subarray(0, a), 2, 64, 'ids')).toEqual(['18', '42']);
    expect(binaryResponse(response, () => false)).toBeNull();
  });
});
