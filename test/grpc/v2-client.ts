// An Open Inference Protocol V2 gRPC test client built only from proto/inference/grpc_service.proto with
// @grpc/proto-loader (protobufjs), importing nothing from src/, so a bug in the server's generated code or
// its tensor conversion cannot hide behind the same code here. Raw tensors are framed here too.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { call, healthClient, PROTO_ROOT, tryCall } from '../helpers/grpc-client.js';

export const V2_SERVICE = 'inference.GRPCInferenceService';

type Ctor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client;

let ctor: Ctor | null = null;
function serviceCtor(): Ctor {
  if (ctor) return ctor;
  const def = protoLoader.loadSync('inference/grpc_service.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [PROTO_ROOT] });
  ctor = ((grpc.loadPackageDefinition(def).inference as grpc.GrpcObject).GRPCInferenceService as unknown) as Ctor;
  return ctor;
}

export function v2Client(address: string, options: grpc.ChannelOptions = {}): grpc.Client {
  return new (serviceCtor())(address, grpc.credentials.createInsecure(), options);
}

export { call, tryCall };

/** Waits (up to 5 s: the server re-reads readiness every second) until `service`'s health is `status`, and returns it. */
export async function healthOf(address: string, service: string, status: 'SERVING' | 'NOT_SERVING'): Promise<string> {
  const h = healthClient(address);
  try {
    const deadline = Date.now() + 5000;
    let now = (await call(h, 'Check', { service })).status;
    while (now !== status && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      now = (await call(h, 'Check', { service })).status;
    }
    return now;
  } finally {
    h.close();
  }
}

/** An InferParameter for a JS value: booleans, whole numbers (int64) and strings (objects as JSON text). */
export function param(v: unknown): Record<string, unknown> {
  if (typeof v === 'boolean') return { bool_param: v };
  if (typeof v === 'number' && Number.isInteger(v)) return { int64_param: String(v) };
  return { string_param: typeof v === 'string' ? v : JSON.stringify(v) };
}

export function params(o: Record<string, unknown> = {}): Record<string, Record<string, unknown>> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, param(v)]));
}

/** A user_id (or item_id) input with typed contents: BYTES for strings, INT64 for numbers. */
export function idInput(name: string, ids: (string | number)[]): Record<string, unknown> {
  const numeric = ids.every((u) => typeof u === 'number');
  return {
    name,
    datatype: numeric ? 'INT64' : 'BYTES',
    shape: [ids.length],
    contents: numeric ? { int64_contents: ids.map(String) } : { bytes_contents: ids.map((u) => Buffer.from(String(u), 'utf8')) },
  };
}

/** BYTES elements in the raw form: each a 4-byte little-endian length, then its bytes. */
export function rawBytes(values: string[]): Buffer {
  return Buffer.concat(
    values.flatMap((v) => {
      const b = Buffer.from(v, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, b];
    }),
  );
}

export function rawInt64(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigInt64LE(BigInt(v), i * 8));
  return b;
}

export function readRawBytes(b: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < b.length; ) {
    const n = b.readUInt32LE(at);
    out.push(b.subarray(at + 4, at + 4 + n).toString('utf8'));
    at += 4 + n;
  }
  return out;
}

export function readRawFp32(b: Buffer): number[] {
  return Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(i * 4));
}

export function readRawInt64(b: Buffer): number[] {
  return Array.from({ length: b.length / 8 }, (_, i) => Number(b.readBigInt64LE(i * 8)));
}

export interface Row {
  strategy: string;
  items: string[];
  scores: number[];
}

/** The recommendation rows of a ModelInferResponse, typed or raw (count trims each row's padding). */
export function inferRows(res: any): Row[] {
  const raw: Buffer[] = res.raw_output_contents ?? [];
  const at = (name: string) => res.outputs.findIndex((o: { name: string }) => o.name === name);
  const values = (name: string): any[] => {
    const i = at(name);
    const o = res.outputs[i];
    if (raw.length > 0) return o.datatype === 'BYTES' ? readRawBytes(raw[i]) : o.datatype === 'FP32' ? readRawFp32(raw[i]) : readRawInt64(raw[i]);
    const c = o.contents ?? {};
    if (o.datatype === 'BYTES') return (c.bytes_contents ?? []).map((b: Buffer) => b.toString('utf8'));
    if (o.datatype === 'FP32') return c.fp32_contents ?? [];
    return (c.int64_contents ?? []).map(Number);
  };
  const width = Number(res.outputs[at('item_id')].shape[1]);
  const ids = values('item_id');
  const scores = values('score');
  const strategies = values('strategy');
  return values('count').map((count: number, r: number) => ({
    strategy: strategies[r],
    items: ids.slice(r * width, r * width + count),
    scores: scores.slice(r * width, r * width + count),
  }));
}
