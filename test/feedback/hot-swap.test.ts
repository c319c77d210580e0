// Versions, hot swap and rollback through the admin API, on the real serving stack (worker pool +
// micro-batcher): 10 swaps under concurrent traffic with zero failed requests; corrupt, unusable and
// missing versions refused with a log line while the old version keeps serving; rollback in one call;
// a restart resumes the version last served; admin auth (404 off, 401, 403).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeArtifact } from '../../src/model-format/export-onnx.js';
import { buildDemo } from '../../src/model-format/demo.js';
import { call, post, startFeedbackServer, tempDir, type FeedbackTestServer } from './helpers.js';

const TOKEN = 'swap-secret';
const auth = { authorization: `Bearer ${TOKEN}` };

async function publish(root: string, version: string, tweak: (m: ReturnType<typeof buildDemo>['model']) => void = () => undefined) {
  const { model, extras } = buildDemo();
  tweak(model);
  await writeArtifact(path.join(root, version), model, { ...extras, version });
}

let t: FeedbackTestServer;
let root: string;

beforeAll(async () => {
  const dataDir = tempDir('recserve-swap-');
  root = path.join(dataDir, 'models');
  await publish(root, 'r1');
  await publish(root, 'r2', (m) => m.itemBias!.forEach((b, i) => (m.itemBias![i] = b + (i % 2 ? 0.4 : -0.4))));
  await publish(root, 'r4-nan', (m) => m.userFactors.fill(Number.NaN));
  mkdirSync(path.join(root, 'r3-corrupt'));
  writeFileSync(path.join(root, 'r3-corrupt', 'model.onnx'), Buffer.from('this is not an onnx model'));
  // The real serving stack: worker threads (RECSERVE_WORKERS unset → the default) behind the batcher.
  t = await startFeedbackServer({ RECSERVE_ADMIN_TOKEN: TOKEN, RECSERVE_WORKERS: '2' }, dataDir);
});
afterAll(async () => t?.stop());

const reload = (version?: string) => post(`${t.url}/admin/reload`, version ? { version } : {}, auth);
const versionNow = async () => (await post(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 1 } })).body.meta.tags.model_version as string;

