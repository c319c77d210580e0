// Two server replicas sharing one PostgreSQL interaction store: both write, every row lands once, and
// a replica (re)starting loads the bandit posterior the other one built. Skipped with a visible
// message only when no PostgreSQL answers outside CI.
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, pgExec, pgReachable, post, startFeedbackServer, uniqueSchema, type FeedbackTestServer } from './helpers.js';

const havePg = await pgReachable();
if (!havePg && !process.env.CI) console.warn(`[feedback/replicas-pg.test] SKIPPED: no PostgreSQL at ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (set RECSERVE_TEST_PG_URL). CI runs it.`);

const schema = uniqueSchema('replicas');
const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
const servers: FeedbackTestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
  if (havePg) await pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

describe.runIf(havePg || process.env.CI)('replicas sharing a PostgreSQL store', () => {
  it('stores feedback from both replicas, and a new replica starts from the shared posterior', async () => {
    const [a, b] = await Promise.all([startFeedbackServer({ RECSERVE_STORE_URL: url }), startFeedbackServer({ RECSERVE_STORE_URL: url })]);
    servers.push(a, b);
    expect(a.server.feedback.stores.peek()!.backend).toBe('postgres');
    const send = async (s: FeedbackTestServer, user: string) => {
      const p = await post(`${s.url}/api/v1.0/predictions`, { jsonData: { user_id: user, k: 4 } });
      const items = p.body.jsonData.recommendations[0].items.map((i: { item_id: string }) => i.item_id);
      const r = await post(`${s.url}/api/v1.0/feedback`, { response: { meta: { puid: p.body.meta.puid } }, reward: 1, truth: { jsonData: [items[0]] } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return items[0] as string;
    };
    const chosen = await Promise.all(Array.from({ length: 20 }, (_, n) => send(n % 2 ? a : b, `guest-${n}`)));
    expect(await a.server.feedback.stores.peek()!.stats()).toMatchObject({ feedback: 20, interactions: 80, users: 20 });
    const c = await startFeedbackServer({ RECSERVE_STORE_URL: url });
    servers.push(c);
    const item = chosen[0];
    const stored = (await c.server.feedback.stores.peek()!.arms()).find((x) => x.itemId === item)!;
    expect(c.server.feedback.bandit.countsOf(item)).toEqual({ successes: stored.successes, failures: stored.failures, trials: stored.trials });
    expect(stored.successes).toBeGreaterThanOrEqual(1);
  });
});
