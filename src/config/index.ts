// Every setting of the server, from the Seldon runtime contract (PREDICTIVE_UNIT_* env), recserve's
// own env and CLI flags, into one typed Config. Each field says where it comes from and why its default.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { feedbackSettings, type FeedbackSettings } from './feedback.js';
import { loadLimits, type Limits } from './limits.js';
import { bool, ConfigError, int, num, parseBool } from './env.js';

export interface Config {
  /** REST port. PREDICTIVE_UNIT_HTTP_SERVICE_PORT; 9000 is what the Seldon operator assigns first. */
  httpPort: number;
  /** gRPC port. PREDICTIVE_UNIT_GRPC_SERVICE_PORT; 9500 is the operator's first gRPC port. */
  grpcPort: number;
  /** Prometheus port. PREDICTIVE_UNIT_METRICS_SERVICE_PORT (6000). */
  metricsPort: number;
  /** Prometheus path. PREDICTIVE_UNIT_METRICS_ENDPOINT; the operator sets /prometheus. /metrics is also served. */
  metricsPath: string;
  /** Interface to bind; Seldon's executor reaches the container over the pod network. */
  host: string;
  /** Model directory: --model, MODEL_PATH, else /mnt/models (where Seldon's storage initializer writes). */
  modelDir: string;
  /** The demo model was asked for: --demo or RECSERVE_DEMO=true (`npm start` asks; the image never does). */
  demo: boolean;
  /** True when the demo was asked for, no model directory was named and /mnt/models has no model. */
  useDemoModel: boolean;
  /** How long a prediction arriving before the model is warm waits for it (ms): RECSERVE_STARTUP_WAIT_MS. */
  startupWaitMs: number;
  /** Writable state (demo model, interaction store): --data-dir, RECSERVE_DATA_DIR, else ./.data. */
  dataDir: string;
  /** PREDICTIVE_UNIT_ID / PREDICTIVE_UNIT_IMAGE: this node's entry in meta.requestPath. */
  unitId: string | null;
  unitImage: string;
  /** MODEL_METADATA (YAML or JSON) merged over the metadata derived from the model. */
  modelMetadata: string | null;
  /** INCLUDE_METRICS_IN_CLIENT_RESPONSE (default true), as in the Python wrapper. */
  includeMetricsInResponse: boolean;
  /** Typed PREDICTIVE_UNIT_PARAMETERS. */
  params: ModelParams;
  /** Largest request body; larger ones get 413. RECSERVE_BODY_LIMIT, bytes or with kb/mb suffix. */
  bodyLimitBytes: number;
  /** pino level: SELDON_LOG_LEVEL or LOG_LEVEL (debug, info, warn, error). */
  logLevel: string;
  /** Log request payloads (RECSERVE_LOG_PAYLOADS=true); off because payloads may hold user data. */
  logPayloads: boolean;
  /** Time SIGTERM waits for in-flight requests before closing connections (ms). */
  drainTimeoutMs: number;
  /** Labels Seldon puts on every metric series. */
  labels: { deploymentName: string; predictorName: string; predictorVersion: string };
  /** gRPC max message size in bytes (send, and receive when set); seldon.io/grpc-max-message-size overrides. */
  grpcMaxMessageBytes: number;
  /**
   * Largest gRPC request: the configured max message size when one is set, else the REST body limit —
   * a message is decoded into objects before it can be checked, so 64 MiB of tiny values would not fit a 1 GiB pod.
   */
  grpcMaxReceiveBytes: number;
  /** Worker threads running ONNX sessions (0 = score on the main thread). */
  inferenceWorkers: number;
  /** intra-op threads per ONNX session. */
  intraOpThreads: number;
  /** Micro-batching: most users in one ORT run, and the longest a request may wait for company (ms). */
  maxBatchSize: number;
  maxBatchDelayMs: number;
  /** Token that enables the admin endpoints (reload, retrain, rollback); unset = admin off. */
  adminToken: string | null;
  /** Interaction store URL: postgres://… for a shared store, else SQLite under dataDir. */
  storeUrl: string | null;
  /** The feedback loop: prediction memory, bandit, fold-in, retraining (RECSERVE_PREDICTION_*, RECSERVE_BANDIT_*, …). */
  feedback: FeedbackSettings;
  /** Every size a client controls (src/limits.ts; RECSERVE_MAX_* and friends). */
  limits: Limits;
}

/** Parameters a SeldonDeployment may pass in graph.parameters. */
export interface ModelParams {
  /** Recommendations per user when the request does not say. */
  k: number;
  /** Largest k a request may ask for. */
  max_k: number;
  /** Drop items the user already interacted with, unless the request says otherwise. */
  exclude_seen: boolean;
  /** Most users one request may ask about. */
  max_users: number;
}