describe('hot swap under load', () => {
  it('swaps 10 times under concurrent traffic with zero failed requests; refuses bad versions meanwhile', async () => {
    const swapsBefore = t.server.registry.swaps;
    let stop = false;
    let total = 0;
    const failures: string[] = [];
    const versions = new Map<string, number>();
    const bodies = [
      { jsonData: { user_id: '7', k: 5 } },
      { jsonData: { users: ['1', '2', 'someone-new'], k: 3 } },
      { data: { names: ['user_id'], ndarray: [['3'], ['4']] }, meta: { tags: { k: 4 } } },
      { data: { names: ['user_id', 'item_id'], ndarray: [['5', '9'], ['6', '10']] } },
    ];
    const client = async (c: number) => {
      for (let n = 0; !stop; n++) {
        const body = bodies[(c + n) % bodies.length];
        try {
          const r = await post(`${t.url}/api/v1.0/predictions`, body);
          total++;
          if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
          const v = r.body?.meta?.tags?.model_version;
          versions.set(v, (versions.get(v) ?? 0) + 1);
          if (n % 5 === 0 && r.status === 200) {
            const fb = await post(`${t.url}/api/v1.0/feedback`, { response: { meta: { puid: r.body.meta.puid } }, reward: 0.5 });
            total++;
            if (fb.status !== 200) failures.push(`feedback ${fb.status} ${JSON.stringify(fb.body).slice(0, 200)}`);
          }
        } catch (e) {
          failures.push(`fetch: ${(e as Error).message}`);
        }
      }
    };
    const clients = Array.from({ length: 12 }, (_, c) => client(c));
    const refused: number[] = [];
    const t0 = Date.now();
    for (let s = 0; s < 10; s++) {
      const target = s % 2 ? 'r2' : 'r1';
      const r = await reload(target);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.active.version).toBe(target);
      if (s === 4) {
        // Bad versions in the middle of it all: refused, and r1 keeps answering.
        for (const bad of ['r3-corrupt', 'r4-nan']) {
          const b = await reload(bad);
          refused.push(b.status);
          expect(b.body.status.info).toMatch(/refused/);
          expect(b.body.status.info).toMatch(/still serving r1/);
        }
        const missing = await reload('r9');
        refused.push(missing.status);
        expect(await versionNow()).toBe('r1');
      }
      await new Promise((res) => setTimeout(res, 60));
    }
    const swapMs = Date.now() - t0;
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(t.server.registry.swaps - swapsBefore).toBe(10);
    expect(refused).toEqual([400, 400, 404]);
    expect(versions.get('r1')).toBeGreaterThan(0);
    expect(versions.get('r2')).toBeGreaterThan(0);
    expect([...versions.keys()].every((v) => ['demo-1', 'r1', 'r2'].includes(v))).toBe(true);
    const refusals = t.logs.filter((l) => l.level === 50 && String(l.msg).startsWith('model version refused'));
    expect(refusals.map((l) => String(l.msg))).toEqual([
      expect.stringMatching(/r3-corrupt.*not a readable ONNX model.*still serving r1/s),
      expect.stringMatching(/warm-up inference.*still serving r1/s),
      expect.stringMatching(/r9 does not exist; still serving r1/),
    ]);
    console.log(
      `[hot swap] 10 swaps (r1⇄r2) in ${swapMs} ms under 12 concurrent clients: ${total} requests, ${failures.length} failed; answered by ${[...versions].map(([v, n]) => `${v}×${n}`).join(', ')}; corrupt/unusable/missing versions refused with ${refused.join('/')}`,
    );
  });

  it('rolls back in one call, and a restart resumes the version last served', async () => {
    expect(await versionNow()).toBe('r2');
    const r = await post(`${t.url}/admin/rollback`, {}, auth);
    expect(r.status).toBe(200);
    expect(r.body.active.version).toBe('r1');
    expect(r.body.previous.version).toBe('r2');
    expect(await versionNow()).toBe('r1');
    const v = await call('GET', `${t.url}/admin/versions`, undefined, auth);
    expect(v.body.versions.filter((x: { state: string }) => x.state === 'active').map((x: { version: string }) => x.version)).toEqual(['r1']);
    await t.stop({ keepDir: true });
    t = await startFeedbackServer({ RECSERVE_ADMIN_TOKEN: TOKEN }, t.dataDir);
    expect(await versionNow()).toBe('r1');
    const none = await post(`${t.url}/admin/rollback`, {}, auth);
    expect(none.status).toBe(409);
    const base = await reload('base');
    expect(base.body.active.version).toBe('demo-1');
  });
});

describe('admin authentication', () => {
  it('is off without a token (404), and requires the bearer token when set (401, 403)', async () => {
    const off = await startFeedbackServer();
    try {
      for (const [m, p] of [['GET', '/admin/versions'], ['POST', '/admin/reload'], ['POST', '/admin/rollback'], ['POST', '/admin/retrain'], ['GET', '/admin/retrain']] as const) {
        const r = await call(m, `${off.url}${p}`, m === 'POST' ? {} : undefined, auth);
        expect(r.status, p).toBe(404);
        expect(r.body.status.info).toMatch(/RECSERVE_ADMIN_TOKEN/);
      }
    } finally {
      await off.stop();
    }
    const none = await post(`${t.url}/admin/reload`, {});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body.status).toMatchObject({ code: -1, status: 1, reason: 'MICROSERVICE_UNAUTHORIZED' });
    const wrong = await post(`${t.url}/admin/reload`, {}, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.status).toMatchObject({ code: -1, status: 1, reason: 'MICROSERVICE_FORBIDDEN' });
    expect(await versionNow()).toBe('demo-1');
  });
});
