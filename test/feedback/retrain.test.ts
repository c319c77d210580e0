// Retraining: base data (the demo model's own knowledge) + stored feedback → ALS → holdout comparison
// with the current model → a new version directory only when not worse; the admin endpoint runs it in
// a child process and swaps the result in; the CLI exports the interactions as CSV and runs retrain.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CSV_COLUMNS, registerFeedbackCommands } from '../../src/cli/feedback-commands.js';
import { retrain } from '../../src/train/retrain.js';
import { SqliteStore } from '../../src/feedback/store/sqlite.js';
import type { InteractionStore } from '../../src/feedback/store/index.js';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { buildDemo, ensureDemoModel } from '../../src/model-format/demo.js';
import { call, post, startFeedbackServer, tempDir } from './helpers.js';

const catalog = buildDemo().extras.catalog;
const GENRES = ['Action', 'Comedy', 'Drama', 'Sci-Fi', 'Romance', 'Thriller', 'Animation', 'Documentary'];

/**
 * 40 new users, each loving one genre: 16 single-item feedbacks per user (reward 1 for the genre,
 * 0 otherwise), written round-robin so every user's newest rows land in the temporal holdout.
 */
async function plantFeedback(store: InteractionStore): Promise<number> {
  let n = 0;
  for (let round = 0; round < 16; round++) {
    for (let u = 0; u < 40; u++) {
      const genre = GENRES[u % GENRES.length];
      const item = 1 + ((u * 17 + round * 29) % 120);
      const reward = catalog[item - 1].genre === genre ? 1 : round % 4 === 0 ? 1 : 0; // a little noise
      const liked = catalog.findIndex((c, i) => c.genre === genre && i >= (round * 3) % 100) + 1;
      const itemId = String(round % 2 ? item : liked);
      const r = round % 2 ? reward : 1;
      await store.record({ puid: `plant-${u}-${round}`, modelVersion: 'demo-1', reward: r, transport: 'rest', createdAt: 1_700_000_000_000 + n }, [
        { userId: `fan-${u}`, itemId, reward: r, kind: 'list', servedBy: 'cold_start' },
      ], []);
      n++;
    }
  }
  return n;
}

let dir: string;
let modelDir: string;
let store: SqliteStore;

