// The real CLI as a separate process: start-up, a bad parameter stopping start-up, and SIGTERM
// draining an in-flight request before exiting 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli/index.js');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function run(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let out = '';
  const child = spawn(process.execPath, [CLI, 'serve'], { env: { ...process.env, LOG_LEVEL: 'info', RECSERVE_HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitReady(url: string, output: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/ready`)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server never became ready:\n${output()}`);
}

describe('process lifecycle', () => {
  it('a bad PREDICTIVE_UNIT_PARAMETERS stops start-up with a clear message', async () => {
    const p = run({ PREDICTIVE_UNIT_PARAMETERS: '[{"name":"k","value":"ten","type":"INT"}]', RECSERVE_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'rs-')) });
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/Bad model parameter: k="ten" is not an INT/);
  });

  it('a missing model directory stops start-up naming the directory', async () => {
    const p = run({ MODEL_PATH: '/nonexistent/model-dir', PREDICTIVE_UNIT_HTTP_SERVICE_PORT: String(await freePort()), PREDICTIVE_UNIT_METRICS_SERVICE_PORT: String(await freePort()), PREDICTIVE_UNIT_GRPC_SERVICE_PORT: String(await freePort()) });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/no model.onnx in \/nonexistent\/model-dir/);
  });

  it('serves the demo model when asked (RECSERVE_DEMO, as npm start passes --demo), logs JSON lines, and drains on SIGTERM', async () => {
    const port = await freePort();
    const p = run({
      RECSERVE_DEMO: 'true',
      PREDICTIVE_UNIT_HTTP_SERVICE_PORT: String(port),
      PREDICTIVE_UNIT_METRICS_SERVICE_PORT: String(await freePort()),
      PREDICTIVE_UNIT_GRPC_SERVICE_PORT: String(await freePort()),
      RECSERVE_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'rs-')),
    });
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, p.output);

    // Start a request and hold its body open: it is in flight when SIGTERM arrives.
    const body = JSON.stringify({ jsonData: { user_id: '1', k: 3 } });
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(`${url}/api/v1.0/predictions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        p.child.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(10)), 300);
      }, 100);
    });
    const r = await answer;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).jsonData.recommendations[0].items).toHaveLength(3);
    expect(await p.exited).toBe(0);

    const lines = p.output().split('\n').filter((l) => l.startsWith('{'));
    const request = lines.map((l) => JSON.parse(l)).find((e) => e.msg === 'request' && e.route === '/api/v1.0/predictions');
    expect(request).toMatchObject({ status: 200, method: 'POST' });
    expect(typeof request.puid).toBe('string');
    expect(typeof request.duration_ms).toBe('number');
    expect(request.payload).toBeUndefined(); // payloads are not logged unless asked
    expect(lines.some((l) => l.includes('draining'))).toBe(true);
  });
});
