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
import { baseNameOf, ModelRepository, type ModelBuilder } from './core/repository.js';
import { RecommenderService } from './core/service.js';
import { StartupGate } from './core/startup-gate.js';
import type { Learner } from './core/types.js';
import { RetrainCoordination } from './feedback/retrain-coordination.js';
import { startFeedbackLoop, type FeedbackLoop } from './feedback/runtime.js';
import { ensureDemoModel } from './model-format/demo.js';
import { VersionRepository, type StartupPreference } from './model-format/version-repository.js';
import { servingScorerFactory } from './model/pool/factory.js';
import { ModelRegistry, type RegistryOptions, type ScorerFactory } from './model/registry.js';
import type { Recommender } from './model/recommender.js';
import { adminHandlers } from './protocols/admin/rest-routes.js';
import { v2RepositoryHandlers } from './protocols/v2/repository-routes.js';
import { DataPlane } from './protocols/seldon-v1/dataplane.js';
import { SELDON_NEEDS_MODEL, seldonV1Handlers, type Handler } from './protocols/seldon-v1/rest-routes.js';
import { V2_PREFIX, v2ErrorWriter, v2Handlers, v2Infer } from './protocols/v2/rest-routes.js';
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
  /** Models loaded and unloaded by name (the V2 repository extension). */
  repository: ModelRepository;
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
  for (const warning of config.warnings) log.warn(warning);
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
  const scorers = servingScorerFactory({
    workers: config.inferenceWorkers,
    intraOpThreads: config.intraOpThreads,
    maxBatchSize: config.maxBatchSize,
    maxBatchDelayMs: config.maxBatchDelayMs,
    int8MinItems: config.int8MinItems,
    log,
    batchObserver: metrics.batchObserver,
    poolObserver: metrics.poolObserver,
    maxStartFailures: config.workerMaxStartFailures,
    restartBackoffMs: config.workerRestartBackoffMs,
  });
  const registryOptions = { log, filterCacheBytes: config.limits.filterCacheBytes, graceMs: config.swapGraceMs };
  const versions = new VersionRepository({ root: path.join(config.dataDir, 'models'), baseDir: config.modelDir, log });
  registry = new ModelRegistry(scorers, { ...registryOptions, repository: versions, learning: (rec) => loop.service.learning(rec) });
  registry.onPrepare((rec) => loop.service.prepare(rec));
  registry.onActivate((rec) => {
    swaps.inc();
    metrics.setModel(rec.name, rec.version, rec.artifact.signature.kind);
  });
  // Replicas on PostgreSQL serve the version the store records (src/feedback/retrain-coordination.ts).
  const coordination =
    loop.shared && config.storeUrl ? new RetrainCoordination({ url: config.storeUrl, registry, log, settings: { queryTimeoutMs: Math.max(2000, loop.settings.storeTimeoutMs) } }) : null;
  let startFrom: StartupPreference | null = null;
  if (coordination) {
    const row = await coordination.serving().catch((e) => {
      log.warn({ err: (e as Error).message }, 'could not read the serving version from the shared store at start-up; following it once it answers');
      return null;
    });
    if (row) startFrom = { version: row.version, isBase: row.isBase };
    coordination.start();
  }

  // 3. The core: the service every protocol calls, and version control (reload, rollback, retrain).
  const startup = new StartupGate(registry, config.startupWaitMs);
  const learner = options.wrapLearner ? options.wrapLearner(loop.service) : loop.service;
  const service = new RecommenderService({ registry, limits: config.limits, metrics, learner, startup });
  const retrainer = new Retrainer({ config, registry, stores: loop.stores, settings: loop.settings, log, count: (outcome) => retrains.inc({ outcome }), coordination });
  const stopSchedule = scheduleRetrains(retrainer, loop.settings.retrainIntervalS, log);
  const control = new VersionControl({ registry, retrainer, coordination, log });
  const models = new ModelHub(config.serveDefaultModel ? service : null, config.modelName);
  const repositoryModels = repositoryModelBuilder({ config, log, metrics, scorers, registryOptions });
  const repository = new ModelRepository({ root: config.modelsRoot, hub: models, build: repositoryModels.build, log });
  modelGauges(reg, models, config.inferenceWorkers);
  const feedback = { ...loop, coordination };
  const closeFeedback = async () => {
    stopSchedule();
    await retrainer.current?.catch(() => undefined);
    await coordination?.stop();
    await repository.close();
    await loop.close();
  };

  // 4. The protocols over the core, and 5. the transports that mount them.
  const dataplane = new DataPlane(service, config, log);
  const whenServing = () => service.whenServing();
  const handlers = restHandlers({ config, log, dataplane, control, models, repository });
  const errorWriters = [{ prefix: V2_PREFIX, write: v2ErrorWriter }];
  const app = createRestApp({ config, metrics, log, handlers, needsModel: SELDON_NEEDS_MODEL, whenServing, errorWriters });
  const { limits } = config;
  const httpServer = http.createServer({
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Slow or stalled senders give their socket back; Node refuses headersTimeout > requestTimeout.
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: 1000, // how often those timeouts are checked (Node's default is 30 s)
  });
  // Connection count and per-connection pipelining are bounded in front of both the fast path and express.
  const guard = guardConnections(httpServer, limits);
  httpServer.on('request', guard.wrap(withFastPath({ config, dataplane, metrics, log, whenServing, v2: { infer: v2Infer({ models, config }), errorWriter: v2ErrorWriter } }, app))); // predict/feedback hot path without express
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
    const dir = versions.startupDir(startFrom); // resumes the last served version
    const missing = config.serveDefaultModel ? missingDefaultModel(config, dir) : null;
    if (!config.serveDefaultModel) {
      // Seldon Core 2: the agent loads every model by name; the Seldon v1 routes have no model to answer with.
      startup.fail(`this server has no default model: it serves the models loaded by name from its models root (POST /v2/repository/models/{name}/load); use the V2 routes /v2/models/{name}/…`);
      log.info({ modelsRoot: config.modelsRoot }, 'no default model: models are loaded by name through the repository extension');
    } else if (missing) {
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
    grpcServer = await startGrpcServer({ config, dataplane, metrics, log, models, repository });
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
    repository,
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

/** The REST handler tables of every protocol, by operationId (Seldon v1, admin, V2 and its repository extension). */
export function restHandlers(deps: { config: Config; log: Logger; dataplane: DataPlane; control: VersionControl; models: ModelHub; repository: ModelRepository }): Record<string, Handler> {
  const { config, log, dataplane, control, models, repository } = deps;
  return {
    ...seldonV1Handlers({ dataplane, config }),
    ...adminHandlers({ config, control, log }),
    ...v2Handlers({ models, config, repository: config.modelsRoot !== null }),
    ...v2RepositoryHandlers({ repository, limits: config.limits }),
  };
}

/**
 * Builds the models the repository loads by name: each its own registry and scorer stack, and a
 * feedback loop per base name (`iris_1` and `iris_2` share `iris`'s store, bandit and fold-ins, so
 * Seldon Core 2's renames keep what was learnt). The loop closes with the last model that uses it.
 */
function repositoryModelBuilder(deps: {
  config: Config;
  log: Logger;
  metrics: Metrics;
  scorers: ScorerFactory;
  registryOptions: RegistryOptions;
}): { build: ModelBuilder } {
  const { config, log, metrics } = deps;
  const bases = new Map<string, { loop: Promise<FeedbackLoop>; registries: Set<ModelRegistry> }>();
  const release = async (base: string, registry: ModelRegistry) => {
    const entry = bases.get(base);
    if (!entry) return;
    entry.registries.delete(registry);
    if (entry.registries.size > 0) return;
    bases.delete(base);
    await (await entry.loop).close();
  };
  const build: ModelBuilder = async (name, dir) => {
    const base = baseNameOf(name);
    let entry = bases.get(base);
    if (!entry) {
      const registries = new Set<ModelRegistry>();
      const live = () => [...registries].flatMap((r) => [r.current, r.previousModel]).filter((m): m is Recommender => m !== null);
      const loop = startFeedbackLoop({ config: stateConfig(config, base), log: log.child({ model: base }), metrics, liveModels: live, metricsRegistry: new client.Registry() });
      entry = { loop, registries };
      bases.set(base, entry);
    }
    const loop = await entry.loop;
    const registry = new ModelRegistry(deps.scorers, { ...deps.registryOptions, learning: (rec) => loop.service.learning(rec) });
    registry.onPrepare((rec) => loop.service.prepare(rec));
    entry.registries.add(registry);
    try {
      await registry.load(dir);
    } catch (e) {
      await registry.close().catch(() => undefined);
      await release(base, registry);
      throw e;
    }
    const service = new RecommenderService({ registry, limits: config.limits, metrics, learner: loop.service, startup: new StartupGate(registry, 0) });
    return {
      service,
      close: async () => {
        await registry.close();
        await release(base, registry);
      },
    };
  };
  return { build };
}

/** The store of a repository model's base name: a schema of its own on PostgreSQL, a folder of its own for SQLite. */
function stateConfig(config: Config, base: string): Config {
  const dataDir = path.join(config.dataDir, 'repository', base);
  const url = config.storeUrl;
  if (url && /^postgres(ql)?:/i.test(url)) {
    const u = new URL(url);
    u.searchParams.set('schema', `${u.searchParams.get('schema') ?? 'recserve'}_${base}`);
    return { ...config, dataDir, storeUrl: u.toString() };
  }
  if (url && url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    return { ...config, dataDir, storeUrl: `sqlite:${path.join(path.dirname(file), 'repository', base, path.basename(file))}` };
  }
  return { ...config, dataDir, storeUrl: null };
}

/** Per served model: whether it is ready, and the bytes it holds. */
function modelGauges(reg: client.Registry, models: ModelHub, workers: number): void {
  new client.Gauge({
    name: 'recserve_model_ready',
    help: 'Whether each served model answers (1) or not (0), by model name',
    labelNames: ['model'] as const,
    registers: [reg],
    collect() {
      this.reset();
      for (const m of models.list()) this.set({ model: m.name }, m.service.isReady() ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'recserve_model_memory_bytes',
    help: 'Bytes each served model holds: its ONNX file (factors included) in the main thread and in each inference worker',
    labelNames: ['model'] as const,
    registers: [reg],
    collect() {
      this.reset();
      for (const m of models.list()) {
        const model = m.service.current;
        if (model) this.set({ model: m.name }, model.artifact.onnx.byteLength * (1 + workers));
      }
    },
  });
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
