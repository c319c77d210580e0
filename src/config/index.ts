// Every setting of the server, from the Seldon runtime contract (PREDICTIVE_UNIT_* env), recserve's
// own env and CLI flags, into one typed Config. Each concern is one Section (src/config/<concern>.ts)
// declaring, per field, its doc line, its environment variable and its named default; docs/configuration.md's
// configuration table lists exactly the variables of SETTINGS_SECTIONS (test/config.test.ts).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { feedbackSettings, FEEDBACK_SECTIONS, type FeedbackSettings } from './feedback.js';
import { INFERENCE, type InferenceSettings } from './inference.js';
import { LIMITS, loadLimits, type Limits } from './limits.js';
import { SERVER, type ServerSettings } from './server.js';
import { ConfigError, int, parseBool } from './env.js';
import { boolField, optionalTextField, readSection, shownDefault, textField, type Field, type Section } from './setting.js';
import { TRAINING } from './training.js';

export interface Config extends ServerSettings, InferenceSettings {
  /** Model directory: --model, MODEL_PATH, else /mnt/models (where Seldon's storage initializer writes). */
  modelDir: string;
  /** The demo model was asked for: --demo or RECSERVE_DEMO=true (`npm start` asks; the image never does). */
  demo: boolean;
  /** True when the demo was asked for, no model directory was named and /mnt/models has no model. */
  useDemoModel: boolean;
  /** Writable state (demo model, interaction store): --data-dir, RECSERVE_DATA_DIR, else ./.data. */
  dataDir: string;
  /**
   * Models loaded and unloaded by name through the V2 repository extension: --models-root,
   * RECSERVE_MODELS_ROOT (Seldon Core 2: /mnt/agent/models). Null: the repository serves only the default model.
   */
  modelsRoot: string | null;
  /**
   * Whether a default model is served (the one the Seldon v1 routes answer with). With a models root
   * and no model named (--model / MODEL_PATH) there is none: Seldon Core 2's agent loads every model.
   */
  serveDefaultModel: boolean;
  /** The name the default model answers to in V2 (--model-name, RECSERVE_MODEL_NAME; KServe passes the InferenceService name); default: the model's own name. */
  modelName: string | null;
  /** Typed PREDICTIVE_UNIT_PARAMETERS. */
  params: ModelParams;
  /** pino level: SELDON_LOG_LEVEL or LOG_LEVEL (debug, info, warn, error). */
  logLevel: string;
  /** Labels Seldon puts on every metric series. */
  labels: { deploymentName: string; predictorName: string; predictorVersion: string };
  /** gRPC max message size in bytes (send, and receive when set); seldon.io/grpc-max-message-size overrides. */
  grpcMaxMessageBytes: number;
  /**
   * Largest gRPC request: the configured max message size when one is set, else the REST body limit —
   * a message is decoded into objects before it can be checked, so 64 MiB of tiny values would not fit a 1 GiB pod.
   */
  grpcMaxReceiveBytes: number;
  /** Interaction store URL: postgres://… for a shared store, else SQLite under dataDir. */
  storeUrl: string | null;
  /** The feedback loop: prediction memory, bandit, fold-in, store, retraining (RECSERVE_PREDICTION_*, RECSERVE_BANDIT_*, …). */
  feedback: FeedbackSettings;
  /** Every size a client controls (src/config/limits.ts; RECSERVE_MAX_* and friends). */
  limits: Limits;
  /** What start-up should warn about once: RECSERVE_* variables no setting reads (a misspelt name would be silent). */
  warnings: string[];
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
  modelsRoot?: string;
  modelName?: string;
}

/** Settings whose value depends on others or on the pod (model directory, log level, gRPC size, labels). */
interface DeploymentSettings {
  modelPath: string | null;
  dataDir: string;
  demo: boolean;
  podinfoAnnotations: string;
  grpcMaxMessageSize: number | null;
  seldonLogLevel: string | null;
  logLevel: string;
  deploymentId: string;
  predictorId: string;
  predictorLabels: string | null;
  parameters: ModelParams;
  storeUrl: string | null;
  modelsRoot: string | null;
  modelName: string | null;
}

/** Default gRPC answer size when none is configured. */
export const GRPC_MAX_MESSAGE_DEFAULT = 64 * 1024 * 1024;
/** Where Seldon's storage initializer writes the model. */
export const DEFAULT_MODEL_DIR = '/mnt/models';

export const DEPLOYMENT: Section<DeploymentSettings> = {
  modelPath: optionalTextField('MODEL_PATH', DEFAULT_MODEL_DIR),
  dataDir: textField('RECSERVE_DATA_DIR', '.data'),
  demo: boolField('RECSERVE_DEMO', false),
  podinfoAnnotations: textField('RECSERVE_PODINFO_ANNOTATIONS', '/etc/podinfo/annotations'),
  grpcMaxMessageSize: { env: 'RECSERVE_GRPC_MAX_MESSAGE_SIZE', default: null, parse: (raw, name) => int(raw, 0, name, 1), shown: 'none' },
  seldonLogLevel: optionalTextField('SELDON_LOG_LEVEL', 'LOG_LEVEL'),
  logLevel: textField('LOG_LEVEL', 'info'),
  deploymentId: { ...textField('SELDON_DEPLOYMENT_ID', ''), shown: 'empty' },
  predictorId: { ...textField('PREDICTOR_ID', ''), shown: 'empty' },
  predictorLabels: optionalTextField('PREDICTOR_LABELS'),
  parameters: { env: 'PREDICTIVE_UNIT_PARAMETERS', default: { ...DEFAULT_PARAMS }, parse: (raw) => parseParameters(raw), shown: '[]' },
  storeUrl: optionalTextField('RECSERVE_STORE_URL', 'sqlite:<data dir>/interactions.db'),
  modelsRoot: optionalTextField('RECSERVE_MODELS_ROOT'),
  modelName: optionalTextField('RECSERVE_MODEL_NAME'),
};

