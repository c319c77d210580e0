// One retrain at a time across three in-process replicas on one PostgreSQL schema, and one serving
// version: all three asked to retrain at once → exactly one trains (the others answer 409), one version
// is published on the shared versions root, and every replica ends serving it; a rollback on B reaches
// A and C; a replica that starts later serves the recorded version; the admin API answers the same on
// every replica. Predictions from concurrent clients keep answering 200 throughout. Each replica has its
// own data directory whose `models` is one shared directory (a ReadWriteMany volume mounted at
// <data dir>/models in a cluster). Deadlines are generous; measured times are printed, not asserted.
// Skipped with a visible message only when no PostgreSQL answers outside CI.
import { mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo } from '../../src/model-format/demo.js';
import type { PostgresStore } from '../../src/feedback/store/postgres.js';
import type { InteractionStore } from '../../src/feedback/store/index.js';
import { call, PG_URL, pgExec, pgReachable, post, startFeedbackServer, tempDir, uniqueSchema, type FeedbackTestServer } from './helpers.js';

const havePg = await pgReachable();
if (!havePg && !process.env.CI) console.warn(`[feedback/retrain-replicas-pg.test] SKIPPED: no PostgreSQL at ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (set RECSERVE_TEST_PG_URL). CI runs it.`);

const schema = uniqueSchema('retrainrep');
const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
const TOKEN = 'replica-secret';
const auth = { authorization: `Bearer ${TOKEN}` };
const DEADLINE_MS = 20_000;
const catalog = buildDemo().extras.catalog;
const GENRES = ['Action', 'Comedy', 'Drama', 'Sci-Fi', 'Romance', 'Thriller', 'Animation', 'Documentary'];

let shared: string;
let a: FeedbackTestServer, b: FeedbackTestServer, c: FeedbackTestServer;
const extra: FeedbackTestServer[] = [];

/** A replica with its own data directory whose versions root is the shared directory. */
async function replica(): Promise<FeedbackTestServer> {
  const dataDir = tempDir('recserve-replica-');
  symlinkSync(shared, path.join(dataDir, 'models'), 'dir');
  return startFeedbackServer({ RECSERVE_STORE_URL: url, RECSERVE_ADMIN_TOKEN: TOKEN }, dataDir);
}

/** The feedback retrain.test.ts plants (40 genre fans × 16 rounds): enough for a retrain to publish. */
async function plantFeedback(store: InteractionStore): Promise<void> {
  let n = 0;
  for (let round = 0; round < 16; round++) {
    for (let u = 0; u < 40; u++) {
      const genre = GENRES[u % GENRES.length];
      const item = 1 + ((u * 17 + round * 29) % 120);
      const reward = catalog[item - 1].genre === genre ? 1 : round % 4 === 0 ? 1 : 0;
      const liked = catalog.findIndex((x, i) => x.genre === genre && i >= (round * 3) % 100) + 1;
      const r = round % 2 ? reward : 1;
      await store.record({ puid: `plant-${u}-${round}`, modelVersion: 'demo-1', reward: r, transport: 'rest', createdAt: Date.now() }, [
        { userId: `fan-${u}`, itemId: String(round % 2 ? item : liked), reward: r, kind: 'list', servedBy: 'cold_start' },
      ], []);
      n++;
    }
  }
}

