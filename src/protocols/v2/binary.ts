// The binary tensor data extension (Triton's `binary_tensor_data`, which KServe's clients send too):
// a body is a JSON header of `Inference-Header-Content-Length` bytes followed by the tensors' bytes,
// back to back in the order of the JSON inputs (each sized by its `parameters.binary_data_size`).
// Elements are little-endian, row-major; a BYTES element is a 4-byte little-endian length, then
// its bytes. Pure functions over Buffers: no HTTP here, so the gRPC raw contents reuse them.
import { badData, quote } from '../../errors.js';
import { elementCount, type InferRequest, type OutputTensor, type Parameters } from './tensors.js';

export const HEADER_LENGTH = 'inference-header-content-length';

/** The JSON header and the binary part of a body; the whole body is JSON when the header is absent. */
export function splitBody(body: Buffer, headerLength: string | undefined): { json: Buffer; binary: Buffer | null } {
  if (headerLength === undefined) return { json: body, binary: null };
  const text = headerLength.trim();
  if (!/^\d{1,15}$/.test(text)) throw badData(`Inference-Header-Content-Length must be a whole number of bytes, got ${quote(headerLength)}`);
  const n = Number(text);
  if (n > body.length) throw badData(`Inference-Header-Content-Length is ${n} but the body has only ${body.length} bytes`);
  // Triton's raw form (header 0: the body is one input's bytes) needs a model with a single input.
  if (n === 0) throw badData('Inference-Header-Content-Length 0 (a raw binary body) is not supported: this model has two inputs; send the JSON header first');
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}

/**
 * Gives each input that declares `parameters.binary_data_size` its bytes, in order. Sizes that do not
 * add up to the binary part exactly (too short, or bytes left over) are refused.
 */
export function attachBinaryInputs(req: InferRequest, binary: Buffer | null): void {
  let offset = 0;
  for (const [i, input] of req.inputs.entries()) {
    const size = binaryDataSize(input.parameters, `inputs/${i}`);
    if (size === null) continue;
    if (binary === null) throw badData(`inputs/${i} (${quote(input.name)}) has binary_data_size but the request has no Inference-Header-Content-Length header`);
    if (input.data !== undefined) throw badData(`inputs/${i} (${quote(input.name)}) has both data and binary_data_size; send one`);
    if (size > binary.length - offset) {
      throw badData(`inputs/${i} (${quote(input.name)}) declares binary_data_size ${size} but only ${binary.length - offset} bytes of binary data are left`);
    }
    input.raw = binary.subarray(offset, offset + size);
    offset += size;
  }
  if (binary !== null && offset !== binary.length) {
    throw badData(`the body has ${binary.length - offset} bytes of binary data after the JSON header that no input's binary_data_size accounts for`);
  }
}

function binaryDataSize(parameters: Parameters | undefined, where: string): number | null {
  const v = parameters?.binary_data_size;
  if (v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw badData(`${where}/parameters/binary_data_size must be a whole number of bytes, got ${quote(v)}`);
  return v;
}

/**
 * BYTES elements: exactly `count` of them, each at most `maxBytes` long (checked before it is
 * decoded), valid UTF-8 (ids are text), and no bytes after the last.
 */
export function decodeBytes(buf: Buffer, count: number, maxBytes: number, where: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < buf.length) {
    if (out.length === count) throw badData(`${where}: the binary data holds more than the ${count} elements its shape says`);
    if (buf.length - at < 4) throw badData(`${where}: element ${out.length} is cut short (a BYTES element starts with a 4-byte length)`);
    const len = buf.readUInt32LE(at);
    at += 4;
    if (len > buf.length - at) throw badData(`${where}: element ${out.length} declares ${len} bytes but only ${buf.length - at} are left`);
    if (len > maxBytes) throw badData(`${where}: element ${out.length} is ${len} bytes; at most ${maxBytes}`);
    out.push(utf8Text(buf.subarray(at, at + len), `${where}: element ${out.length}`));
    at += len;
  }
  if (out.length !== count) throw badData(`${where}: the binary data holds ${out.length} elements but the shape says ${count}`);
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** An element's bytes as text; ids are UTF-8, so anything else is refused. */
export function utf8Text(bytes: Uint8Array, at: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw badData(`${at} is not valid UTF-8`);
  }
}

function checkFixedSize(buf: Buffer, count: number, size: number, datatype: string, where: string): void {
  if (buf.length !== count * size) throw badData(`${where}: ${count} ${datatype} elements need ${count * size} bytes, got ${buf.length}`);
}

export function decodeInt64(buf: Buffer, count: number, where: string): bigint[] {
  checkFixedSize(buf, count, 8, 'INT64', where);
  const out: bigint[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = buf.readBigInt64LE(i * 8);
  return out;
}

export function decodeFp32(buf: Buffer, count: number, where: string): number[] {
  checkFixedSize(buf, count, 4, 'FP32', where);
  const out: number[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

/** An output tensor's bytes in the extension's element encoding. */
export function encodeTensor(t: OutputTensor): Buffer {
  const n = elementCount(t.shape);
  if (t.data.length !== n) throw new Error(`output ${t.name}: ${t.data.length} elements for shape [${t.shape.join(',')}]`);
  switch (t.datatype) {
    case 'BYTES': {
      const parts = (t.data as string[]).map((s) => Buffer.from(s, 'utf8'));
      const buf = Buffer.allocUnsafe(parts.reduce((sum, p) => sum + 4 + p.length, 0));
      let at = 0;
      for (const p of parts) {
        buf.writeUInt32LE(p.length, at);
        p.copy(buf, at + 4);
        at += 4 + p.length;
      }
      return buf;
    }
    case 'FP32': {
      const buf = Buffer.allocUnsafe(n * 4);
      (t.data as number[]).forEach((v, i) => buf.writeFloatLE(v, i * 4));
      return buf;
    }
    case 'INT64': {
      const buf = Buffer.allocUnsafe(n * 8);
      (t.data as number[]).forEach((v, i) => buf.writeBigInt64LE(BigInt(v), i * 8));
      return buf;
    }
  }
}

/**
 * A response with some outputs in binary: those leave `data` out, carry `parameters.binary_data_size`,
 * and follow the JSON header in their order. `binary` says which outputs (by index) go binary.
 */
export function binaryResponse<T extends { outputs: OutputTensor[] }>(response: T, binary: (t: OutputTensor, i: number) => boolean): { body: Buffer; headerLength: number } | null {
  const chunks: Buffer[] = [];
  const outputs = response.outputs.map((t, i) => {
    if (!binary(t, i)) return t;
    const bytes = encodeTensor(t);
    chunks.push(bytes);
    const { data: _data, ...rest } = t;
    return { ...rest, parameters: { ...t.parameters, binary_data_size: bytes.length } };
  });
  if (chunks.length === 0) return null;
  const header = Buffer.from(JSON.stringify({ ...response, outputs }), 'utf8');
  return { body: Buffer.concat([header, ...chunks]), headerLength: header.length };
}
