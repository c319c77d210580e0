// Explanation work per request (round 2's N6: k = 1000 × 200 history items × 472 factors held the event
// loop ≈0.5 s): a real 472-factor model through the ORT scorer. A large request compares each item with
// the first min(RECSERVE_MAX_EXPLAIN_HISTORY, floor(RECSERVE_MAX_EXPLAIN_WORK / (items × factors)))
// history items, and names the closest of those; small requests are explained from the whole bound.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMIT_DEFAULTS } from '../../src/config/limits.js';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { writeArtifact } from '../../src/model-format/export-onnx.js';
import { EXPLAIN_ITEMS } from '../../src/model/explain.js';
import { OrtScorer } from '../../src/model/ort-scorer.js';
import { Recommender, type AnswerBounds, type RecommendRequest } from '../../src/model/recommender.js';
import { gaussian, rng } from '../../src/util/random.js';

const ITEMS = 1500;
const D = 472;
const HISTORY = 300; // past RECSERVE_MAX_EXPLAIN_HISTORY's default (200)

let dir: string;
let model: Recommender;
let itemFactors: Float32Array;
let history: number[];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-explain-'));
  const normal = gaussian(rng(17));
  itemFactors = Float32Array.from({ length: ITEMS * D }, normal);
  const userFactors = Float32Array.from({ length: 2 * D }, normal);
  history = Array.from({ length: HISTORY }, (_, j) => j * 5);
  await writeArtifact(dir, { userIds: ['u0', 'u1'], itemIds: Array.from({ length: ITEMS }, (_, i) => `i${i}`), factors: D, userFactors, itemFactors, kind: 'implicit' }, { seen: [history, [1, 2]] });
  const artifact = await loadArtifact(dir);
  model = new Recommender(artifact, await OrtScorer.create(artifact.onnx, artifact.signature, ITEMS));
  await model.ready();
}, 60_000);

afterAll(async () => {
  await model?.scorer.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cosine(a: number, b: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let f = 0; f < D; f++) {
    dot += itemFactors[a * D + f] * itemFactors[b * D + f];
    na += itemFactors[a * D + f] ** 2;
    nb += itemFactors[b * D + f] ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

/** The ids of the EXPLAIN_ITEMS items of `compared` closest to `item` (itself left out). */
function closest(item: number, compared: number[]): string[] {
  return compared
    .filter((h) => h !== item)
    .map((h) => ({ h, s: cosine(item, h) }))
    .sort((x, y) => y.s - x.s || x.h - y.h)
    .slice(0, EXPLAIN_ITEMS)
    .map(({ h }) => `i${h}`);
}

const DEFAULTS: AnswerBounds = { explainHistory: LIMIT_DEFAULTS.maxExplainHistory, explainWork: LIMIT_DEFAULTS.maxExplainWork, rerankPool: LIMIT_DEFAULTS.rerankPool };
const ask = (k: number): RecommendRequest => ({ users: ['u0'], k, filter: null, excludeSeen: false, explain: true });

async function explained(req: RecommendRequest, bounds: AnswerBounds) {
  const { recommendations } = await model.answer(req, bounds);
  return recommendations[0].items.map((i) => ({ item: model.itemIdx(i.itemId)!, because: (i.because as { itemId: string }[]).map((b) => b.itemId) }));
}

describe('explanation work per request', () => {
  it('explains k = 1000 on 472 factors from the history the work bound allows', async () => {
    const allowed = Math.floor(LIMIT_DEFAULTS.maxExplainWork / (1000 * D));
    expect(allowed).toBeLessThan(LIMIT_DEFAULTS.maxExplainHistory);
    const items = await explained(ask(1000), DEFAULTS);
    expect(items).toHaveLength(1000);
    const compared = history.slice(0, allowed);
    for (const { item, because } of items.filter((_, r) => r % 97 === 0)) expect(because, `i${item}`).toEqual(closest(item, compared));
    for (const { because } of items) for (const id of because) expect(compared).toContain(Number(id.slice(1)));
  });

  it('names nothing when the bound allows no history item, and counts every list', async () => {
    const items = await explained(ask(10), { ...DEFAULTS, explainWork: 10 * D - 1 });
    expect(items.every((i) => i.because.length === 0)).toBe(true);
    const { recommendations } = await model.answer({ ...ask(10), users: ['u0', 'u1'] }, { ...DEFAULTS, explainWork: 2 * 10 * D * 4 });
    const first = recommendations[0].items.map((i) => (i.because as { itemId: string }[]).map((b) => Number(b.itemId.slice(1))));
    for (const b of first) for (const h of b) expect(history.slice(0, 4)).toContain(h);
  });

  it('leaves small requests as they were: the whole history bound', async () => {
    const items = await explained(ask(10), DEFAULTS);
    expect(await explained(ask(10), { ...DEFAULTS, explainWork: Number.MAX_SAFE_INTEGER })).toEqual(items);
    const compared = history.slice(0, LIMIT_DEFAULTS.maxExplainHistory);
    for (const { item, because } of items) expect(because, `i${item}`).toEqual(closest(item, compared));
  });
});