/** Every section the server reads; docs/configuration.md's table has one row per variable in them. */
export const SETTINGS_SECTIONS: readonly Section<object>[] = [SERVER, DEPLOYMENT, INFERENCE, LIMITS, ...FEEDBACK_SECTIONS, TRAINING] as Section<object>[];

/** RECSERVE_* variables that are not settings: the retrain child's job hand-off, and the test and benchmark tools' own. */
const NOT_SETTINGS = /^RECSERVE_(RETRAIN_JOB$|TEST_|FUZZ_|BENCH_)/;

/** Each variable of SETTINGS_SECTIONS with its default as an operator writes it. */
export function settingsTable(): { env: string; default: string }[] {
  const rows: { env: string; default: string }[] = [];
  for (const section of SETTINGS_SECTIONS) {
    for (const field of Object.values(section) as Field<unknown>[]) {
      if (field.env !== null) rows.push({ env: field.env, default: shownDefault(field) });
    }
  }
  return rows;
}

/** One warning per RECSERVE_* variable no setting reads, naming the closest known one. */
export function unknownSettingWarnings(env: NodeJS.ProcessEnv): string[] {
  const known = settingsTable().map((r) => r.env);
  const names = new Set(known);
  return Object.keys(env)
    .filter((name) => name.startsWith('RECSERVE_') && !names.has(name) && !NOT_SETTINGS.test(name))
    .sort()
    .map((name) => {
      const near = closest(name, known);
      return `${name} is not a recserve setting and is ignored${near ? `; did you mean ${near}?` : ''}`;
    });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cli: CliOverrides = {}): Config {
  const d = readSection(DEPLOYMENT, env);
  const server = readSection(SERVER, env);
  const inference = readSection(INFERENCE, env);
  const dataDir = path.resolve(cli.dataDir ?? d.dataDir);
  const named = cli.model ?? d.modelPath ?? undefined;
  // Only when asked: a container whose model is missing must say so, not serve fake movies.
  const demo = cli.demo ?? d.demo;
  const modelsRootSet = cli.modelsRoot ?? d.modelsRoot;
  const modelsRoot = modelsRootSet ? path.resolve(modelsRootSet) : null;
  const serveDefaultModel = modelsRoot === null || named !== undefined;
  const useDemoModel = serveDefaultModel && demo && named === undefined && !existsSync(path.join(DEFAULT_MODEL_DIR, 'model.onnx'));
  const annotation = readAnnotations(d.podinfoAnnotations)['seldon.io/grpc-max-message-size'];
  const grpcMaxSet = annotation !== undefined ? int(annotation, 0, 'annotation seldon.io/grpc-max-message-size', 1) : d.grpcMaxMessageSize;
  const labels = parseJsonObject(d.predictorLabels, 'PREDICTOR_LABELS');

  return {
    ...server,
    ...inference,
    httpPort: cli.httpPort ?? server.httpPort,
    grpcPort: cli.grpcPort ?? server.grpcPort,
    metricsPort: cli.metricsPort ?? server.metricsPort,
    host: cli.host ?? server.host,
    inferenceWorkers: cli.workers ?? inference.inferenceWorkers,
    modelDir: path.resolve(named ?? (useDemoModel ? path.join(dataDir, 'demo-model') : DEFAULT_MODEL_DIR)),
    demo,
    useDemoModel,
    dataDir,
    modelsRoot,
    serveDefaultModel,
    modelName: cli.modelName ?? d.modelName,
    params: d.parameters,
    logLevel: (d.seldonLogLevel ?? d.logLevel).toLowerCase(),
    labels: {
      deploymentName: d.deploymentId,
      predictorName: d.predictorId,
      predictorVersion: typeof labels.version === 'string' ? labels.version : '',
    },
    grpcMaxMessageBytes: grpcMaxSet ?? GRPC_MAX_MESSAGE_DEFAULT,
    grpcMaxReceiveBytes: grpcMaxSet ?? server.bodyLimitBytes,
    storeUrl: d.storeUrl,
    feedback: feedbackSettings(env),
    limits: loadLimits(env),
    warnings: unknownSettingWarnings(env),
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

function parseJsonObject(v: string | null, name: string): Record<string, unknown> {
  if (!v) return {};
  try {
    const o = JSON.parse(v);
    return typeof o === 'object' && o !== null ? o : {};
  } catch {
    throw new ConfigError(`${name} is not JSON: ${v}`);
  }
}

/** The known name nearest a misspelt one (edit distance ≤ 3), if any. */
function closest(name: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = 4;
  for (const k of known) {
    const dist = editDistance(name, k);
    if (dist < bestDistance) [best, bestDistance] = [k, dist];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
