// The server process: ports and addresses from the Seldon runtime contract (PREDICTIVE_UNIT_*), its
// identity in Seldon's meta, the admin token, and the timers of connections, probes and shutdown.
import { ConfigError, int } from './env.js';
import { boolField, bytesField, defaultsOf, intField, optionalTextField, textField, type Field, type Section } from './setting.js';

export interface ServerSettings {
  /** REST port; 9000 is what the Seldon operator assigns first. */
  httpPort: number;
  /** gRPC port; 9500 is the operator's first gRPC port. */
  grpcPort: number;
  /** Prometheus port. */
  metricsPort: number;
  /** Prometheus path; the operator sets /prometheus. /metrics is also served. */
  metricsPath: string;
  /** Interface to bind; Seldon's executor reaches the container over the pod network. */
  host: string;
  /** How long a prediction arriving before the model is warm waits for it (ms); the executor's readiness is a TCP connect. */
  startupWaitMs: number;
  /** Time SIGTERM waits for in-flight requests before closing connections (ms); the pod has ~10 s after Seldon's 10 s preStop. */
  drainTimeoutMs: number;
  /** How long an idle HTTP/1.1 connection is kept open (ms): above common load-balancer idle timeouts (60 s). */
  keepAliveTimeoutMs: number;
  /** How often the gRPC health service re-reads readiness for its Watch streams (ms). */
  healthPollMs: number;
  /** Largest request body in bytes (413 beyond); the variable takes bytes or a kb/mb/gb suffix. */
  bodyLimitBytes: number;
  /** This node's entry in meta.requestPath (PREDICTIVE_UNIT_ID / PREDICTIVE_UNIT_IMAGE). */
  unitId: string | null;
  unitImage: string;
  /** YAML or JSON merged over the metadata derived from the model. */
  modelMetadata: string | null;
  /** Echo meta.metrics in answers, as the Python wrapper does. */
  includeMetricsInResponse: boolean;
  /** Log request payloads; off because payloads may hold user data. */
  logPayloads: boolean;
  /** Token that enables the admin endpoints (reload, retrain, rollback); unset = admin off. */
  adminToken: string | null;
}

function portField(env: string, dflt: number): Field<number> {
  return {
    env,
    default: dflt,
    parse: (raw, name) => {
      const p = int(raw, dflt, name, 0);
      if (p > 65535) throw new ConfigError(`${name}=${p} is not a TCP port`);
      return p;
    },
  };
}

export const SERVER: Section<ServerSettings> = {
  httpPort: portField('PREDICTIVE_UNIT_HTTP_SERVICE_PORT', 9000),
  grpcPort: portField('PREDICTIVE_UNIT_GRPC_SERVICE_PORT', 9500),
  metricsPort: portField('PREDICTIVE_UNIT_METRICS_SERVICE_PORT', 6000),
  metricsPath: { env: 'PREDICTIVE_UNIT_METRICS_ENDPOINT', default: '/prometheus', parse: (raw) => (raw.startsWith('/') ? raw : `/${raw}`) },
  host: textField('RECSERVE_HOST', '0.0.0.0'),
  startupWaitMs: intField('RECSERVE_STARTUP_WAIT_MS', 20_000),
  drainTimeoutMs: intField('RECSERVE_DRAIN_TIMEOUT_MS', 8000),
  keepAliveTimeoutMs: intField('RECSERVE_KEEP_ALIVE_TIMEOUT_MS', 65_000, 1),
  healthPollMs: intField('RECSERVE_HEALTH_POLL_MS', 1000, 1),
  bodyLimitBytes: bytesField('RECSERVE_BODY_LIMIT', '5mb'),
  unitId: optionalTextField('PREDICTIVE_UNIT_ID'),
  unitImage: textField('PREDICTIVE_UNIT_IMAGE', 'NOT_IMPLEMENTED:NOT_IMPLEMENTED'),
  modelMetadata: optionalTextField('MODEL_METADATA'),
  includeMetricsInResponse: boolField('INCLUDE_METRICS_IN_CLIENT_RESPONSE', true),
  logPayloads: boolField('RECSERVE_LOG_PAYLOADS', false),
  adminToken: optionalTextField('RECSERVE_ADMIN_TOKEN', 'off'),
};

export const SERVER_DEFAULTS: ServerSettings = defaultsOf(SERVER);
