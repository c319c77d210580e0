// The gRPC server: the seven Seldon v1 services and the Open Inference Protocol's
// inference.GRPCInferenceService, server reflection over both (grpcurl and friends need no proto file)
// and the standard grpc.health.v1 health service, which follows each protocol's readiness.
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { limitHint } from '../../config/limits.js';
import { HealthService, type ServingStatus } from './health.js';
import { reflectionPackage } from './descriptors.js';
import { file_grpc_health_v1_health } from '../../gen/grpc/health/v1/health_pb.js';
import { mountProtocol, type CallDeps } from './handle.js';
import type { ModelHub } from '../../core/models.js';
import type { ModelRepository } from '../../core/repository.js';
import type { GrpcProtocol } from '../../protocols/grpc-binding.js';
import type { DataPlane } from '../../protocols/seldon-v1/dataplane.js';
import { seldonServices } from '../../protocols/seldon-v1/grpc-services.js';
import { v2Services } from '../../protocols/v2/grpc-services.js';
import { withDependencies } from '../../protocols/seldon-v1/proto-json.js';

export interface GrpcDeps extends Omit<CallDeps, 'onCall'> {
  /** The Seldon v1 data plane (the default model). */
  dataplane: DataPlane;
  /** The models served by name: with them the Open Inference Protocol's service is mounted too. */
  models?: ModelHub;
  /** The V2 repository extension's models (load/unload by name). */
  repository?: ModelRepository;
}

export interface GrpcServerOptions {
  /** How often the health status is re-read from the data plane (ms). */
  healthPollMs?: number;
  /** Connection lifetimes; the defaults below suit production, tests shorten them. */
  connections?: Partial<GrpcConnectionSettings>;
}

export interface GrpcConnectionSettings {
  /** A connection with no call for this long is closed with a GOAWAY (clients reconnect on demand). */
  idleMs: number;
  /** Any connection is asked to go away after this long (±10% jitter, grpc-js), so long-lived executor connections rotate. */
  maxAgeMs: number;
  /** Calls still running on a connection past its age get this long to finish before it is cut. */
  maxAgeGraceMs: number;
  /** The server pings a connection this often, and drops it if the ping is not answered in keepaliveTimeoutMs: reclaims vanished peers. */
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  /** Calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); clients queue the rest. */
  maxConcurrentStreams: number;
  /** Most health Watch streams open at once over all connections. */
  maxHealthWatches: number;
}

export const GRPC_CONNECTION_DEFAULTS: GrpcConnectionSettings = {
  // 1 min: an idle client reconnects on demand, and a slot of RECSERVE_MAX_CONNECTIONS is not held long.
  idleMs: 60_000,
  maxAgeMs: 30 * 60_000,
  maxAgeGraceMs: 30_000,
  keepaliveMs: 2 * 60_000,
  keepaliveTimeoutMs: 20_000,
  maxConcurrentStreams: 256,
  maxHealthWatches: 1000,
};

/** The client connection preface: the 24-byte magic, then a SETTINGS frame (at least its 9-byte header). */
const HTTP2_MAGIC = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const CLIENT_PREFACE_BYTES = HTTP2_MAGIC.length + 9;

export interface RunningGrpcServer {
  server: grpc.Server;
  port: number;
  /** Names the health service reports on: '' (the whole server) and every service served. */
  healthServices: string[];
  /** Re-reads readiness into the health service now. */
  syncHealth(): void;
  /** The health service (its stats() show what it holds). */
  health: HealthService;
  /** Client connections open on the gRPC port now. */
  connectionCount(): number;
  /** NOT_SERVING, then a graceful shutdown that waits for calls in flight up to timeoutMs, then a forced one. */
  close(timeoutMs: number): Promise<void>;
}

