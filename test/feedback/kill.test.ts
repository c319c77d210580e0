// Fault test with a real child process: `recserve serve` takes a stream of concurrent feedback and is
// killed with SIGKILL mid-stream. After the kill, every acknowledged feedback is in the store, no
// feedback is partially stored, the database passes its integrity check, and a restarted server
// rebuilds the bandit posterior from it. Needs the compiled CLI (npx tsc -p . first).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/util/paths.js';
import { post, startFeedbackServer, tempDir } from './helpers.js';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'index.js');

function startChild(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npx tsc -p . before this test`);
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info', RECSERVE_WORKERS: '0', RECSERVE_DEMO: 'true', RECSERVE_PODINFO_ANNOTATIONS: path.join(dataDir, 'none') };
  delete env.MODEL_PATH; // no model named: the child serves the demo model (asked for) from its data directory
  delete env.RECSERVE_STORE_URL;
  const child = spawn(process.execPath, [CLI, 'serve', '--data-dir', dataDir, '--http-port', '0', '--grpc-port', '0', '--metrics-port', '0', '--host', '127.0.0.1'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${buf.slice(-2000)}`)), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      for (const line of buf.split('\n')) {
        if (!line.includes('"ports"')) continue;
        try {
          const j = JSON.parse(line);
          if (j.ports?.http) {
            clearTimeout(timer);
            resolve({ child, url: `http://127.0.0.1:${j.ports.http}` });
          }
        } catch {
          /* partial line */
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${buf.slice(-2000)}`)));
  });
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('SIGKILL in the middle of a feedback stream', () => {
  it('loses no acknowledged feedback and leaves no partial row', async () => {
    const dataDir = tempDir('recserve-kill-');
    dirs.push(dataDir);
    const { child, url } = await startChild(dataDir);
    const acked = new Set<string>();
    let sent = 0;
    let stop = false;
    const ITEMS = 5;
    const client = async (c: number) => {
      for (let n = 0; !stop; n++) {
        // Feedback about a prediction the server made: only remembered cold-start impressions move the bandit.
        let puid: string;
        let items: string[];
        try {
          const p = await post(`${url}/api/v1.0/predictions`, { jsonData: { user_id: `killer-${c}-${n}`, k: ITEMS } });
          if (p.status !== 200) return;
          puid = p.body.meta.puid;
          items = p.body.jsonData.recommendations[0].items.map((it: { item_id: string }) => it.item_id);
        } catch {
          return; // the server is gone
        }
        const body = {
          response: { meta: { puid } },
          reward: n % 2 ? 1 : 0.25,
          ...(n % 3 === 0 ? { truth: { jsonData: [items[0]] } } : {}),
        };
        sent++;
        try {
          const r = await post(`${url}/api/v1.0/feedback`, body);
          if (r.status === 200) acked.add(puid);
        } catch {
          return; // the server is gone
        }
      }
    };
    const clients = Array.from({ length: 8 }, (_, c) => client(c));
    const t0 = Date.now();
    while (acked.size < 200 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL'); // requests are in flight right now
    stop = true;
    await Promise.all(clients);
    await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r));
    expect(child.signalCode).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(100);

    const db = new Database(path.join(dataDir, 'interactions.db'));
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const stored = new Set((db.prepare('SELECT puid FROM feedback').all() as { puid: string }[]).map((r) => r.puid));
      const lost = [...acked].filter((p) => !stored.has(p));
      expect(lost).toEqual([]);
      const partial = db
        .prepare('SELECT f.id, f.n_rows, COUNT(i.id) AS got FROM feedback f LEFT JOIN interactions i ON i.feedback_id = f.id GROUP BY f.id HAVING got != f.n_rows OR got != ?')
        .all(ITEMS);
      expect(partial).toEqual([]);
      // The bandit counts were written in the same transactions as the rows.
      const arms = db.prepare('SELECT item_id, successes, failures, trials FROM bandit_arms ORDER BY item_id').all();
      const fromRows = db
        .prepare(
          `SELECT item_id, SUM(reward) AS successes, SUM(1 - reward) AS failures, COUNT(*) AS trials FROM interactions
           WHERE served_by IN ('cold_start', 'exploration') GROUP BY item_id ORDER BY item_id`,
        )
        .all();
      expect(arms.length).toBeGreaterThan(0);
      for (const [j, a] of (arms as { successes: number; failures: number }[]).entries()) {
        const b = fromRows[j] as { successes: number; failures: number };
        expect(a).toMatchObject({ item_id: (b as unknown as { item_id: string }).item_id, trials: (b as unknown as { trials: number }).trials });
        expect(a.successes).toBeCloseTo(b.successes, 9);
        expect(a.failures).toBeCloseTo(b.failures, 9);
      }
      console.log(`[kill] sent ${sent} feedbacks, ${acked.size} acknowledged before SIGKILL, ${stored.size} stored, ${lost.length} acknowledged-but-lost, ${partial.length} partial`);
    } finally {
      db.close();
    }

    // A restarted server rebuilds the posterior from the store and takes feedback again.
    const s = await startFeedbackServer({}, dataDir);
    try {
      const arm = s.server.feedback.bandit.countsOf('1');
      const row = (await s.server.feedback.stores.peek()!.arms()).find((a) => a.itemId === '1');
      expect(arm).toEqual(row ? { successes: row.successes, failures: row.failures, trials: row.trials } : { successes: 0, failures: 0, trials: 0 });
      const p = await post(`${s.url}/api/v1.0/predictions`, { jsonData: { user_id: 'after-kill', k: 3 } });
      const r = await post(`${s.url}/api/v1.0/feedback`, { response: { meta: { puid: p.body.meta.puid } }, reward: 1 });
      expect(r.status).toBe(200);
    } finally {
      await s.stop({ keepDir: true });
    }
  });
});
