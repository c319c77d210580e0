// Every trainer must recover planted structure from small generated data to a stated accuracy.
import { describe, expect, it } from 'vitest';
import { subset } from '../../src/train/data.js';
import { rankingReport, ratingReport } from '../../src/train/evaluate.js';
import { inputOf, predictRaw } from '../../src/train/model.js';
import { holdout } from '../../src/train/split.js';
import { fit, validateParams } from '../../src/train/trainers.js';
import { plantedClicks, plantedRatings } from './helpers.js';

// 200 users × 150 items, rank 3, noise σ = 0.1, ~30 % observed; 10 % of the ratings held out.
const planted = plantedRatings();
const split = holdout(planted.data.users.length, 0.1, 3);
const train = subset(planted.data, split.train);
const test = subset(planted.data, split.test);
const input = inputOf(train);

function heldOutRmse(model: Parameters<typeof ratingReport>[0]) {
  return ratingReport(model, test).rmse;
}

// Spread of the held-out ratings around their mean: what a constant predictor scores.
const constantRmse = (() => {
  let s = 0;
  let s2 = 0;
  for (const r of test.ratings) (s += r), (s2 += r * r);
  const m = s / test.ratings.length;
  return Math.sqrt(s2 / test.ratings.length - m * m);
})();

describe('explicit trainers recover planted low-rank ratings', () => {
  it('the data is far from constant', () => {
    expect(constantRmse).toBeGreaterThan(0.8);
  });

  it('sgd: held-out RMSE < 0.2', () => {
    const { model } = fit('sgd', input, { factors: 8, epochs: 60, lr: 0.02, reg: 0.02, seed: 1 });
    expect(heldOutRmse(model)).toBeLessThan(0.2);
  });

  it('als: held-out RMSE < 0.15 (noise floor 0.1)', () => {
    const { model } = fit('als', input, { factors: 6, epochs: 12, reg: 0.02, seed: 1 });
    expect(heldOutRmse(model)).toBeLessThan(0.15);
  });

  it('bayes: held-out RMSE < 0.15 (noise floor 0.1)', () => {
    const { model } = fit('bayes', input, { factors: 4, burnIn: 10, samples: 30, thin: 3, implicit: 'both', seed: 1 });
    expect(model.factors).toBe(4 * 10);
    expect(heldOutRmse(model)).toBeLessThan(0.15);
  });

  it('bayes: the exported concatenated model predicts the average of the samples', () => {
    // With thin = 1 every sample is kept; the sampler reports the train RMSE of its running average.
    let avgRmse = NaN;
    const { model } = fit('bayes', input, { factors: 3, burnIn: 3, samples: 6, thin: 1, implicit: 'user', seed: 2 }, (r) => {
      avgRmse = r.loss;
    });
    expect(model.factors).toBe(18);
    expect(ratingReport(model, { users: input.users, items: input.items, ratings: input.values }).rmse).toBeCloseTo(avgRmse, 4);
  });

  it('clamps predictions to the rating range', () => {
    const { model } = fit('sgd', input, { factors: 4, epochs: 5, seed: 1 }, undefined, [1, 5]);
    expect(model.ratingRange).toEqual([1, 5]);
    const r = ratingReport({ ...model, mu: 100 }, test);
    expect(r.rmse).toBeLessThan(5);
    expect(predictRaw({ ...model, mu: 100 }, 0, 0)).toBeGreaterThan(90);
  });

  it('is deterministic given a seed, and the seed matters', () => {
    const a = fit('sgd', input, { factors: 4, epochs: 3, seed: 5 }).model;
    const b = fit('sgd', input, { factors: 4, epochs: 3, seed: 5 }).model;
    const c = fit('sgd', input, { factors: 4, epochs: 3, seed: 6 }).model;
    expect(a.P).toEqual(b.P);
    expect(a.Q).toEqual(b.Q);
    expect(a.P).not.toEqual(c.P);
    const w1 = fit('wals', input, { factors: 4, epochs: 2, seed: 5 }).model;
    const w2 = fit('wals', input, { factors: 4, epochs: 2, seed: 5 }).model;
    expect(w1.Q).toEqual(w2.Q);
  });

  it('leaves users and items without training data at zero (they predict like unknown ids)', () => {
    const { model } = fit('sgd', { ...input, nUsers: input.nUsers + 1 }, { factors: 4, epochs: 2, seed: 1 });
    const u = input.nUsers;
    expect(Array.from(model.P.subarray(u * 4, u * 4 + 4))).toEqual([0, 0, 0, 0]);
    expect(model.bu[u]).toBe(0);
  });

  it('rejects parameters that do not belong to the algorithm', () => {
    expect(() => validateParams('sgd', { alpha: 1 })).toThrow(/--alpha does not apply to --algo sgd/);
    expect(() => validateParams('wals', { solver: 'lu' })).toThrow(/one of cg, cholesky/);
    expect(() => validateParams('als', { factors: 2.5 })).toThrow(/integer/);
  });
});

describe('implicit trainers recover planted clusters', () => {
  // 240 users in 4 taste groups, 16 clicks each, 90 % inside their group; hold out 25 % per user.
  const clicks = plantedClicks();
  const mask = new Uint8Array(clicks.users.length);
  const seenPerUser = new Map<number, number>();
  for (let r = 0; r < mask.length; r++) {
    const c = (seenPerUser.get(clicks.users[r]) ?? 0) + 1;
    seenPerUser.set(clicks.users[r], c);
    mask[r] = c % 4 === 0 ? 0 : 1; // every 4th click of a user is held out
  }
  const ctrain = subset(clicks, mask, 1);
  const ctest = subset(clicks, mask, 0);
  const cin = inputOf(ctrain);

  // Most held-out clicks fall in the user's own group (a quarter of the catalog, ~0.9·4/16 of it per user):
  // a model that learned the groups ranks within the group; random ranking gets precision ≈ 4/(120−12).
  it('wals (CG): precision@5 well above chance, top items inside the user\'s group', () => {
    const { model } = fit('wals', cin, { factors: 8, epochs: 10, reg: 0.1, alpha: 10, seed: 1 });
    const r = rankingReport(model, ctrain, ctest, 5);
    expect(r.precision).toBeGreaterThan(0.15);
    let inGroup = 0;
    let total = 0;
    const scores = new Float32Array(model.nItems);
    for (let u = 0; u < 40; u++) {
      for (let i = 0; i < model.nItems; i++) scores[i] = predictRaw(model, u, i);
      const best = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]).slice(0, 10);
      inGroup += best.filter((i) => clicks.itemGroup[i] === clicks.userGroup[u]).length;
      total += best.length;
    }
    expect(inGroup / total).toBeGreaterThan(0.9);
  });

  it('wals (Cholesky) and CG agree on quality', () => {
    const cg = rankingReport(fit('wals', cin, { factors: 8, epochs: 10, reg: 0.1, alpha: 10, seed: 1 }).model, ctrain, ctest, 5);
    const ch = rankingReport(fit('wals', cin, { factors: 8, epochs: 10, reg: 0.1, alpha: 10, seed: 1, solver: 'cholesky' }).model, ctrain, ctest, 5);
    expect(Math.abs(cg.ndcg - ch.ndcg)).toBeLessThan(0.05);
  });

  it('bpr: precision@5 well above chance', () => {
    const { model } = fit('bpr', cin, { factors: 8, epochs: 40, lr: 0.05, reg: 0.005, seed: 1 });
    const r = rankingReport(model, ctrain, ctest, 5);
    expect(r.precision).toBeGreaterThan(0.15);
  });
});
