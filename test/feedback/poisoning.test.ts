// Feedback cannot poison the model: the server's memory of a prediction beats the client's claim of
// what was shown, and claimed impressions the server has no record of never move the bandit; ids outside the catalog create no interactions and no bandit arms (counted, tagged);
// a retried feedback is stored once; a refused feedback stores nothing; truth and ids are bounded;
// a retrain drops invented items and will not publish what only clients' feedback vouches for.
import path from 'node:path';
import { readdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retrain } from '../../src/train/retrain.js';
import { SqliteStore } from '../../src/feedback/store/sqlite.js';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { buildDemo, ensureDemoModel } from '../../src/model-format/demo.js';
import { itemsOf, post, startFeedbackServer, tempDir, type FeedbackTestServer } from './helpers.js';

const catalog = buildDemo().extras.catalog;
const INJECTED = '<img src=x onerror=alert(1)>';

let t: FeedbackTestServer;
const predict = (body: unknown) => post(`${t.url}/api/v1.0/predictions`, body);
const feedback = (body: unknown) => post(`${t.url}/api/v1.0/feedback`, body);
const store = () => t.server.feedback.stores.peek()!;

beforeAll(async () => {
  t = await startFeedbackServer({ RECSERVE_MAX_TRUTH_ITEMS: '50', RECSERVE_MAX_ID_LENGTH: '64' });
});
afterAll(async () => t?.stop());

describe('what was shown comes from the server', () => {
  it('ignores the response a client claims when the puid is remembered', async () => {
    const p = await predict({ jsonData: { user_id: '7', k: 3 } });
    const shown = itemsOf(p.body);
    const claimed = { meta: { puid: p.body.meta.puid }, jsonData: { recommendations: [{ user_id: '7', strategy: 'cold_start', items: [{ item_id: INJECTED }, { item_id: '99' }] }] } };
    const r = await feedback({ response: claimed, reward: 1 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.meta.tags.feedback_interactions).toBe(3);
    const rows = (await store().userInteractions('7')).slice(-3);
    expect(rows.map((x) => x.itemId).sort()).toEqual([...shown].sort());
    expect(rows.every((x) => x.servedBy === 'personalized')).toBe(true);
    expect(t.server.feedback.bandit.countsOf(INJECTED)).toEqual({ successes: 0, failures: 0, trials: 0 });
  });

  it('drops items not in the catalog from claimed payloads and truth, counts them, and derives the strategy itself', async () => {
    const armsBefore = (await store().arms()).length;
    const r = await feedback({
      request: { jsonData: { user_id: '8', k: 3 } },
      response: { jsonData: { recommendations: [{ user_id: '8', strategy: 'cold_start', items: [{ item_id: INJECTED, exploration: true }, { item_id: '12' }, { item_id: 'no-such-item' }] }] } },
      reward: 1,
      truth: { jsonData: ['12', 'invented-1', 'invented-2'] },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.meta.tags).toMatchObject({ feedback_interactions: 1, feedback_ignored_items: 4 });
    const rows = await store().userInteractions('8');
    expect(rows.at(-1)).toMatchObject({ itemId: '12', kind: 'chosen', servedBy: 'personalized' }); // user 8 is known: not cold start
    expect(rows.some((x) => x.itemId === INJECTED || x.itemId.startsWith('invented'))).toBe(false);
    expect((await store().arms()).length).toBe(armsBefore); // personalized rows move no arm, invented ids never do
  });

  it('makes no bandit arm for ids outside the catalog, even from a cold-start user', async () => {
    const before = (await store().arms()).map((a) => a.itemId);
    const r = await feedback({
      request: { jsonData: { user_id: 'cold-visitor', k: 2 } },
      response: { jsonData: { recommendations: [{ user_id: 'cold-visitor', items: Array.from({ length: 30 }, (_, j) => ({ item_id: `fake-${j}` })) }] } },
      reward: 1,
    });
    expect(r.status).toBe(200);
    expect(r.body.meta.tags).toMatchObject({ feedback_interactions: 0, feedback_ignored_items: 30, feedback_learned: false });
    expect((await store().arms()).map((a) => a.itemId)).toEqual(before);
    expect([...catalog.keys()].length).toBe(120);
  });

  it('a remembered prediction is learnt from once: later feedback about it (other rewards, other truths) learns nothing', async () => {
    const p = await predict({ jsonData: { user_id: 'once-visitor', k: 120 } });
    const shown = itemsOf(p.body);
    const target = shown[shown.length - 1];
    const arm = t.server.feedback.bandit.countsOf(target);
    const first = await feedback({ response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: [target] } });
    expect(first.body.meta.tags.feedback_interactions).toBe(shown.length);
    const later = [];
    for (let i = 1; i <= 50; i++) {
      later.push(await feedback({ response: { meta: { puid: p.body.meta.puid } }, reward: 1 - i * 1e-9, truth: { jsonData: [shown[i % shown.length]] } }));
    }
    for (const r of later) {
      expect(r.status).toBe(200);
      expect(r.body.meta.tags).toMatchObject({ feedback_interactions: 0, feedback_learned: false });
    }
    expect(t.server.feedback.bandit.countsOf(target)).toEqual({ successes: arm.successes + 1, failures: arm.failures, trials: arm.trials + 1 });
    expect((await store().userInteractions('once-visitor')).length).toBe(shown.length);
  });

  it('invented cold-start impressions of a catalog item do not move the bandit; remembered ones do', async () => {
    const visitor = async (id: string) => itemsOf((await predict({ jsonData: { user_id: id, k: 10 } })).body);
    const target = '117';
    const before = await Promise.all(Array.from({ length: 20 }, (_, j) => visitor(`newcomer-${j}`)));
    const arm = t.server.feedback.bandit.countsOf(target);
    // 300 made-up newcomers "were shown" the target and all chose it; the server served none of them.
    for (let j = 0; j < 300; j++) {
      const r = await feedback({
        request: { jsonData: { user_id: `sybil-${j}`, k: 1 } },
        response: { meta: { puid: `made-up-${j}` }, jsonData: { recommendations: [{ user_id: `sybil-${j}`, strategy: 'cold_start', items: [{ item_id: target }] }] } },
        reward: 1,
      });
      expect(r.status).toBe(200);
    }
    expect(t.server.feedback.bandit.countsOf(target)).toEqual(arm);
    expect((await store().userInteractions('sybil-0')).map((x) => x.servedBy)).toEqual(['claimed']);
    const after = await Promise.all(Array.from({ length: 20 }, (_, j) => visitor(`newcomer-${j}`)));
    expect(after).toEqual(before); // the posterior did not change, so neither did any newcomer's list
    // A real cold-start impression, named by its puid, is learnt from.
    const p = await predict({ jsonData: { user_id: 'real-newcomer', k: 3 } });
    const shown = itemsOf(p.body);
    const shownArm = t.server.feedback.bandit.countsOf(shown[0]);
    expect((await feedback({ response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: [shown[0]] } })).status).toBe(200);
    expect(t.server.feedback.bandit.countsOf(shown[0]).trials).toBe(shownArm.trials + 1);
  });
});

