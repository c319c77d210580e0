// Helpers for the feedback tests: an in-process server on loopback ports with a fresh data directory
// and captured logs, JSON calls, and the PostgreSQL URL the pg tests use.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../../src/server.js';
import { requestJson, testConfig } from '../helpers/server.js';

export interface FeedbackTestServer {
  server: RunningServer;
  url: string;
  dataDir: string;
  /** Every log line so far, parsed. */
  logs: Record<string, unknown>[];
  stop(opts?: { keepDir?: boolean }): Promise<void>;
}

export function tempDir(prefix = 'recserve-fb-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startFeedbackServer(env: Record<string, string> = {}, dataDir = tempDir()): Promise<FeedbackTestServer> {
  const config = testConfig(dataDir, { RECSERVE_WORKERS: '0', LOG_LEVEL: 'info', ...env });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const server = await startServer(config, log);
  return {
    server,
    url: `http://127.0.0.1:${server.ports.http}`,
    dataDir,
    logs,
    async stop(opts = {}) {
      await server.close();
      if (!opts.keepDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A JSON call; every body (strings included) is JSON-encoded. */
export const call = (method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}) =>
  requestJson(method, url, body === undefined ? undefined : JSON.stringify(body), headers);

export const post = (url: string, body: unknown, headers: Record<string, string> = {}) => call('POST', url, body, headers);

/** Item ids of the first recommendation list of a jsonData answer. */
export function itemsOf(body: any): string[] {
  return body.jsonData.recommendations[0].items.map((i: { item_id: string }) => i.item_id);
}

export const PG_URL = process.env.RECSERVE_TEST_PG_URL ?? 'postgres://recserve:recserve@127.0.0.1:5432/recserve_test';

/** Whether a PostgreSQL server answers at PG_URL (a visible skip outside CI when not; CI must have one). */
export async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function pgExec(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export function uniqueSchema(tag: string): string {
  return `rs_${tag}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
}
