// Start-up as a container sees it, with the real CLI in its own process: the demo model only when
// asked (--demo), a missing model at /mnt/models reported and never replaced by fake movies, and
// predictions that arrive while the model is still loading waiting for it instead of failing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectSeldonError } from '../helpers/server.js';

const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli/index.js');
const SELDON_MODEL = '/mnt/models/model.onnx';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function serve(args: string[], env: Record<string, string> = {}) {
  const ports = { http: await freePort(), metrics: await freePort(), grpc: await freePort() };
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'rs-start-'));
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'info',
    RECSERVE_HOST: '127.0.0.1',
    RECSERVE_DATA_DIR: dataDir,
    RECSERVE_PODINFO_ANNOTATIONS: path.join(dataDir, 'none'),
    PREDICTIVE_UNIT_HTTP_SERVICE_PORT: String(ports.http),
    PREDICTIVE_UNIT_METRICS_SERVICE_PORT: String(ports.metrics),
    PREDICTIVE_UNIT_GRPC_SERVICE_PORT: String(ports.grpc),
    ...env,
  };
  delete childEnv.MODEL_PATH;
  if (!('RECSERVE_DEMO' in env)) delete childEnv.RECSERVE_DEMO;
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [CLI, 'serve', ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, url: `http://127.0.0.1:${ports.http}`, dataDir, output: () => out, exited };
}

/** Polls until the REST port answers /live; returns its first body. */
async function firstLive(url: string, output: () => string): Promise<{ ready: boolean }> {
  for (let i = 0; i < 1000; i++) {
    try {
      const r = await fetch(`${url}/live`);
      if (r.status === 200) return (await r.json()) as { ready: boolean };
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never answered /live:\n${output()}`);
}

async function waitReady(url: string): Promise<void> {
  // SIGTERM is handled once start-up is done; before, it ends the process by its default action.
  for (let i = 0; i < 600 && (await fetch(`${url}/ready`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
}

const predict = (url: string) =>
  fetch(`${url}/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonData: { user_id: '1', k: 2 } }) });

describe.skipIf(existsSync(SELDON_MODEL))('no model at /mnt/models and no --demo', () => {
  it('stays up and not ready, says why in the log, /ready and every prediction, and builds no demo model', async () => {
    const p = await serve([]);
    try {
      await firstLive(p.url, p.output);
      for (let i = 0; i < 200 && !/no model at/.test(p.output()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(p.output()).toMatch(/no model at \/mnt\/models\/model\.onnx: /);

      const live = await fetch(`${p.url}/live`);
      expect(live.status).toBe(200);
      expect(await live.json()).toMatchObject({ status: 'alive', ready: false, model_version: null });

      const ready = await fetch(`${p.url}/ready`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { ready: boolean; reason: string };
      expect(body.ready).toBe(false);
      expect(body.reason).toMatch(/no model at \/mnt\/models\/model\.onnx: .*--demo/);

      // Both REST paths (the JSON fast path and express's form json=) refuse at once, with the reason.
      const fast = await predict(p.url);
      expect(fast.status).toBe(503);
      expect(expectSeldonError(await fast.json(), 'MICROSERVICE_UNAVAILABLE')).toMatch(/no model is loaded: no model at \/mnt\/models\/model\.onnx/);
      const form = await fetch(`${p.url}/predict`, { method: 'POST', body: new URLSearchParams({ json: JSON.stringify({ jsonData: { user_id: '1' } }) }) });
      expect(form.status).toBe(503);
      expectSeldonError(await form.json(), 'MICROSERVICE_UNAVAILABLE');

      expect(readdirSync(p.dataDir)).not.toContain('demo-model');
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
  });
});

describe('the demo model', () => {
  it('is served with --demo (what npm start passes)', async () => {
    const p = await serve(['--demo']);
    try {
      await firstLive(p.url, p.output);
      const r = await predict(p.url);
      expect(r.status).toBe(200);
      const body = (await r.json()) as { meta: { tags: Record<string, string> } };
      expect(body.meta.tags.model_name).toBe('demo-movies');
      expect(p.output()).toMatch(/--demo asked: serving the demo model/);
    } finally {
      await waitReady(p.url).catch(() => undefined);
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
  });

  it('a prediction sent while the model is still loading waits for it and answers 200', async () => {
    const p = await serve(['--demo'], { RECSERVE_WORKERS: '2', RECSERVE_STARTUP_WAIT_MS: '60000' });
    try {
      const live = await firstLive(p.url, p.output);
      const started = predict(p.url); // sent at once: before the warm-up when live said not ready
      const r = await started;
      expect(r.status).toBe(200);
      if (live.ready) console.warn('[startup.test] the model was already warm at the first /live: the wait was not exercised this run');
      else expect(p.output().indexOf('model loaded and warmed')).toBeGreaterThan(-1);
    } finally {
      await waitReady(p.url).catch(() => undefined);
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
  });
});