describe('feedback is consistent', () => {
  it('stores a repeated feedback for the same prediction once, concurrent retries included', async () => {
    const p = await predict({ jsonData: { user_id: 'retrier', k: 4 } });
    const chosen = itemsOf(p.body)[1];
    const fb = { response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: [chosen] } };
    const before = await store().stats();
    const answers = await Promise.all([feedback(fb), feedback(fb), feedback(fb)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.filter((a) => a.body.meta.tags.feedback_duplicate === true)).toHaveLength(2);
    const again = await feedback(fb);
    expect(again.body.meta.tags).toMatchObject({ feedback_duplicate: true, feedback_interactions: 0 });
    const after = await store().stats();
    expect(after.feedback).toBe(before.feedback + 1);
    expect(after.interactions).toBe(before.interactions + 4);
    // A different reward or truth is a new feedback.
    const other = await feedback({ ...fb, reward: 0.5 });
    expect(other.body.meta.tags.feedback_duplicate).toBeUndefined();
    expect((await store().stats()).feedback).toBe(before.feedback + 2);
  });

  it('refuses oversize truth and ids with the limit to raise, and stores nothing', async () => {
    const p = await predict({ jsonData: { user_id: 'bounded', k: 3 } });
    const puid = p.body.meta.puid;
    const before = await store().stats();
    const cases: [unknown, RegExp][] = [
      [{ response: { meta: { puid } }, reward: 1, truth: { jsonData: Array.from({ length: 51 }, (_, j) => String(j + 1)) } }, /RECSERVE_MAX_TRUTH_ITEMS=50/],
      [{ response: { meta: { puid } }, reward: 1, truth: { strData: Array.from({ length: 60 }, (_, j) => j + 1).join(',') } }, /RECSERVE_MAX_TRUTH_ITEMS=50/],
      [{ response: { meta: { puid } }, reward: 1, truth: { data: { ndarray: Array.from({ length: 60 }, (_, j) => [j + 1]) } } }, /RECSERVE_MAX_TRUTH_ITEMS=50/],
      [{ response: { meta: { puid } }, reward: 1, truth: { jsonData: ['x'.repeat(5000)] } }, /RECSERVE_MAX_ID_LENGTH=64/],
      [{ response: { jsonData: { recommendations: [{ user_id: 'u'.repeat(100_000), items: ['1'] }] } }, reward: 1 }, /RECSERVE_MAX_ID_LENGTH=64/],
    ];
    for (const [body, msg] of cases) {
      const r = await feedback(body);
      expect(r.status).toBe(400);
      expect(r.body.status.info).toMatch(msg);
      expect(r.body.status.info.length).toBeLessThan(600); // a short prefix of the input, never all of it
    }
    expect(await store().stats()).toEqual(before);
  });
});

