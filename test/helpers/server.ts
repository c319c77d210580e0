// Starts the real server in-process on OS-chosen loopback ports, with a fresh data directory.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server.js';

export interface TestServer {
  server: RunningServer;
  url: string;
  metricsUrl: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** The server's Config for tests: OS-chosen loopback ports, the given data directory, no podinfo, quiet logs. */
export function testConfig(dataDir: string, env: Record<string, string> = {}) {
  return loadConfig({
    PREDICTIVE_UNIT_HTTP_SERVICE_PORT: '0',
    PREDICTIVE_UNIT_GRPC_SERVICE_PORT: '0',
    PREDICTIVE_UNIT_METRICS_SERVICE_PORT: '0',
    RECSERVE_HOST: '127.0.0.1',
    RECSERVE_DATA_DIR: dataDir,
    RECSERVE_PODINFO_ANNOTATIONS: path.join(dataDir, 'no-annotations'),
    LOG_LEVEL: 'silent',
    RECSERVE_DEMO: 'true', // the demo model when a test names none (the server only builds it when asked)
    ...env,
  });
}

export async function startTestServer(env: Record<string, string> = {}, options: ServerOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'recserve-test-'));
  const config = testConfig(dataDir, env);
  const server = await startServer(config, undefined, options);
  return {
    server,
    url: `http://127.0.0.1:${server.ports.http}`,
    metricsUrl: `http://127.0.0.1:${server.ports.metrics}`,
    dataDir,
    async stop() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Sends a JSON body (a string is sent as is) and returns status, parsed body (or text) and headers. */
export async function requestJson(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) => requestJson('POST', url, body, headers);

/** The Seldon error body shape every failure must have. */
export function expectSeldonError(body: any, reason?: string): string {
  if (typeof body !== 'object' || body === null) throw new Error(`not a Seldon error body: ${body}`);
  const s = body.status;
  if (s?.status !== 1 || s?.code !== -1 || typeof s?.info !== 'string' || typeof s?.reason !== 'string') {
    throw new Error(`not a Seldon error body: ${JSON.stringify(body)}`);
  }
  if (reason && s.reason !== reason) throw new Error(`expected reason ${reason}, got ${s.reason}: ${s.info}`);
  if (/\n\s+at /.test(s.info)) throw new Error(`stack trace leaked: ${s.info}`);
  return s.info as string;
}