type ParamType = 'INT' | 'FLOAT' | 'DOUBLE' | 'STRING' | 'BOOL';
const PARAM_SPEC: Record<keyof ModelParams, { type: ParamType; min?: number; doc: string }> = {
  k: { type: 'INT', min: 1, doc: 'default number of recommendations' },
  max_k: { type: 'INT', min: 1, doc: 'largest k a request may ask for' },
  exclude_seen: { type: 'BOOL', doc: 'drop already-seen items by default' },
  max_users: { type: 'INT', min: 1, doc: 'most users per request' },
};
export const DEFAULT_PARAMS: ModelParams = { k: 10, max_k: 1000, exclude_seen: true, max_users: 1000 };

export { ConfigError };

export interface CliOverrides {
  model?: string;
  dataDir?: string;
  httpPort?: number;
  grpcPort?: number;
  metricsPort?: number;
  host?: string;
  workers?: number;
  demo?: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cli: CliOverrides = {}): Config {
  const dataDir = path.resolve(cli.dataDir ?? env.RECSERVE_DATA_DIR ?? '.data');
  const named = cli.model ?? env.MODEL_PATH;
  const defaultDir = '/mnt/models';
  // Only when asked: a container whose model is missing must say so, not serve fake movies.
  const demo = cli.demo ?? bool(env.RECSERVE_DEMO, false, 'RECSERVE_DEMO');
  const useDemoModel = demo && named === undefined && !existsSync(path.join(defaultDir, 'model.onnx'));
  const annotations = readAnnotations(env.RECSERVE_PODINFO_ANNOTATIONS ?? '/etc/podinfo/annotations');
  const grpcMaxSet = annotations['seldon.io/grpc-max-message-size'] ?? env.RECSERVE_GRPC_MAX_MESSAGE_SIZE;
  const grpcMax = grpcMaxSet ?? String(64 * 1024 * 1024);
  const bodyLimitBytes = bytes(env.RECSERVE_BODY_LIMIT ?? '5mb', 'RECSERVE_BODY_LIMIT');
  const labels = parseJsonObject(env.PREDICTOR_LABELS, 'PREDICTOR_LABELS');
  const cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);

  return {
    httpPort: cli.httpPort ?? port(env.PREDICTIVE_UNIT_HTTP_SERVICE_PORT, 9000, 'PREDICTIVE_UNIT_HTTP_SERVICE_PORT'),
    grpcPort: cli.grpcPort ?? port(env.PREDICTIVE_UNIT_GRPC_SERVICE_PORT, 9500, 'PREDICTIVE_UNIT_GRPC_SERVICE_PORT'),
    metricsPort: cli.metricsPort ?? port(env.PREDICTIVE_UNIT_METRICS_SERVICE_PORT, 6000, 'PREDICTIVE_UNIT_METRICS_SERVICE_PORT'),
    metricsPath: normalisePath(env.PREDICTIVE_UNIT_METRICS_ENDPOINT ?? '/prometheus'),
    host: cli.host ?? env.RECSERVE_HOST ?? '0.0.0.0',
    modelDir: path.resolve(named ?? (useDemoModel ? path.join(dataDir, 'demo-model') : defaultDir)),
    demo,
    useDemoModel,
    startupWaitMs: int(env.RECSERVE_STARTUP_WAIT_MS, 20_000, 'RECSERVE_STARTUP_WAIT_MS', 0),
    dataDir,
    unitId: env.PREDICTIVE_UNIT_ID || null,
    unitImage: env.PREDICTIVE_UNIT_IMAGE || 'NOT_IMPLEMENTED:NOT_IMPLEMENTED',
    modelMetadata: env.MODEL_METADATA || null,
    includeMetricsInResponse: bool(env.INCLUDE_METRICS_IN_CLIENT_RESPONSE, true, 'INCLUDE_METRICS_IN_CLIENT_RESPONSE'),
    params: parseParameters(env.PREDICTIVE_UNIT_PARAMETERS),
    bodyLimitBytes,
    logLevel: (env.SELDON_LOG_LEVEL ?? env.LOG_LEVEL ?? 'info').toLowerCase(),
    logPayloads: bool(env.RECSERVE_LOG_PAYLOADS, false, 'RECSERVE_LOG_PAYLOADS'),
    drainTimeoutMs: int(env.RECSERVE_DRAIN_TIMEOUT_MS, 8000, 'RECSERVE_DRAIN_TIMEOUT_MS', 0),
    labels: {
      deploymentName: env.SELDON_DEPLOYMENT_ID ?? '',
      predictorName: env.PREDICTOR_ID ?? '',
      predictorVersion: typeof labels.version === 'string' ? labels.version : '',
    },
    grpcMaxMessageBytes: int(grpcMax, 0, 'grpc max message size', 1),
    grpcMaxReceiveBytes: grpcMaxSet === undefined ? bodyLimitBytes : int(grpcMaxSet, 0, 'grpc max message size', 1),
    inferenceWorkers: cli.workers ?? int(env.RECSERVE_WORKERS, Math.min(2, cores), 'RECSERVE_WORKERS', 0),
    intraOpThreads: int(env.RECSERVE_INTRA_OP_THREADS, 1, 'RECSERVE_INTRA_OP_THREADS', 1),
    maxBatchSize: int(env.RECSERVE_MAX_BATCH_SIZE, 64, 'RECSERVE_MAX_BATCH_SIZE', 1),
    maxBatchDelayMs: num(env.RECSERVE_MAX_BATCH_DELAY_MS, 2, 'RECSERVE_MAX_BATCH_DELAY_MS'),
    adminToken: env.RECSERVE_ADMIN_TOKEN || null,
    storeUrl: env.RECSERVE_STORE_URL || null,
    feedback: feedbackSettings(env),
    limits: loadLimits(env),
  };
}