describe('the answer is built before the commit', () => {
  it('refuses feedback whose tags cannot be echoed, before storing it (the parser depth limit raised out of the way)', async () => {
    const s = await startFeedbackServer({ RECSERVE_MAX_JSON_DEPTH: '100000', RECSERVE_MAX_TAGS_BYTES: '10000000' });
    try {
      const st = s.server.feedback.stores.peek()!;
      const before = await st.stats();
      const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
      const body = `{"request":{"jsonData":{"user_id":"1"}},"truth":{"jsonData":["3"]},"reward":1,"response":{"meta":{"tags":{"deep":${deep}}}}}`;
      const res = await fetch(`${s.url}/api/v1.0/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(await st.stats()).toEqual(before);
      const ok = await post(`${s.url}/api/v1.0/feedback`, { request: { jsonData: { user_id: '1' } }, truth: { jsonData: ['3'] }, reward: 1, response: { meta: { tags: { flat: 'fine' } } } });
      expect(ok.status).toBe(200);
      expect(ok.body.meta.tags).toMatchObject({ flat: 'fine', feedback_interactions: 1 });
      expect((await st.stats()).feedback).toBe(before.feedback + 1);
    } finally {
      await s.stop();
    }
  });
});

describe('retraining cannot be steered by clients', () => {
  let dir: string;
  let modelDir: string;
  beforeAll(async () => {
    dir = tempDir('recserve-poison-');
    modelDir = await ensureDemoModel(path.join(dir, 'demo-model'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('drops interactions for items no catalog lists before training', async () => {
    const st = SqliteStore.open(path.join(dir, 'injected.db'));
    try {
      let n = 0;
      for (let round = 0; round < 16; round++) {
        for (let u = 0; u < 40; u++) {
          const liked = 1 + ((u * 7 + round) % 120);
          const rows = [
            { userId: `fan-${u}`, itemId: String(liked), reward: 1, kind: 'list' as const, servedBy: 'cold_start' as const },
            { userId: `fan-${u}`, itemId: INJECTED, reward: 1, kind: 'list' as const, servedBy: 'cold_start' as const },
          ];
          await st.record({ puid: null, modelVersion: 'demo-1', reward: 1, transport: 'rest', createdAt: n++ }, rows, []);
        }
      }
      const root = path.join(dir, 'models-injected');
      const report = await retrain({ store: st, currentDir: modelDir, root });
      expect(report.data.unknownItemRows).toBe(640);
      if (report.published) {
        const a = await loadArtifact(path.join(root, report.version!));
        expect(a.itemIds).not.toContain(INJECTED);
        expect(a.itemIds.every((id) => Number(id) >= 1 && Number(id) <= 120)).toBe(true);
      } else {
        expect(readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
      }
    } finally {
      await st.close();
    }
  });

  it('does not publish a model that fits clients\' feedback at the cost of what the base data says', async () => {
    const st = SqliteStore.open(path.join(dir, 'flipped.db'));
    try {
      // 40 known users "love" documentaries and hate everything else: self-consistent, so a gate that
      // only looked at the newest feedback (written by the same clients) would let it through.
      let n = 0;
      for (let round = 0; round < 12; round++) {
        for (let u = 1; u <= 40; u++) {
          const item = 1 + ((u * 31 + round * 17) % 120);
          const r = catalog[item - 1].genre === 'Documentary' ? 1 : 0;
          await st.record({ puid: null, modelVersion: 'demo-1', reward: r, transport: 'rest', createdAt: n++ }, [{ userId: String(u), itemId: String(item), reward: r, kind: 'list', servedBy: 'personalized' }], []);
        }
      }
      const root = path.join(dir, 'models-flipped');
      const report = await retrain({ store: st, currentDir: modelDir, root });
      expect(report.metrics!.candidate.rmse).toBeLessThan(report.metrics!.current.rmse); // the feedback-only gate would publish
      expect(report.published).toBe(false);
      expect(report.reason).toMatch(/worse at what the model already knew/);
      expect(report.data.baseHoldoutRows).toBeGreaterThanOrEqual(report.data.holdoutRows);
      const g = report.metrics!.gate.base;
      console.log(`[poisoning] flipped feedback: feedback holdout RMSE ${report.metrics!.current.rmse.toFixed(3)} → ${report.metrics!.candidate.rmse.toFixed(3)}, base holdout ${g.reference.toFixed(3)} (no feedback) → ${g.candidate.rmse.toFixed(3)}: not published`);
    } finally {
      await st.close();
    }
  });
});
