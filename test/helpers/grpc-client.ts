// A Seldon v1 gRPC test client built only from proto/prediction.proto with @grpc/proto-loader. It has
// its own JSON ⇄ google.protobuf.Value conversion and imports nothing from src/, so a bug in the
// server's conversion cannot hide behind the same bug here.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

export const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: String, // base64, as in proto3 JSON
  defaults: false,
  oneofs: false,
  includeDirs: [PROTO_ROOT],
};

export const SERVICES = ['Generic', 'Model', 'Router', 'Transformer', 'OutputTransformer', 'Combiner', 'Seldon'] as const;
export type ServiceName = (typeof SERVICES)[number];

let pkgCache: grpc.GrpcObject | null = null;
export function seldonPackage(): grpc.GrpcObject {
  pkgCache ??= grpc.loadPackageDefinition(protoLoader.loadSync('prediction.proto', LOADER_OPTIONS));
  return pkgCache;
}

type Ctor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client;

export type SeldonClients = Record<ServiceName, grpc.Client> & { close(): void };

export function seldonClients(address: string, options: grpc.ChannelOptions = {}): SeldonClients {
  const protos = (seldonPackage().seldon as grpc.GrpcObject).protos as grpc.GrpcObject;
  const out = {} as Record<ServiceName, grpc.Client>;
  for (const s of SERVICES) out[s] = new (protos[s] as unknown as Ctor)(address, grpc.credentials.createInsecure(), options);
  return {
    ...out,
    close() {
      for (const s of SERVICES) out[s].close();
    },
  };
}

export interface CallOptions {
  deadlineMs?: number;
  metadata?: Record<string, string>;
}

/** Calls a unary method; resolves with the response, rejects with the grpc ServiceError. */
export function call<T = any>(client: grpc.Client, method: string, request: unknown, opts: CallOptions = {}): Promise<T> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  const callOpts: grpc.CallOptions = opts.deadlineMs !== undefined ? { deadline: Date.now() + opts.deadlineMs } : {};
  return new Promise((resolve, reject) => {
    (client as any)[method](request, md, callOpts, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Calls and returns either {ok, response} or {ok:false, code, details, reason}. */
export async function tryCall(client: grpc.Client, method: string, request: unknown, opts: CallOptions = {}) {
  try {
    return { ok: true as const, response: await call(client, method, request, opts) };
  } catch (e) {
    const err = e as grpc.ServiceError;
    return { ok: false as const, code: err.code, codeName: grpc.status[err.code], details: err.details, reason: err.metadata?.get('seldon-reason')[0] as string | undefined };
  }
}

/** Sends raw bytes to a method path (identity serializers) and returns the raw answer or the error. */
export function rawCall(address: string, methodPath: string, bytes: Buffer, opts: CallOptions = {}): Promise<{ ok: true; bytes: Buffer } | { ok: false; code: number; details: string }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
  const id = (b: Buffer) => b;
  const callOpts: grpc.CallOptions = opts.deadlineMs !== undefined ? { deadline: Date.now() + opts.deadlineMs } : {};
  return new Promise((resolve) => {
    client.makeUnaryRequest(methodPath, id, id, bytes, new grpc.Metadata(), callOpts, (err, res) => {
      client.close();
      resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, bytes: res! });
    });
  });
}

// ---- health and reflection clients (from their own protos) -----------------------------------

export function healthClient(address: string): grpc.Client {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const health = ((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return new (health.Health as unknown as Ctor)(address, grpc.credentials.createInsecure());
}

export function reflectionClient(address: string, version: 'v1' | 'v1alpha' = 'v1'): grpc.Client {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('@grpc/reflection/package.json'));
  const file = path.join(dir, 'build/proto/grpc/reflection', version, 'reflection.proto');
  const def = protoLoader.loadSync(file, { keepCase: true, longs: String, enums: String, bytes: Array, defaults: false, oneofs: true });
  const ns = ((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).reflection as grpc.GrpcObject)[version] as grpc.GrpcObject;
  return new (ns.ServerReflection as unknown as Ctor)(address, grpc.credentials.createInsecure());
}

/** One request on the reflection stream, one answer back. */
export function reflect(client: grpc.Client, request: Record<string, unknown>): Promise<any> {
  return new Promise((resolve, reject) => {
    const stream = (client as any).ServerReflectionInfo();
    stream.on('data', (d: unknown) => {
      resolve(d);
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ host: '', ...request });
  });
}

// ---- JSON form ⇄ proto-loader objects -------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

// proto-loader takes google/protobuf/struct.proto from protobufjs' bundled copy, whose field names are
// the camelCase ones (numberValue, structValue, …) even with keepCase.
export function toValue(v: Json): Record<string, unknown> {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  switch (typeof v) {
    case 'number':
      return { numberValue: v };
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    default:
      return { structValue: { fields: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toValue(x)])) } };
  }
}

export function fromValue(v: any): Json {
  if (v == null) return null;
  if (v.structValue) return Object.fromEntries(Object.entries(v.structValue.fields ?? {}).map(([k, x]) => [k, fromValue(x)]));
  if (v.listValue) return (v.listValue.values ?? []).map(fromValue);
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return null;
}

const mapValues = (o: Record<string, any> | undefined, f: (x: any) => any) => (o ? Object.fromEntries(Object.entries(o).map(([k, x]) => [k, f(x)])) : undefined);

/** A SeldonMessage in JSON form (as posted to REST) → the object proto-loader serializes. */
export function messageToProto(m: any): any {
  if (m == null) return m;
  const out: any = { ...m };
  if (m.meta) out.meta = { ...m.meta, tags: mapValues(m.meta.tags, toValue) };
  if (m.data) {
    out.data = { ...m.data };
    if (m.data.ndarray !== undefined) out.data.ndarray = { values: (m.data.ndarray as Json[]).map(toValue) };
  }
  if ('jsonData' in m) out.jsonData = toValue(m.jsonData);
  if (m.customData) out.customData = { type_url: m.customData['@type'], value: m.customData.value ?? '' };
  return out;
}

export function feedbackToProto(f: any): any {
  return { ...f, request: messageToProto(f.request), response: messageToProto(f.response), truth: messageToProto(f.truth) };
}

/** A SeldonMessage from proto-loader → JSON form, comparable with a REST body. */
export function messageFromProto(m: any): any {
  if (m == null) return m;
  const out: any = { ...m };
  if (m.meta) out.meta = { ...m.meta, ...(m.meta.tags ? { tags: mapValues(m.meta.tags, fromValue) } : {}) };
  if (m.data) {
    out.data = { ...m.data };
    if (m.data.ndarray) out.data.ndarray = fromValue({ listValue: m.data.ndarray });
  }
  if (m.jsonData) out.jsonData = fromValue(m.jsonData);
  return out;
}

export function metadataFromProto(md: any): any {
  const io = (list: any[] | undefined) => (list ?? []).map((x) => ({ ...x, ...(x.schema ? { schema: fromValue(x.schema) } : {}) }));
  return { ...md, inputs: io(md.inputs), outputs: io(md.outputs) };
}
