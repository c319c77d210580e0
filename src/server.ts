// Composition root: config → model registry → data plane → REST / metrics servers (gRPC joins here).
// Returns a handle so tests and the CLI start and stop the same thing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { ModelRegistry } from './model/registry.js';
import { DataPlane } from './protocol/dataplane.js';
import { createRestApp } from './rest/app.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { ensureDemoModel } from './train/demo.js';

export interface RunningServer {
  config: Config;
  dataplane: DataPlane;
  registry: ModelRegistry;
  metrics: Metrics;
  log: Logger;
  /** Bound ports (useful when the config asked for port 0). */
  ports: { http: number; metrics: number; grpc?: number };
  /** Stop accepting, drain in-flight requests (up to drainTimeoutMs), release the model. */
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const metrics = createMetrics(config);
  const registry = new ModelRegistry();
  const dataplane = new DataPlane(registry, config, metrics, log);

  const app = createRestApp({ config, dataplane, metrics, log });
  const httpServer = http.createServer(app);
  httpServer.keepAliveTimeout = 65_000; // above common load-balancer idle timeouts
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

  try {
    if (config.useDemoModel) {
      log.info({ dir: config.modelDir }, 'no model at /mnt/models and none named: serving the demo model');
      await ensureDemoModel(config.modelDir);
    }
    const t0 = Date.now();
    const model = await registry.load(config.modelDir);
    metrics.setModel(model.name, model.version, model.artifact.signature.kind);
    log.info(
      { dir: config.modelDir, name: model.name, version: model.version, signature: model.artifact.signature.kind, users: model.artifact.userIds.length, items: model.nItems, ms: Date.now() - t0 },
      'model loaded and warmed',
    );
  } catch (e) {
    await Promise.all([close(httpServer, 0), close(metricsServer, 0)]);
    throw e;
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    dataplane,
    registry,
    metrics,
    log,
    ports: { http: httpPort, metrics: metricsPort },
    close() {
      closing ??= (async () => {
        dataplane.startDraining();
        await Promise.all([close(httpServer, config.drainTimeoutMs), close(metricsServer, 0)]);
        await registry.close();
      })();
      return closing;
    },
  };
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
