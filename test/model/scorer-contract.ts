// What every Scorer promises (src/model/scorer.ts), written once and run against each implementation
// over a real ONNX model. Answers are checked against a brute-force reference score of every
// (user, item) pair, so the contract holds whichever way a scorer selects its top k: an item is
// returned only if allowed and not excluded, with its own score, best first, and nothing left out
// scores higher than what came back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ranked, Scorer, TopKQuery } from '../../src/model/scorer.js';

/** The exact scores of the model under test. */
export interface ScoreReference {
  nUsers: number;
  nItems: number;
  score(user: number, item: number): number;
  /** Largest difference allowed between a scorer's float32 score and the reference. */
  tolerance: number;
  /** Per-user seen lists the scorer was given (queries then exclude them by reference), if any. */
  seen: Int32Array[] | null;
}

export interface ScorerSubject {
  name: string;
  /** A fresh scorer over the model the reference describes; the suite closes it. */
  create(): Promise<Scorer>;
}

/** Checks one answer against the reference; `label` says which query in a failure. */
export function expectRanking(got: Ranked, q: TopKQuery, ref: ScoreReference, label = ''): void {
  const excluded = new Set(q.exclude ?? []);
  const eligible: number[] = [];
  for (let i = 0; i < ref.nItems; i++) if (!excluded.has(i) && (q.allow === null || q.allow[i] !== 0)) eligible.push(i);
  const want = Math.min(q.k, eligible.length);
  expect(got.items.length, `${label} item count`).toBe(want);
  expect(got.scores.length, `${label} score count`).toBe(want);
  const returned = new Set(got.items);
  expect(returned.size, `${label} distinct items`).toBe(want);
  got.items.forEach((item, j) => {
    expect(item >= 0 && item < ref.nItems && !excluded.has(item) && (q.allow === null || q.allow[item] !== 0), `${label} item ${item} is eligible`).toBe(true);
    expect(Math.abs(got.scores[j] - ref.score(q.user, item)), `${label} score of item ${item}`).toBeLessThanOrEqual(ref.tolerance);
    if (j > 0) expect(got.scores[j], `${label} best first at ${j}`).toBeLessThanOrEqual(got.scores[j - 1]);
  });
  if (want === 0) return;
  // Nothing left out beats the worst item returned (beyond rounding).
  const worst = got.scores[want - 1];
  let bestLeftOut = -Infinity;
  for (const i of eligible) if (!returned.has(i)) bestLeftOut = Math.max(bestLeftOut, ref.score(q.user, i));
  expect(bestLeftOut, `${label} best item left out`).toBeLessThanOrEqual(worst + 2 * ref.tolerance);
}

const everyNth = (n: number, step: number, phase: number) => Uint8Array.from({ length: n }, (_, i) => (i % step === phase ? 1 : 0));

/**
 * Registers the contract suite for each subject. `reference` is read once the suite's beforeAll has
 * run (the model is built asynchronously), so it is passed as a getter.
 */
