// The InteractionStore contract: every backend (SQLite, PostgreSQL) runs this same suite.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA, MIGRATIONS } from '../../src/feedback/store/migrations.js';
import { StoreSchemaError, StoreUnavailableError, type FeedbackEntry, type InteractionStore, type NewInteraction } from '../../src/feedback/store/index.js';

export interface BackendHarness {
  dialect: 'sqlite' | 'postgres';
  /** Opens (creating and migrating) a store on a fresh, empty location. */
  fresh(): Promise<void>;
  open(): Promise<InteractionStore>;
  /** Raw SQL in the store's namespace, outside the store (simulating other writers and faults). */
  exec(sql: string): Promise<void>;
  /** SQL that makes every later insert into `interactions` fail (after the feedback row was written). */
  breakInteractionsSql: string;
  cleanup(): Promise<void>;
}

const entry = (over: Partial<FeedbackEntry> = {}): FeedbackEntry => ({ puid: 'p-1', modelVersion: 'v1', reward: 1, transport: 'rest', createdAt: 1_700_000_000_000, ...over });
const row = (userId: string, itemId: string, reward: number, over: Partial<NewInteraction> = {}): NewInteraction => ({
  userId,
  itemId,
  reward,
  kind: 'list',
  servedBy: 'cold_start',
  ...over,
});