beforeAll(async () => {
  if (!havePg) return;
  shared = tempDir('recserve-shared-models-');
  mkdirSync(shared, { recursive: true });
  a = await replica(); // first alone: it creates the schema
  [b, c] = await Promise.all([replica(), replica()]);
  await plantFeedback(a.server.feedback.stores.peek()!);
}, 120_000);
afterAll(async () => {
  for (const s of [a, b, c, ...extra]) await s?.stop();
  if (shared) rmSync(shared, { recursive: true, force: true });
  if (havePg) await pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

const serving = (s: FeedbackTestServer) => s.server.registry.current?.version;

/** Polls until every replica serves `version`; the time it took (ms). */
async function allServe(version: string, replicas: FeedbackTestServer[]): Promise<number> {
  const t0 = performance.now();
  while (!replicas.every((s) => serving(s) === version)) {
    if (performance.now() - t0 > DEADLINE_MS) throw new Error(`not within ${DEADLINE_MS} ms: every replica on ${version} (${replicas.map(serving).join(', ')})`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

/** Clients predicting round-robin on the replicas until stopped; counts answers and failures. */
function traffic(replicas: FeedbackTestServer[], clients = 6) {
  let stop = false;
  const failures: string[] = [];
  const versions = new Map<string, number>();
  let total = 0;
  const bodies = [{ jsonData: { user_id: '7', k: 5 } }, { jsonData: { users: ['1', 'fan-3', 'someone-new'], k: 3 } }, { data: { names: ['user_id', 'item_id'], ndarray: [['5', '9']] } }];
  const run = async (n0: number) => {
    for (let n = n0; !stop; n++) {
      const s = replicas[n % replicas.length];
      try {
        const r = await post(`${s.url}/api/v1.0/predictions`, bodies[n % bodies.length]);
        total++;
        if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        const v = r.body?.meta?.tags?.model_version;
        versions.set(v, (versions.get(v) ?? 0) + 1);
      } catch (e) {
        failures.push(`fetch: ${(e as Error).message}`);
      }
    }
  };
  const running = Array.from({ length: clients }, (_, i) => run(i));
  return {
    failures,
    versions,
    get total() {
      return total;
    },
    async end() {
      stop = true;
      await Promise.all(running);
    },
  };
}

describe.runIf(havePg || process.env.CI)('retraining across replicas on PostgreSQL', () => {
  it('three replicas asked at once: one retrains, one version is published, every replica serves it', async () => {
    const load = traffic([a, b, c]);
    const t0 = performance.now();
    const answers = await Promise.all([a, b, c].map((s) => post(`${s.url}/admin/retrain`, {}, auth)));
    const trainMs = performance.now() - t0;
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((x) => x === 200), JSON.stringify(answers.map((r) => r.body))).toHaveLength(1);
    expect(statuses.filter((x) => x === 409)).toHaveLength(2);
    const winner = answers.find((r) => r.status === 200)!.body;
    expect(winner.error).toBeNull();
    expect(winner.report.published, winner.report.reason).toBe(true);
    expect(winner.activated).toBe('r1');
    for (const busy of answers.filter((r) => r.status === 409)) {
      expect(busy.body.status).toMatchObject({ code: -1, status: 1, reason: 'MICROSERVICE_CONFLICT' });
      expect(busy.body.status.info).toMatch(/a retrain is running on another replica/);
    }
    const followMs = await allServe('r1', [a, b, c]);
    await new Promise((r) => setTimeout(r, 200)); // a little traffic on r1 everywhere
    await load.end();
    expect(load.failures).toEqual([]);
    expect(readdirSync(shared).filter((n) => /^r\d+$/.test(n))).toEqual(['r1']); // one version published

    // The shared record: one retrain row, published r1, by the replica that answered 200.
    const runs = await a.server.feedback.coordination!.history();
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ outcome: 'published', version: 'r1', replica: winner.replica });
    expect(runs[0].finishedAt).not.toBeNull();

    // The admin API answers the same on every replica.
    const status = await Promise.all([a, b, c].map((s) => call('GET', `${s.url}/admin/retrain`, undefined, auth)));
    for (const st of status) {
      expect(st.body).toMatchObject({ running: false, running_on: null, source: 'store', last: { activated: 'r1', trigger: 'admin', replica: winner.replica }, active: { version: 'r1' } });
    }
    const versions = await Promise.all([a, b, c].map((s) => call('GET', `${s.url}/admin/versions`, undefined, auth)));
    for (const v of versions) {
      expect(v.body.serving).toMatchObject({ version: 'r1', isBase: false, replica: winner.replica });
      expect(v.body.active.version).toBe('r1');
      expect(v.body.versions.find((x: { version: string }) => x.version === 'r1')).toMatchObject({ state: 'active', published: { published: true } });
    }
    const p = await post(`${c.url}/api/v1.0/predictions`, { jsonData: { user_id: 'fan-1', k: 5 } });
    expect(p.body.meta.tags.model_version).toBe('r1');
    expect(p.body.jsonData.recommendations[0].strategy).toBe('personalized'); // learnt by the retrain on another replica
    console.log(
      `[retrain replicas] 3 asked at once → ${statuses.join('/')}; retrain + publish ${trainMs.toFixed(0)} ms, every replica on r1 ${followMs.toFixed(0)} ms later; ` +
        `${load.total} predictions from 6 clients meanwhile, ${load.failures.length} failed (${[...load.versions].map(([v, n]) => `${v}×${n}`).join(', ')})`,
    );
  }, 120_000);

  it('a retrain asked while another replica holds the lock answers 409 and records nothing', async () => {
    const lease = await b.server.feedback.coordination!.tryLock('test');
    expect(lease).not.toBeNull();
    try {
      const busy = await post(`${a.url}/admin/retrain`, { wait: false }, auth);
      expect(busy.status).toBe(409);
      expect(busy.body.status.info).toMatch(new RegExp(`another replica \\(${b.server.feedback.coordination!.replica}, test`));
      const st = await call('GET', `${c.url}/admin/retrain`, undefined, auth);
      expect(st.body).toMatchObject({ running: true, running_on: { replica: b.server.feedback.coordination!.replica, trigger: 'test' } });
    } finally {
      await lease!.finish('skipped', null, { note: 'held by the test' });
    }
    const st = await call('GET', `${a.url}/admin/retrain`, undefined, auth);
    expect(st.body.running).toBe(false);
  });

  it('a replica that dies holding the lock blocks nobody: its run is marked abandoned by the next retrain', async () => {
    const coordB = b.server.feedback.coordination!;
    const lease = await coordB.tryLock('doomed');
    expect(lease).not.toBeNull();
    const { rows } = await (a.server.feedback.stores.peek() as PostgresStore).pool.query(
      `SELECT lock_pid FROM ${schema}.retrain_runs WHERE id = $1`,
      [lease!.runId],
    );
    // What a SIGKILL of B does to its lock connection.
    await pgExec(`SELECT pg_terminate_backend(${Number(rows[0].lock_pid)})`);
    const st = await call('GET', `${c.url}/admin/retrain`, undefined, auth);
    expect(st.body.running).toBe(false); // the row is unfinished, but nobody holds its lock
    const leaseA = await a.server.feedback.coordination!.tryLock('after');
    expect(leaseA).not.toBeNull();
    await leaseA!.finish('skipped', null, {});
    const doomed = (await coordB.history()).find((r) => r.id === lease!.runId)!;
    expect(doomed).toMatchObject({ outcome: 'abandoned', trigger: 'doomed' });
    expect(doomed.finishedAt).not.toBeNull();
  });

  it('a rollback on B reaches A and C; a replica that starts later serves the recorded version', async () => {
    const load = traffic([a, b, c]);
    const t0 = performance.now();
    const back = await post(`${b.url}/admin/rollback`, {}, auth);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.active.version).toBe('demo-1');
    expect(back.body.serving).toMatchObject({ version: 'demo-1', isBase: true, replica: b.server.feedback.coordination!.replica, reason: 'rollback' });
    const answeredMs = performance.now() - t0;
    await allServe('demo-1', [a, b, c]);
    const followMs = performance.now() - t0;
    await load.end();
    expect(load.failures).toEqual([]);

    // Forward again through a reload on C; then a fourth replica starts on what the store records,
    // although the shared ACTIVE.json was written for other base-model directories.
    const t1 = performance.now();
    const fwd = await post(`${c.url}/admin/reload`, { version: 'r1' }, auth);
    expect(fwd.status).toBe(200);
    await allServe('r1', [a, b, c]);
    const reloadMs = performance.now() - t1;
    const d = await replica();
    extra.push(d);
    expect(serving(d)).toBe('r1');
    expect(d.logs.some((l) => String(l.msg).startsWith('starting from the version the other replicas serve'))).toBe(true);
    console.log(
      `[retrain replicas] rollback on B answered in ${answeredMs.toFixed(0)} ms, A and C on demo-1 ${followMs.toFixed(0)} ms after the call (${load.total} predictions, ${load.failures.length} failed); ` +
        `reload r1 on C → all three on r1 ${reloadMs.toFixed(0)} ms after the call; a new replica started on r1`,
    );
  }, 120_000);
});
