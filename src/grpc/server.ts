// The gRPC server: the seven Seldon v1 services, server reflection (grpcurl and friends need no proto
// file) and the standard grpc.health.v1 health service, which follows the data plane's readiness.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import { PROTO_DIR } from '../util/paths.js';
import { reflectionPackage } from './descriptors.js';
import type { HandleDeps } from './handle.js';
import { seldonServices } from './seldon-v1.js';

export interface GrpcServerOptions {
  /** How often the health status is re-read from the data plane (ms). */
  healthPollMs?: number;
}

export interface RunningGrpcServer {
  server: grpc.Server;
  port: number;
  /** Names the health service reports on: '' (the whole server) and every Seldon service. */
  healthServices: string[];
  /** Re-reads readiness into the health service now. */
  syncHealth(): void;
  /** NOT_SERVING, then a graceful shutdown that waits for calls in flight up to timeoutMs, then a forced one. */
  close(timeoutMs: number): Promise<void>;
}

export async function startGrpcServer(deps: HandleDeps, opts: GrpcServerOptions = {}): Promise<RunningGrpcServer> {
  const { config, dataplane } = deps;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.grpcMaxReceiveBytes,
    'grpc.max_send_message_length': config.grpcMaxMessageBytes,
    // No channelz: nothing here serves the channelz service, and its per-call bookkeeping (call and
    // session counters, Date.now() per message) cost about 2.5% of the main thread at 64 connections.
    'grpc.enable_channelz': 0,
    // grpc-js has no SO_REUSEPORT: one server owns the port, and a second instance fails to bind
    // (EADDRINUSE) instead of silently sharing traffic with a stale process.
  });

  const services = seldonServices(deps);
  for (const s of services) server.addService(s.definition, s.implementation);

  // Health: '' for the whole server plus each Seldon service, all following DataPlane.isReady().
  const healthServices = ['', ...services.map((s) => s.name)];
  const statusNow = (): ServingStatus => (dataplane.isReady() ? 'SERVING' : 'NOT_SERVING');
  let current = statusNow();
  const health = new HealthImplementation(Object.fromEntries(healthServices.map((n) => [n, current])));
  health.addToServer(server);
  const syncHealth = () => {
    const next = statusNow();
    if (next === current) return;
    current = next;
    for (const n of healthServices) health.setStatus(n, next);
  };
  const poll = setInterval(syncHealth, opts.healthPollMs ?? 1000);
  poll.unref();

  // Reflection over the same protos the server speaks (prediction.proto, its imports, health).
  const healthDir = path.resolve(healthProtoPath, '../../..');
  const described = reflectionPackage(['prediction.proto', path.relative(healthDir, healthProtoPath)], [PROTO_DIR, healthDir]);
  new ReflectionService(described).addToServer(server);

  const host = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
  } catch (e) {
    clearInterval(poll);
    server.forceShutdown();
    throw new Error(`gRPC cannot listen on ${host}:${config.grpcPort}: ${(e as Error).message}`);
  }

  let closing: Promise<void> | null = null;
  return {
    server,
    port,
    healthServices,
    syncHealth,
    close(timeoutMs) {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(poll);
        for (const n of healthServices) health.setStatus(n, 'NOT_SERVING');
        current = 'NOT_SERVING';
        const timer = setTimeout(() => {
          server.forceShutdown();
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
