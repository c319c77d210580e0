// gRPC load: `connections` unary Predict calls kept in flight against seldon.protos.Model/Predict.
// Requests are encoded once from proto/prediction.proto and sent as raw bytes; answers are not decoded.
// The calls go out over node:http2 directly as standard gRPC (POST, application/grpc, te: trailers, one
// length-prefixed message, status from grpc-status), which costs the shared 2 cores about a third of
// what the grpc-js client's call stack costs, like h2load would. RECSERVE_BENCH_GRPC_CLIENT=grpc-js
// drives the same calls through grpc-js instead.
import { existsSync } from 'node:fs';
import http2 from 'node:http2';
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
  return process.env.RECSERVE_BENCH_GRPC_CLIENT === 'grpc-js' ? grpcJsLoad(opts) : http2Load(opts);
}

/** The same unary calls over raw HTTP/2 sessions (opts.channels of them, 4 by default). */
async function http2Load(opts: GrpcLoadOptions): Promise<LoadResult> {
  const nSessions = Math.max(1, Math.min(opts.connections, opts.channels ?? 4));
  const sessions = await Promise.all(
    Array.from(
      { length: nSessions },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const s = http2.connect(`http://${opts.address}`);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  for (const s of sessions) s.on('error', () => {});
  // gRPC framing: a 0 compression flag, a big-endian length, the message.
  const framed = opts.requests.map((m) => {
    const b = Buffer.allocUnsafe(5 + m.length);
    b[0] = 0;
    b.writeUInt32BE(m.length, 1);
    m.copy(b, 5);
    return b;
  });
  const headers = {
    ':method': 'POST',
    ':path': PREDICT_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-accept-encoding': 'identity',
    'user-agent': 'recserve-bench-http2',
  };
  let next = 0;
  const run = await closedLoop(opts.connections, opts.seconds, (conn, done) => {
    const body = framed[next++ % framed.length];
    let status: string | undefined;
    let httpOk = false;
    let finished = false;
    const stream = sessions[conn % nSessions].request(headers, { endStream: false });
    stream.on('response', (h) => {
      httpOk = h[':status'] === 200;
      // A Trailers-Only answer (an error) carries its status in the headers.
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) status = String(t['grpc-status']);
    });
    stream.on('data', () => {});
    stream.on('close', () => {
      if (finished) return;
      finished = true;
      done(httpOk && status === '0');
    });
    stream.on('error', () => {});
    stream.end(body);
  });
  for (const s of sessions) s.close();
  return summarise('node:http2', opts.connections, run);
}

interface LoopRun {
  seconds: number;
  latencies: Float64Array;
  n: number;
  errors: number;
  clientCpuPct: number;
}

/**
 * Closed-loop load: each of `connections` loops sends one call, waits for its answer (`done(ok)`), then
 * sends the next, until `seconds` have passed. Latencies of successful calls are kept.
 */
async function closedLoop(connections: number, seconds: number, send: (conn: number, done: (ok: boolean) => void) => void): Promise<LoopRun> {
  const latencies = new Float64Array(4_000_000);
  let n = 0;
  let errors = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const end = started + seconds * 1000;
  const loop = (conn: number) =>
    new Promise<void>((resolve) => {
      const one = () => {
        if (performance.now() >= end) return resolve();
        const t0 = performance.now();
        send(conn, (ok) => {
          const t1 = performance.now();
          if (!ok) errors++;
          else if (n < latencies.length) latencies[n++] = t1 - t0;
          one();
        });
      };
      one();
    });
  await Promise.all(Array.from({ length: connections }, (_, i) => loop(i)));
  const elapsed = (performance.now() - started) / 1000;
  return { seconds: elapsed, latencies, n, errors, clientCpuPct: cpuPct(cpu0, elapsed) };
}

function summarise(tool: string, connections: number, { seconds, latencies, n, errors, clientCpuPct }: LoopRun): LoadResult {
  const sorted = latencies.subarray(0, n).sort();
  const pct = (p: number) => (n === 0 ? NaN : sorted[Math.min(n - 1, Math.floor((p / 100) * n))]);
  return {
    tool,
    connections,
    seconds,
    requests: n + errors,
    rps: n / seconds,
    p50Ms: pct(50),
    p90Ms: pct(90),
    p99Ms: pct(99),
    maxMs: n ? sorted[n - 1] : NaN,
    errors,
    non2xx: 0,
    clientCpuPct,
  };
}

async function grpcJsLoad(opts: GrpcLoadOptions): Promise<LoadResult> {
  const nChannels = Math.max(1, Math.min(opts.connections, opts.channels ?? 4));
  const clients = Array.from({ length: nChannels }, (_, i) => new grpc.Client(opts.address, grpc.credentials.createInsecure(), { 'grpc.channel_id': i } as grpc.ChannelOptions));
  await Promise.all(clients.map((c) => new Promise<void>((res, rej) => c.waitForReady(Date.now() + 5000, (e) => (e ? rej(e) : res())))));
  const id = (b: Buffer) => b;
  let next = 0;
  const run = await closedLoop(opts.connections, opts.seconds, (conn, done) => {
    const body = opts.requests[next++ % opts.requests.length];
    clients[conn % nChannels].makeUnaryRequest(PREDICT_PATH, id, id, body, (err) => done(!err));
  });
  for (const c of clients) c.close();
  return summarise('grpc-js', opts.connections, run);
}
