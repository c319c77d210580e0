// The composition root: builds, in order, the feedback loop (store, bandit, learner) → the model
// registry → the protocol-neutral core (service, version control) → the protocols (Seldon v1, admin)
// → the transports (REST, gRPC, metrics), passing collaborators to constructors. Returns a handle so
// tests and the CLI start and stop the same thing.
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import client from 'prom-client';
import type { Config } from './config/index.js';
import { Retrainer, scheduleRetrains, VersionControl } from './core/control.js';
import { ModelHub } from './core/models.js';
import { RecommenderService } from './core/service.js';
import { StartupGate } from './core/startup-gate.js';
import type { Learner } from './core/types.js';
import { RetrainCoordination } from './feedback/retrain-coordination.js';
import { startFeedbackLoop, type FeedbackLoop } from './feedback/runtime.js';
import { ensureDemoModel } from './model-format/demo.js';
import { servingScorerFactory } from './model/pool/factory.js';
import { ModelRegistry } from './model/registry.js';
import type { Recommender } from './model/recommender.js';
import { adminHandlers } from './protocols/admin/rest-routes.js';
import { DataPlane } from './protocols/seldon-v1/dataplane.js';
import { SELDON_NEEDS_MODEL, seldonV1Handlers } from './protocols/seldon-v1/rest-routes.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { startGrpcServer, type RunningGrpcServer } from './transport/grpc/server.js';
import { clientError, createRestApp, expectationFailed } from './transport/rest/app.js';
import { guardConnections } from './transport/rest/connection-guard.js';
import { withFastPath } from './transport/rest/fast-path.js';

export interface RunningServer {
  config: Config;
  service: RecommenderService;
  /** Every model served, by name (the default one is `service`). */
  models: ModelHub;
  control: VersionControl;
  /** The Seldon v1 protocol over the service. */
  dataplane: DataPlane;
  registry: ModelRegistry;
  metrics: Metrics;
  log: Logger;
  /** Interaction store, bandit, learner, propagation; and the cross-replica coordination (PostgreSQL). */
  feedback: FeedbackLoop & { coordination: RetrainCoordination | null };
  /** Bound ports (useful when the config asked for port 0). */
  ports: { http: number; metrics: number; grpc?: number };
  /** Stop accepting, drain in-flight requests (up to drainTimeoutMs), release the model. */
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Wraps the learner (tests use it to make feedback fail or block). */
  wrapLearner?: (learner: Learner) => Learner;
}

export async function startServer(config: Config, log: Logger = createLogger(config.logLevel), options: ServerOptions = {}): Promise<RunningServer> {
  const metrics = createMetrics(config);
  const reg = metrics.registry;
  const swaps = new client.Counter({ name: 'recserve_model_swaps_total', help: 'Model versions swapped in (loads and rollbacks)', registers: [reg] });
  const retrains = new client.Counter({ name: 'recserve_retrains_total', help: 'Server-run retrains by outcome', labelNames: ['outcome'] as const, registers: [reg] });

  // 1. The feedback loop, before any model: the first version loaded gets its bandit and fold-in too.
  let registry: ModelRegistry | null = null;
  const liveModels = (): Recommender[] => (registry ? [registry.current, registry.previousModel].filter((m): m is Recommender => m !== null) : []);
  const loop = await startFeedbackLoop({ config, log, metrics, liveModels });

  // 2. The registry: every model version gets its own scorer stack (worker-thread ORT sessions behind
  // a micro-batcher), and its bandit policy and fold-in before it serves.
  registry = new ModelRegistry(
    servingScorerFactory({
      workers: config.inferenceWorkers,
      intraOpThreads: config.intraOpThreads,
      maxBatchSize: config.maxBatchSize,
      maxBatchDelayMs: config.maxBatchDelayMs,
      log,
      batchObserver: metrics.batchObserver,
      poolObserver: metrics.poolObserver,
    }),
    { root: path.join(config.dataDir, 'models'), log, filterCacheBytes: config.limits.filterCacheBytes },
  );
  registry.onPrepare((rec) => loop.service.prepare(rec));
  registry.onActivate((rec) => {
    swaps.inc();
    metrics.setModel(rec.name, rec.version, rec.artifact.signature.kind);
  });
  // Replicas on PostgreSQL serve the version the store records (src/feedback/retrain-coordination.ts).
  const coordination =
    loop.shared && config.storeUrl ? new RetrainCoordination({ url: config.storeUrl, registry, log, settings: { queryTimeoutMs: Math.max(2000, loop.settings.storeTimeoutMs) } }) : null;
  if (coordination) {
    const row = await coordination.serving().catch((e) => {
      log.warn({ err: (e as Error).message }, 'could not read the serving version from the shared store at start-up; following it once it answers');
      return null;
    });
    if (row) registry.preferStartupVersion({ version: row.version, isBase: row.isBase });
    coordination.start();
  }

  // 3. The core: the service every protocol calls, and version control (reload, rollback, retrain).
  const startup = new StartupGate(registry, config.startupWaitMs);
  const learner = options.wrapLearner ? options.wrapLearner(loop.service) : loop.service;
  const service = new RecommenderService({ registry, limits: config.limits, metrics, learner, startup });
  const retrainer = new Retrainer({ config, registry, stores: loop.stores, settings: loop.settings, log, count: (outcome) => retrains.inc({ outcome }), coordination });
  const stopSchedule = scheduleRetrains(retrainer, loop.settings.retrainIntervalS, log);
  const control = new VersionControl({ registry, retrainer, coordination, log });
  const models = new ModelHub(service);
  const feedback = { ...loop, coordination };
  const closeFeedback = async () => {
    stopSchedule();
    await retrainer.current?.catch(() => undefined);
    await coordination?.stop();
    await loop.close();
  };

  // 4. The protocols over the core, and 5. the transports that mount them.
  const dataplane = new DataPlane(service, config, log);
  const whenServing = () => service.whenServing();
  const handlers = { ...seldonV1Handlers({ dataplane, config }), ...adminHandlers({ config, control, log }) };
  const app = createRestApp({ config, metrics, log, handlers, needsModel: SELDON_NEEDS_MODEL, whenServing });
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
  httpServer.on('request', guard.wrap(withFastPath({ config, dataplane, metrics, log, whenServing }, app))); // predict/feedback hot path without express
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
      const model = await registry.load(dir); // the activate hook records the model in the metrics
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
    await closeFeedback();
    throw e;
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    service,
    models,
    control,
    dataplane,
    registry,
    metrics,
    log,
    feedback,
    ports: { http: httpPort, metrics: metricsPort, grpc: grpcServer?.port },
    close() {
      closing ??= (async () => {
        service.startDraining();
        await Promise.all([close(httpServer, config.drainTimeoutMs), close(metricsServer, 0), grpcServer?.close(config.drainTimeoutMs)]);
        await registry.close();
        await closeFeedback();
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
