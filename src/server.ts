// Composition root: config → model registry → data plane → REST / metrics servers (gRPC joins here).
// Returns a handle so tests and the CLI start and stop the same thing.
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Config } from './config/index.js';
import { startGrpcServer, type RunningGrpcServer } from './transport/grpc/server.js';
import { ModelRegistry } from './model/registry.js';
import { servingScorerFactory } from './model/pool/factory.js';
import { withFastPath } from './transport/rest/fast-path.js';
import { DataPlane } from './protocols/seldon-v1/dataplane.js';
import { clientError, createRestApp, expectationFailed } from './transport/rest/app.js';
import { guardConnections } from './transport/rest/connection-guard.js';
import { StartupGate } from './core/startup-gate.js';
import { startFeedback, type FeedbackRuntime } from './feedback/runtime.js';
import { adminHandlers } from './protocols/admin/rest-routes.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { ensureDemoModel } from './model-format/demo.js';

export interface RunningServer {
  config: Config;
  dataplane: DataPlane;
  registry: ModelRegistry;
  metrics: Metrics;
  log: Logger;
  /** Interaction store, bandit, fold-in, retraining. */
  feedback: FeedbackRuntime;
  /** Bound ports (useful when the config asked for port 0). */
  ports: { http: number; metrics: number; grpc?: number };
  /** Stop accepting, drain in-flight requests (up to drainTimeoutMs), release the model. */
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const metrics = createMetrics(config);
  // Every model version gets its own scorer stack: worker-thread ORT sessions behind a micro-batcher.
  const registry = new ModelRegistry(
    servingScorerFactory({
      workers: config.inferenceWorkers,
      intraOpThreads: config.intraOpThreads,
      maxBatchSize: config.maxBatchSize,
      maxBatchDelayMs: config.maxBatchDelayMs,
      log,
      batchObserver: metrics.batchObserver,
      poolObserver: metrics.poolObserver,
    }),
  );
  const dataplane = new DataPlane(registry, config, metrics, log);
  const startup = new StartupGate(registry, config.startupWaitMs);

  // The feedback loop (store, bandit, fold-in, versions root) is installed before the first model load.
  const feedback = await startFeedback({ config, registry, dataplane, log, metrics });
  const app = createRestApp({ config, dataplane, metrics, log, startup, extraHandlers: adminHandlers({ config, registry, feedback, log }) });
  const { limits } = config;
  const httpServer = http.createServer({
    keepAliveTimeout: 65_000, // above common load-balancer idle timeouts
    // Slow or stalled senders give their socket back; Node refuses headersTimeout > requestTimeout.
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: 1000, // how often those timeouts are checked (Node's default is 30 s)
  });
  // Connection count and per-connection pipelining are bounded in front of both the fast path and express.
  const guard = guardConnections(httpServer, limits);
  httpServer.on('request', guard.wrap(withFastPath({ config, dataplane, metrics, log, startup }, app))); // predict/feedback hot path without express
  // Expect other than 100-continue: Node would answer a bare 417; answer it in Seldon's format.
  httpServer.on('checkExpectation', expectationFailed);
  // What the HTTP parser refuses (e.g. a ?json= URL past the header limit) also gets a Seldon body.
  httpServer.on('clientError', clientError);
  const metricsServer = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && (path === config.metricsPath || path === '/metrics')) {
      res.setHeader('Content-Type', metrics.registry.contentType);
      res.end(await metrics.registry.metrics());
    } else {
      res.statusCode = 404;
      res.end(`metrics are at ${config.metricsPath}\n`);
    }
  });

  // Listen first so liveness answers while the model loads; readiness waits for the warm-up.
  const httpPort = await listen(httpServer, config.httpPort, config.host);
  const metricsPort = await listen(metricsServer, config.metricsPort, config.host);

  let grpcServer: RunningGrpcServer | null = null; // gRPC
  try {
    if (config.useDemoModel) {
      log.info({ dir: config.modelDir }, 'no model at /mnt/models and none named, --demo asked: serving the demo model');
      await ensureDemoModel(config.modelDir);
    }
    const dir = registry.startupDir(config.modelDir); // resumes the last served version
    const missing = missingDefaultModel(config, dir);
    if (missing) {
      // Stay up and not ready with the reason (in the log, /ready and every refusal); never fake a model.
      log.error({ dir }, missing);
      startup.fail(missing);
    } else {
      const t0 = Date.now();
      const model = await registry.load(dir);
      metrics.setModel(model.name, model.version, model.artifact.signature.kind);
      log.info(
        { dir: config.modelDir, name: model.name, version: model.version, signature: model.artifact.signature.kind, users: model.artifact.userIds.length, items: model.nItems, ms: Date.now() - t0 },
        'model loaded and warmed',
      );
    }
    // gRPC opens after the model is warm, so every accepted call can be answered (or, with no model,
    // answers UNAVAILABLE with the reason, and its health service says NOT_SERVING).
    grpcServer = await startGrpcServer({ config, dataplane, metrics, log });
    log.info({ port: grpcServer.port }, 'gRPC listening');
  } catch (e) {
    // Release everything started so far: worker threads or an open store would keep the process alive.
    await Promise.all([close(httpServer, 0), close(metricsServer, 0), grpcServer?.close(0)]);
    await registry.close().catch(() => undefined);
    await feedback.close();
    throw e;
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    dataplane,
    registry,
    metrics,
    log,
    feedback,
    ports: { http: httpPort, metrics: metricsPort, grpc: grpcServer?.port },
    close() {
      closing ??= (async () => {
        dataplane.startDraining();
        await Promise.all([close(httpServer, config.drainTimeoutMs), close(metricsServer, 0), grpcServer?.close(config.drainTimeoutMs)]);
        await registry.close();
        await feedback.close();
      })();
      return closing;
    },
  };
}

/** Where Seldon's storage initializer writes modelUri (config.ts's default model directory). */
const SELDON_MODEL_DIR = '/mnt/models';

/**
 * Why the default model directory has nothing to serve, or null. Only for /mnt/models, which Seldon's
 * storage initializer fills: another directory named with --model or MODEL_PATH that holds no model
 * stops start-up instead, as a typo in a flag should.
 */
function missingDefaultModel(config: Config, dir: string): string | null {
  if (config.useDemoModel || dir !== SELDON_MODEL_DIR || existsSync(path.join(dir, 'model.onnx'))) return null;
  return `no model at ${path.join(dir, 'model.onnx')}: nothing was written there (check the SeldonDeployment's modelUri and the storage initializer's log); the demo model is served only with --demo or RECSERVE_DEMO=true. Not ready`;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting; idle keep-alive sockets close now, busy ones after their response or the timeout. */
function close(server: http.Server, drainMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const timer = setTimeout(() => server.closeAllConnections(), drainMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
