// gRPC load: a grpc-js client keeping `connections` unary Predict calls in flight against
// seldon.protos.Model/Predict. Requests are encoded once from proto/prediction.proto and sent as raw
// bytes, answers are not decoded, so the client spends as little of the shared CPU as grpc-js allows.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { cpuPct, type LoadResult } from './http-load.js';

export const PREDICT_PATH = '/seldon.protos.Model/Predict';

/** Encodes Seldon messages whose payload is jsonData (a google.protobuf.Value), or says why it cannot. */
export function seldonEncoder(protoDir: string): ((jsonData: Record<string, string | number | boolean>) => Buffer) | string {
  const file = path.join(protoDir, 'prediction.proto');
  if (!existsSync(file)) return `no ${file}`;
  const def = protoLoader.loadSync('prediction.proto', { includeDirs: [protoDir], keepCase: true });
  const svc = def['seldon.protos.Model'] as protoLoader.ServiceDefinition | undefined;
  if (!svc?.Predict) return 'proto/prediction.proto has no seldon.protos.Model/Predict';
  const value = (v: string | number | boolean) =>
    typeof v === 'string' ? { stringValue: v } : typeof v === 'number' ? { numberValue: v } : { boolValue: v };
  return (jsonData) =>
    svc.Predict.requestSerialize({
      jsonData: { structValue: { fields: Object.fromEntries(Object.entries(jsonData).map(([k, v]) => [k, value(v)])) } },
    });
}

export async function grpcReachable(address: string, ms = 3000): Promise<boolean> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + ms, (e) => (e ? reject(e) : resolve())));
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

export interface GrpcLoadOptions {
  address: string;
  connections: number;
  seconds: number;
  requests: Buffer[];
  /** Calls in flight are spread over this many channels (HTTP/2 connections). */
  channels?: number;
}

export async function grpcLoad(opts: GrpcLoadOptions): Promise<LoadResult> {
  const nChannels = Math.max(1, Math.min(opts.connections, opts.channels ?? 4));
  const clients = Array.from({ length: nChannels }, (_, i) => new grpc.Client(opts.address, grpc.credentials.createInsecure(), { 'grpc.channel_id': i } as grpc.ChannelOptions));
  await Promise.all(clients.map((c) => new Promise<void>((res, rej) => c.waitForReady(Date.now() + 5000, (e) => (e ? rej(e) : res())))));
  const id = (b: Buffer) => b;
  const latencies = new Float64Array(4_000_000);
  let n = 0;
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const end = started + opts.seconds * 1000;
  const loop = (client: grpc.Client) =>
    new Promise<void>((resolve) => {
      const one = () => {
        if (performance.now() >= end) return resolve();
        const body = opts.requests[next++ % opts.requests.length];
        const t0 = performance.now();
        client.makeUnaryRequest(PREDICT_PATH, id, id, body, (err) => {
          const t1 = performance.now();
          if (err) errors++;
          else if (n < latencies.length) latencies[n++] = t1 - t0;
          one();
        });
      };
      one();
    });
  await Promise.all(Array.from({ length: opts.connections }, (_, i) => loop(clients[i % nChannels])));
  const seconds = (performance.now() - started) / 1000;
  for (const c of clients) c.close();
  const sorted = latencies.subarray(0, n).sort();
  const pct = (p: number) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.floor((p / 100) * n))]);
  return {
    tool: 'grpc-js',
    connections: opts.connections,
    seconds,
    requests: n + errors,
    rps: n / seconds,
    p50Ms: pct(50),
    p90Ms: pct(90),
    p99Ms: pct(99),
    maxMs: n ? sorted[n - 1] : NaN,
    errors,
    non2xx: 0,
    clientCpuPct: cpuPct(cpu0, seconds),
  };
}