export function storeContract(name: string, h: BackendHarness): void {
  describe(`InteractionStore contract: ${name}`, () => {
    let store: InteractionStore;
    beforeEach(async () => {
      await h.fresh();
      store = await h.open();
    });
    afterEach(async () => {
      await store?.close();
      await h.cleanup();
    });

    it('migrates a new store to the latest schema, and reopening changes nothing', async () => {
      expect(await store.schemaVersion()).toBe(LATEST_SCHEMA);
      await store.record(entry(), [row('u', 'i', 1)], []);
      await store.close();
      store = await h.open();
      expect(await store.schemaVersion()).toBe(LATEST_SCHEMA);
      expect((await store.stats()).interactions).toBe(1);
    });

    it('records a feedback with its rows and bandit updates, and reads them back', async () => {
      const id = await store.record(
        entry({ puid: 'abc', modelVersion: 'r7' }),
        [row('u1', 'a', 1, { kind: 'chosen' }), row('u1', 'b', 0, { kind: 'skipped', servedBy: 'personalized' }), row('u2', 'a', 0.25)],
        [{ itemId: 'a', successes: 1, failures: 0 }, { itemId: 'a', successes: 0.25, failures: 0.75 }],
      );
      expect(id).toBeGreaterThan(0);
      const u1 = await store.userInteractions('u1');
      expect(u1.map((r) => [r.itemId, r.reward, r.kind, r.servedBy])).toEqual([
        ['a', 1, 'chosen', 'cold_start'],
        ['b', 0, 'skipped', 'personalized'],
      ]);
      expect(u1[0]).toMatchObject({ feedbackId: id, puid: 'abc', modelVersion: 'r7', ts: 1_700_000_000_000 });
      expect(await store.arms()).toEqual([{ itemId: 'a', successes: 1.25, failures: 0.75, trials: 2 }]);
      expect(await store.stats()).toEqual({ feedback: 1, interactions: 3, users: 2, maxInteractionId: u1[0].id + 2 });
    });

    it('keeps fractional rewards exactly (0.7 is 0.7 of a success, never rounded)', async () => {
      for (let n = 0; n < 10; n++) await store.record(entry({ reward: 0.7 }), [row('u', 'x', 0.7)], [{ itemId: 'x', successes: 0.7, failures: 0.3 }]);
      const [arm] = await store.arms();
      expect(arm.successes).toBeCloseTo(7, 10);
      expect(arm.failures).toBeCloseTo(3, 10);
      expect(arm.trials).toBe(10);
      expect((await store.userInteractions('u')).every((r) => r.reward === 0.7)).toBe(true);
    });

    it('pages through interactions in id order, lists recently active users, limits per user', async () => {
      for (let n = 0; n < 25; n++) await store.record(entry({ puid: `p${n}` }), [row(`u${n % 5}`, `i${n}`, n % 2)], []);
      const seen: number[] = [];
      for (let after = 0; ; ) {
        const page = await store.scan(after, 7);
        if (page.length === 0) break;
        seen.push(...page.map((r) => r.id));
        after = page[page.length - 1].id;
      }
      expect(seen).toHaveLength(25);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
      expect(await store.usersSince(0, 3)).toEqual(['u4', 'u3', 'u2']);
      expect(await store.usersSince(seen[22], 10)).toEqual(['u4', 'u3']);
      const last2 = await store.userInteractions('u0', 2);
      expect(last2.map((r) => r.itemId)).toEqual(['i15', 'i20']);
    });

    it('writes all of a feedback or none of it', async () => {
      await store.record(entry(), [row('u', 'ok', 1)], [{ itemId: 'ok', successes: 1, failures: 0 }]);
      await h.exec(h.breakInteractionsSql);
      await expect(store.record(entry({ puid: 'doomed' }), [row('u', 'a', 1), row('u', 'b', 0)], [{ itemId: 'ok', successes: 1, failures: 0 }])).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
      expect(await store.stats()).toMatchObject({ feedback: 1, interactions: 1 });
      expect(await store.arms()).toEqual([{ itemId: 'ok', successes: 1, failures: 0, trials: 1 }]);
    });

    it('refuses rows outside the contract before writing anything', async () => {
      await expect(store.record(entry(), [row('u', 'a', 1.5)], [])).rejects.toThrow(/outside \[0, 1\]/);
      await expect(store.record(entry(), [row('u', 'a', Number.NaN)], [])).rejects.toThrow(/outside \[0, 1\]/);
      await expect(store.record(entry({ reward: -1 }), [row('u', 'a', 0)], [])).rejects.toThrow(/outside \[0, 1\]/);
      expect((await store.stats()).feedback).toBe(0);
    });

    it('takes concurrent feedback without losing an update', async () => {
      await Promise.all(
        Array.from({ length: 40 }, (_, n) =>
          store.record(entry({ puid: `c${n}` }), [row(`u${n}`, 'hot', 0.5), row(`u${n}`, `i${n % 3}`, 1)], [
            { itemId: 'hot', successes: 0.5, failures: 0.5 },
            { itemId: `i${n % 3}`, successes: 1, failures: 0 },
          ]),
        ),
      );
      const arms = Object.fromEntries((await store.arms()).map((a) => [a.itemId, a]));
      expect(arms.hot).toMatchObject({ successes: 20, failures: 20, trials: 40 });
      expect(arms.i0.trials + arms.i1.trials + arms.i2.trials).toBe(40);
      expect((await store.stats()).interactions).toBe(80);
    });

    it('backfills bandit arms when migrating a version-1 store (versioned migrations)', async () => {
      await store.close();
      await h.cleanup();
      await h.fresh();
      await h.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      await h.exec(MIGRATIONS[0][h.dialect]);
      await h.exec(`INSERT INTO schema_migrations VALUES (1, 'v1', 0)`);
      await h.exec(`INSERT INTO feedback (puid, model_version, reward, transport, n_rows, created_at) VALUES ('old', 'v0', 1, 'rest', 3, 0)`);
      await h.exec(
        `INSERT INTO interactions (feedback_id, user_id, item_id, reward, kind, served_by, ts, puid, model_version) VALUES
         (1, 'u', 'a', 1, 'list', 'cold_start', 0, 'old', 'v0'), (1, 'u', 'a', 0.5, 'list', 'exploration', 0, 'old', 'v0'),
         (1, 'u', 'b', 1, 'list', 'personalized', 0, 'old', 'v0')`,
      );
      store = await h.open();
      expect(await store.schemaVersion()).toBe(LATEST_SCHEMA);
      expect(await store.arms()).toEqual([{ itemId: 'a', successes: 1.5, failures: 0.5, trials: 2 }]);
    });

    it('refuses a store whose schema is newer than this build', async () => {
      await h.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${LATEST_SCHEMA + 1}, 'from the future', 0)`);
      await store.close();
      await expect(h.open()).rejects.toBeInstanceOf(StoreSchemaError);
      await expect(h.open()).rejects.toThrow(/newer than this build/);
      store = undefined as unknown as InteractionStore;
    });
  });
}