export function scorerContract(subjects: readonly ScorerSubject[], reference: () => ScoreReference): void {
  describe.each(subjects)('Scorer contract: $name', (subject) => {
    let scorer: Scorer;
    let ref: ScoreReference;

    beforeAll(async () => {
      ref = reference();
      scorer = await subject.create();
    });
    afterAll(async () => scorer?.close());

    const userOf = (j: number) => (j * 7 + 3) % ref.nUsers;
    /** An exclusion: the user's seen list when the scorer has them, else a fixed handful of items. */
    const excludeFor = (user: number) => ref.seen?.[user] ?? Int32Array.from(new Set([0, 2, ref.nItems >> 1, ref.nItems - 1])).sort();

    it('knows the catalog size', () => {
      expect(scorer.nItems).toBe(ref.nItems);
    });

    it('ranks each user like the brute-force reference, for k = 1, a few and many', async () => {
      const queries = [1, 3, 10].flatMap((k) => Array.from({ length: 6 }, (_, j): TopKQuery => ({ user: userOf(j), k, exclude: null, allow: null })));
      const got = await scorer.topK(queries);
      expect(got).toHaveLength(queries.length);
      got.forEach((r, j) => expectRanking(r, queries[j], ref, `query ${j}`));
    });

    it('never returns an excluded item, and fills k from the rest', async () => {
      const queries = Array.from({ length: 6 }, (_, j): TopKQuery => ({ user: userOf(j), k: 5, exclude: excludeFor(userOf(j)), allow: null }));
      const got = await scorer.topK(queries);
      got.forEach((r, j) => expectRanking(r, queries[j], ref, `query ${j}`));
    });

    it('returns only items the allow mask keeps, with or without an exclusion', async () => {
      const half = everyNth(ref.nItems, 2, 0);
      const few = everyNth(ref.nItems, 7, 3);
      const queries: TopKQuery[] = [
        { user: userOf(0), k: 4, exclude: null, allow: half },
        { user: userOf(1), k: 4, exclude: null, allow: few },
        { user: userOf(2), k: 4, exclude: excludeFor(userOf(2)), allow: half },
        { user: userOf(3), k: 4, exclude: null, allow: new Uint8Array(ref.nItems) },
      ];
      const got = await scorer.topK(queries);
      got.forEach((r, j) => expectRanking(r, queries[j], ref, `query ${j}`));
      expect(got[3].items).toHaveLength(0); // nothing allowed, nothing returned
    });

    it('with k larger than the catalog, returns every eligible item, ranked', async () => {
      const big = ref.nItems + 50;
      const queries: TopKQuery[] = [
        { user: userOf(0), k: big, exclude: null, allow: null },
        { user: userOf(1), k: big, exclude: excludeFor(userOf(1)), allow: null },
        { user: userOf(2), k: big, exclude: null, allow: everyNth(ref.nItems, 3, 1) },
      ];
      const got = await scorer.topK(queries);
      got.forEach((r, j) => expectRanking(r, queries[j], ref, `query ${j}`));
      expect(got[0].items).toHaveLength(ref.nItems);
    });

    it('answers a mixed batch in query order', async () => {
      const queries = Array.from({ length: 12 }, (_, j): TopKQuery => ({
        user: userOf(j),
        k: 1 + (j % 6),
        exclude: j % 3 === 0 ? excludeFor(userOf(j)) : null,
        allow: j % 4 === 1 ? everyNth(ref.nItems, 2, 1) : null,
      }));
      const got = await scorer.topK(queries);
      got.forEach((r, j) => expectRanking(r, queries[j], ref, `query ${j}`));
    });

    it('scores pairs like the reference, in the order given, repeats included', async () => {
      const users = Int32Array.from({ length: 40 }, (_, j) => userOf(j));
      const items = Int32Array.from({ length: 40 }, (_, j) => (j * 5 + 1) % ref.nItems);
      users[39] = users[0];
      items[39] = items[0];
      const got = await scorer.scorePairs(users, items);
      expect(got).toHaveLength(40);
      got.forEach((s, j) => expect(Math.abs(s - ref.score(users[j], items[j])), `pair ${j}`).toBeLessThanOrEqual(ref.tolerance));
    });

    it('answers empty calls with empty answers', async () => {
      expect(await scorer.topK([])).toEqual([]);
      expect(await scorer.scorePairs(new Int32Array(0), new Int32Array(0))).toHaveLength(0);
    });

    it('answers concurrent calls each with its own answer', async () => {
      const queries = Array.from({ length: 24 }, (_, j): TopKQuery => ({ user: userOf(j), k: 1 + (j % 5), exclude: j % 2 ? excludeFor(userOf(j)) : null, allow: null }));
      const pairUsers = Int32Array.from({ length: 8 }, (_, j) => userOf(j + 1));
      const pairItems = Int32Array.from({ length: 8 }, (_, j) => (j * 3) % ref.nItems);
      const [ranked, pairs] = await Promise.all([
        Promise.all(queries.map((q) => scorer.topK([q]))),
        Promise.all(Array.from({ length: 8 }, (_, j) => scorer.scorePairs(pairUsers.subarray(j, j + 1), pairItems.subarray(j, j + 1)))),
      ]);
      ranked.forEach((r, j) => {
        expect(r).toHaveLength(1);
        expectRanking(r[0], queries[j], ref, `call ${j}`);
      });
      pairs.forEach((s, j) => expect(Math.abs(s[0] - ref.score(pairUsers[j], pairItems[j])), `pair call ${j}`).toBeLessThanOrEqual(ref.tolerance));
    });

    it('refuses calls once closed', async () => {
      const closed = await subject.create();
      await closed.close();
      await expect(closed.topK([{ user: 0, k: 1, exclude: null, allow: null }])).rejects.toThrow();
      await expect(closed.scorePairs(Int32Array.of(0), Int32Array.of(0))).rejects.toThrow();
    });
  });
}