/** PREDICTIVE_UNIT_PARAMETERS: `[{"name","value","type"}]`, value always a string, typed by `type`. */
export function parseParameters(raw: string | undefined): ModelParams {
  const params: ModelParams = { ...DEFAULT_PARAMS };
  if (!raw) return params;
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch (e) {
    throw new ConfigError(`Bad model parameter: PREDICTIVE_UNIT_PARAMETERS is not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(list)) throw new ConfigError('Bad model parameter: PREDICTIVE_UNIT_PARAMETERS must be a JSON array of {name, value, type}');
  for (const [i, p] of list.entries()) {
    if (typeof p !== 'object' || p === null) throw new ConfigError(`Bad model parameter: entry ${i} is not an object`);
    const { name, value, type } = p as Record<string, unknown>;
    if (typeof name !== 'string' || !(name in PARAM_SPEC)) {
      const known = Object.entries(PARAM_SPEC).map(([n, s]) => `${n} (${s.type}: ${s.doc})`).join('; ');
      throw new ConfigError(`Bad model parameter: unknown name ${JSON.stringify(name)}; known parameters: ${known}`);
    }
    const spec = PARAM_SPEC[name as keyof ModelParams];
    if (typeof type !== 'string' || !['INT', 'FLOAT', 'DOUBLE', 'STRING', 'BOOL'].includes(type)) {
      throw new ConfigError(`Bad model parameter: ${name} has type ${JSON.stringify(type)}; use one of INT, FLOAT, DOUBLE, STRING, BOOL`);
    }
    if (type !== spec.type) throw new ConfigError(`Bad model parameter: ${name} must have type ${spec.type}, got ${type}`);
    const text = String(value);
    if (spec.type === 'INT') {
      if (!/^-?\d+$/.test(text)) throw new ConfigError(`Bad model parameter: ${name}=${JSON.stringify(value)} is not an INT`);
      const n = Number(text);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(`Bad model parameter: ${name}=${n} must be ≥ ${spec.min}`);
      (params as unknown as Record<string, unknown>)[name] = n;
    } else if (spec.type === 'BOOL') {
      const b = parseBool(text);
      if (b === undefined) throw new ConfigError(`Bad model parameter: ${name}=${JSON.stringify(value)} is not a BOOL (true/false)`);
      (params as unknown as Record<string, unknown>)[name] = b;
    }
  }
  if (params.k > params.max_k) throw new ConfigError(`Bad model parameter: k=${params.k} exceeds max_k=${params.max_k}`);
  return params;
}

/** /etc/podinfo/annotations: one key="value" per line (Kubernetes downward API). */
export function readAnnotations(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([^=]+)="?(.*?)"?$/.exec(line.trim());
    if (m) out[m[1].trim()] = m[2].replace(/\\"/g, '"');
  }
  return out;
}

function port(v: string | undefined, dflt: number, name: string): number {
  const p = int(v, dflt, name, 0);
  if (p > 65535) throw new ConfigError(`${name}=${p} is not a TCP port`);
  return p;
}

function bytes(v: string, name: string): number {
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(v.trim());
  if (!m) throw new ConfigError(`${name}=${JSON.stringify(v)} is not a size (e.g. 5mb)`);
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Number(m[1]) * mult;
}

function normalisePath(p: string): string {
  return p.startsWith('/') ? p : `/${p}`;
}

function parseJsonObject(v: string | undefined, name: string): Record<string, unknown> {
  if (!v) return {};
  try {
    const o = JSON.parse(v);
    return typeof o === 'object' && o !== null ? o : {};
  } catch {
    throw new ConfigError(`${name} is not JSON: ${v}`);
  }
}