export async function startGrpcServer(deps: GrpcDeps, opts: GrpcServerOptions = {}): Promise<RunningGrpcServer> {
  const { config, dataplane } = deps;
  const conn = { ...GRPC_CONNECTION_DEFAULTS, ...opts.connections };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.grpcMaxReceiveBytes,
    'grpc.max_send_message_length': config.grpcMaxMessageBytes,
    // No channelz: nothing here serves the channelz service, and its per-call bookkeeping (call and
    // session counters, Date.now() per message) cost about 2.5% of the main thread at 64 connections.
    'grpc.enable_channelz': 0,
    'grpc.max_connection_idle_ms': conn.idleMs,
    'grpc.max_connection_age_ms': conn.maxAgeMs,
    'grpc.max_connection_age_grace_ms': conn.maxAgeGraceMs,
    'grpc.keepalive_time_ms': conn.keepaliveMs,
    'grpc.keepalive_timeout_ms': conn.keepaliveTimeoutMs,
    'grpc.max_concurrent_streams': conn.maxConcurrentStreams,
  });

  // Remote ports of connections that have carried a call (a port is unique per client address; a
  // rare match across addresses only spares a socket). Entries leave with their socket.
  const calledPorts = new Set<number>();
  const callDeps: CallDeps = { ...deps, onCall: (peer) => calledPorts.add(Number(peer.slice(peer.lastIndexOf(':') + 1))) };
  const protocols: GrpcProtocol[] = [seldonServices({ dataplane, config })];
  if (deps.models) protocols.push(v2Services({ models: deps.models, repository: deps.repository ?? null, config }));
  for (const p of protocols) mountProtocol(server, p, callDeps);

  // Health: each service follows its protocol's readiness; '' (the whole server) serves while any protocol
  // does (a Seldon Core 2 server has no default model, so only its V2 service ever serves).
  const healthServices = ['', ...protocols.flatMap((p) => p.services.map((s) => s.name))];
  const statusOf = (serving: boolean): ServingStatus => (serving ? 'SERVING' : 'NOT_SERVING');
  const health = new HealthService(healthServices, 'NOT_SERVING', {
    maxNameLength: config.limits.maxIdLength,
    nameLimitHint: limitHint(config.limits, 'maxIdLength'),
    maxWatches: conn.maxHealthWatches,
  });
  health.addToServer(server);
  let closed = false;
  const syncHealth = () => {
    if (closed) return;
    let any = false;
    for (const p of protocols) {
      const serving = p.isServing();
      any ||= serving;
      for (const s of p.services) health.setStatus(s.name, statusOf(serving));
    }
    health.setStatus('', statusOf(any));
  };
  syncHealth();
  const poll = setInterval(syncHealth, opts.healthPollMs ?? 1000);
  poll.unref();

  // Reflection over the same protos the server speaks (prediction.proto and its imports, the V2 proto, health).
  new ReflectionService(reflectionPackage(withDependencies(...protocols.flatMap((p) => p.files), file_grpc_health_v1_health))).addToServer(server);

  // grpc-js has no connection cap, so we own the listening socket and hand each connection to grpc-js
  // through its public connection injector. net.Server.maxConnections refuses connections past the
  // cap at accept (the client sees a reset and retries). A connection is handed over only once it has
  // sent the HTTP/2 client preface, within the headers timeout: once HTTP/2 owns a socket, neither
  // grpc-js' idle timeout nor socket.destroy() closes one that never began, and 20,000 such silent
  // sockets used to exhaust the process's file descriptors.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const sockets = new Set<net.Socket>();
  const awaitingPreface = new Set<net.Socket>();
  const listener = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    awaitingPreface.add(socket);
    socket.on('error', () => {}); // a reset peer; once handed over, the HTTP/2 session handles its own
    const prefaceTimer = setTimeout(() => socket.destroy(), config.limits.headersTimeoutMs);
    prefaceTimer.unref();
    socket.once('close', () => {
      clearTimeout(prefaceTimer);
      sockets.delete(socket);
      awaitingPreface.delete(socket);
    });
    const head: Buffer[] = [];
    let headBytes = 0;
    const onData = (chunk: Buffer) => {
      head.push(chunk);
      headBytes += chunk.length;
      if (headBytes < CLIENT_PREFACE_BYTES) return;
      clearTimeout(prefaceTimer);
      socket.off('data', onData);
      socket.pause();
      const bytes = Buffer.concat(head);
      if (!bytes.subarray(0, HTTP2_MAGIC.length).equals(HTTP2_MAGIC)) return void socket.destroy(); // not HTTP/2
      awaitingPreface.delete(socket);
      // Node's HTTP/2 session reads what is already buffered on the socket first.
      socket.unshift(bytes);
      injector.injectConnection(socket);
      // A connection that sent its preface and no call yet is closed once the port is half full:
      // such sockets could otherwise hold every slot (grpc-js' idle timer never closes a session that
      // carried no stream). Below half, it is left alone: an abrupt close can fail a client's next call
      // while it reconnects, and a client may connect well before its first call.
      const port = socket.remotePort;
      let quietTimer: NodeJS.Timeout;
      const checkQuiet = () => {
        if (port !== undefined && calledPorts.has(port)) return;
        if (sockets.size * 2 >= config.limits.maxConnections) socket.destroy();
        else quietTimer = setTimeout(checkQuiet, config.limits.headersTimeoutMs).unref();
      };
      quietTimer = setTimeout(checkQuiet, config.limits.headersTimeoutMs);
      quietTimer.unref();
      socket.once('close', () => {
        clearTimeout(quietTimer);
        if (port !== undefined) calledPorts.delete(port);
      });
    };
    socket.on('data', onData);
  });
  listener.maxConnections = config.limits.maxConnections;

  let port: number;
  try {
    // No reusePort: one server owns the port, and a second instance fails to bind (EADDRINUSE) instead
    // of silently sharing traffic with a stale process.
    port = await new Promise<number>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: config.host, port: config.grpcPort }, () => {
        listener.off('error', reject);
        resolve((listener.address() as net.AddressInfo).port);
      });
    });
  } catch (e) {
    clearInterval(poll);
    injector.destroy();
    server.forceShutdown();
    throw new Error(`gRPC cannot listen on ${config.host}:${config.grpcPort}: ${(e as Error).message}`);
  }

  let closing: Promise<void> | null = null;
  return {
    server,
    port,
    healthServices,
    syncHealth,
    health,
    connectionCount: () => sockets.size,
    close(timeoutMs) {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(poll);
        closed = true;
        health.setAll('NOT_SERVING');
        // Watch streams would hold the graceful shutdown open until the timeout; they end with OK and
        // their clients retry elsewhere, as the health protocol says.
        health.endWatches();
        listener.close();
        // A socket that never began HTTP/2 has no session for grpc-js to close; it would hold the
        // graceful shutdown until the timeout.
        for (const s of awaitingPreface) s.destroy();
        const timer = setTimeout(() => {
          server.forceShutdown();
          for (const s of sockets) s.destroy();
          resolve();
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}