beforeAll(async () => {
  dir = tempDir('recserve-retrain-');
  modelDir = await ensureDemoModel(path.join(dir, 'demo-model'));
  store = SqliteStore.open(path.join(dir, 'interactions.db'));
  await plantFeedback(store);
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('retrain', () => {
  it('publishes a version that beats the current model on held-out feedback', async () => {
    const root = path.join(dir, 'models');
    const report = await retrain({ store, currentDir: modelDir, root });
    expect(report.published, report.reason).toBe(true);
    expect(report.version).toBe('r1');
    expect(report.metrics!.candidate.rmse).toBeLessThan(report.metrics!.current.rmse);
    expect(report.data.interactions).toBe(640);
    expect(report.data.holdoutRows).toBe(Math.floor(report.data.feedbackRows * 0.2)); // latest per (user, item), newest 20 %
    expect(readdirSync(root).sort()).toEqual(['r1']); // no staging left behind
    const published = JSON.parse(readFileSync(path.join(root, 'r1', 'publish.json'), 'utf8'));
    expect(published.version).toBe('r1');
    const a = await loadArtifact(path.join(root, 'r1'));
    expect(a.version).toBe('r1');
    expect(a.userIds).toContain('fan-0');
    expect(a.factors).not.toBeNull();
    expect(a.catalog?.[a.itemIds.indexOf('5')]).toEqual(catalog[4]);
    const training = JSON.parse(a.metadata['recserve.training']);
    expect(training).toMatchObject({ parent: 'demo-1', interactions_through: report.data.interactionsThrough });
    console.log(
      `[retrain] ${report.data.baseRows} base + ${report.data.interactions} stored rows → ${report.data.trainRows} train / ${report.data.holdoutRows} holdout; ` +
        `holdout RMSE current ${report.metrics!.current.rmse.toFixed(3)} → candidate ${report.metrics!.candidate.rmse.toFixed(3)} (AUC ${report.metrics!.current.auc?.toFixed(3)} → ${report.metrics!.candidate.auc?.toFixed(3)}); ${report.seconds}s`,
    );
  });

  it('publishes nothing when the candidate is worse, or the evidence too thin', async () => {
    const root = path.join(dir, 'models-gate');
    const worse = await retrain({ store, currentDir: modelDir, root, tolerance: -0.99 });
    expect(worse.published).toBe(false);
    expect(worse.reason).toMatch(/worse on the holdout/);
    const thin = await retrain({ store, currentDir: modelDir, root, minHoldout: 10_000 });
    expect(thin.published).toBe(false);
    expect(thin.reason).toMatch(/not enough feedback/);
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  });
});

describe('admin retrain → hot swap', () => {
  it('retrains in a child process, swaps the new version in, and rolls back in one call', async () => {
    const s = await startFeedbackServer({ RECSERVE_ADMIN_TOKEN: 'tok' });
    const auth = { authorization: 'Bearer tok' };
    try {
      const empty = await post(`${s.url}/admin/retrain`, {}, auth);
      expect(empty.status).toBe(200);
      expect(empty.body).toMatchObject({ error: null, report: null, skipped: expect.stringMatching(/nothing to learn from/) });
      await plantFeedback(s.server.feedback.stores.peek()!);
      const r = await post(`${s.url}/admin/retrain`, {}, auth);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.error).toBeNull();
      expect(r.body.report.published).toBe(true);
      expect(r.body.activated).toBe('r1');
      expect(r.body.active.version).toBe('r1');
      const p = await post(`${s.url}/api/v1.0/predictions`, { jsonData: { user_id: 'fan-1', k: 5 } });
      expect(p.body.meta.tags.model_version).toBe('r1');
      expect(p.body.jsonData.recommendations[0].strategy).toBe('personalized'); // a user the base model never knew
      const status = await call('GET', `${s.url}/admin/retrain`, undefined, auth);
      expect(status.body).toMatchObject({ running: false, last: { activated: 'r1', trigger: 'admin' } });
      const versions = await call('GET', `${s.url}/admin/versions`, undefined, auth);
      expect(versions.body.versions.find((v: { version: string }) => v.version === 'r1')).toMatchObject({ state: 'active', published: { published: true } });
      const back = await post(`${s.url}/admin/rollback`, {}, auth);
      expect(back.body.active.version).toBe('demo-1');
      const again = await post(`${s.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 5 } });
      expect(again.body.meta.tags.model_version).toBe('demo-1');
    } finally {
      await s.stop();
    }
  });
});

describe('scheduled retraining', () => {
  it('retrains on its own every RECSERVE_RETRAIN_INTERVAL_S and swaps the result in', async () => {
    const dataDir = tempDir('recserve-schedule-');
    const planted = SqliteStore.open(path.join(dataDir, 'interactions.db'));
    await plantFeedback(planted);
    await planted.close();
    const s = await startFeedbackServer({ RECSERVE_RETRAIN_INTERVAL_S: '1.5' }, dataDir);
    try {
      const t0 = Date.now();
      while (s.server.registry.current?.version !== 'r1' && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
      expect(s.server.registry.current?.version).toBe('r1');
      expect(s.server.control.retrainer.last).toMatchObject({ trigger: 'schedule', activated: 'r1' });
    } finally {
      await s.stop();
    }
  });
});

describe('CLI', () => {
  it('`recserve interactions export` writes the store as CSV; `recserve retrain` prints a report', async () => {
    const out = path.join(dir, 'export.csv');
    const program = new Command('recserve').exitOverride();
    registerFeedbackCommands(program);
    await program.parseAsync(['interactions', 'export', '--data-dir', dir, '--out', out], { from: 'user' });
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(641);
    expect(lines[1]).toMatch(/^1,1,1700000000,fan-0,\d+,1,list,cold_start,plant-0-0,demo-1$/);

    const logs: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
    try {
      const p2 = new Command('recserve').exitOverride();
      registerFeedbackCommands(p2);
      await p2.parseAsync(['retrain', '--data-dir', dir, '--model', modelDir, '--json'], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    const report = JSON.parse(logs.join('\n'));
    expect(report.published).toBe(true);
    expect(report.version).toBe('r2'); // r1 is already there
  });
});
