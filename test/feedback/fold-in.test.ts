// Fold-in re-solves a user against fixed item factors. The update from (A0, x0) must equal the ALS
// closed form over training items ∪ feedback — without the training ratings — for explicit and
// implicit models, and plain ridge for a user the model has never seen.
import { describe, expect, it } from 'vitest';
import { FoldInModel, solveSpd } from '../../src/feedback/fold-in.js';
import type { Interaction } from '../../src/feedback/store/index.js';
import type { Artifact } from '../../src/model-format/artifact.js';
import { Recommender } from '../../src/model/recommender.js';
import type { Scorer } from '../../src/model/scorer.js';
import { gaussian, rng } from '../../src/util/random.js';

const noScorer: Scorer = {
  nItems: 0,
  topK: async () => [],
  scorePairs: async () => new Float32Array(0),
  close: async () => undefined,
};

const n = 30;
const d = 4;
const normal = gaussian(rng(11));
const Q = Float32Array.from({ length: n * d }, () => 0.5 * normal());
const itemBias = Float32Array.from({ length: n }, () => 0.3 * normal());
const mu = 3;
const S = [1, 4, 7, 9, 12, 15, 20, 28];
const rS = S.map((_, j) => 1 + ((j * 37) % 5));

function model(kind: 'explicit' | 'implicit', x0: Float64Array, lambda: number, extra: Record<string, unknown> = {}, factors = true): Recommender {
  const D = x0.length;
  const userFactors = new Float32Array(2 * d);
  const userBias = new Float32Array(2);
  for (let k = 0; k < d; k++) userFactors[k] = x0[k];
  if (D > d) userBias[0] = x0[d];
  const artifact = {
    dir: '/nowhere',
    name: 't',
    version: 'v',
    userIds: ['known', 'other'],
    itemIds: Array.from({ length: n }, (_, i) => `i${i}`),
    catalog: null,
    popularity: new Float64Array(n),
    seen: [Int32Array.from(S), new Int32Array(0)],
    ratingRange: kind === 'explicit' ? [1, 5] : null,
    factors: factors
      ? { factors: d, userFactors, itemFactors: Q, userBias, itemBias: kind === 'explicit' ? itemBias : new Float32Array(n), globalBias: kind === 'explicit' ? mu : 0, regularization: lambda }
      : null,
    settings: {},
    metadata: { 'recserve.kind': kind, 'recserve.training': JSON.stringify(extra) },
  } as unknown as Artifact;
  return new Recommender(artifact, noScorer);
}

const feat = (i: number, bias: boolean) => [...Array.from(Q.subarray(i * d, (i + 1) * d)), ...(bias ? [1] : [])];

/** Direct normal equations Σ w x xᵀ + λI, Σ w t x over (item, target, weight) observations. */
function ridge(obs: { i: number; t: number; w: number }[], lambda: number, bias: boolean): Float64Array {
  const D = d + (bias ? 1 : 0);
  const A = new Float64Array(D * D);
  const b = new Float64Array(D);
  for (let k = 0; k < D; k++) A[k * D + k] = lambda;
  for (const { i, t, w } of obs) {
    const x = feat(i, bias);
    for (let r = 0; r < D; r++) {
      b[r] += w * t * x[r];
      for (let c = 0; c < D; c++) A[r * D + c] += w * x[r] * x[c];
    }
  }
  return solveSpd(A, b, D);
}

const rows = (list: [string, number, Interaction['kind']][]): Interaction[] =>
  list.map(([itemId, reward, kind], j) => ({ id: j + 1, feedbackId: 1, userId: 'known', itemId, reward, kind, servedBy: 'personalized', ts: 0, puid: null, modelVersion: 'v' }));

describe('fold-in (explicit ALS closed form)', () => {
  const lambda = 0.3;
  const target = (r: number, i: number) => r - mu - itemBias[i];
  const x0 = ridge(S.map((i, j) => ({ i, t: target(rS[j], i), w: 1 })), lambda, true);
  const rec = model('explicit', x0, lambda);
  const fold = FoldInModel.for(rec, { skippedWeight: 0.2 })!;

  it('equals the closed form over training items ∪ feedback, without the training ratings', () => {
    const fb = rows([['i4', 1, 'chosen'], ['i2', 0.5, 'list'], ['i3', 0, 'skipped']]);
    const got = fold.solve('known', new Map(fb.map((r) => [r.itemId, r])));
    const want = ridge(
      [
        ...S.map((i, j) => ({ i, t: target(rS[j], i), w: 1 })),
        { i: 4, t: target(5, 4), w: 1 }, // reward 1 → 5 stars
        { i: 2, t: target(3, 2), w: 1 }, // reward 0.5 → 3 stars
        { i: 3, t: target(1, 3), w: 0.2 }, // skipped: 1 star, weight 0.2
      ],
      lambda,
      true,
    );
    for (let k = 0; k <= d; k++) expect(got[k]).toBeCloseTo(want[k], 4);
  });

  it('reproduces the trained vector when there is no feedback', () => {
    const got = fold.solve('known', new Map());
    for (let k = 0; k <= d; k++) expect(got[k]).toBeCloseTo(x0[k], 5);
  });

  it('solves a new user by ridge on its feedback alone, once it has enough positives', () => {
    const fb = rows([['i5', 1, 'chosen'], ['i6', 1, 'chosen'], ['i8', 0, 'skipped']]).map((r) => ({ ...r, userId: 'newbie' }));
    const got = fold.solve('newbie', new Map(fb.map((r) => [r.itemId, r])));
    const want = ridge([{ i: 5, t: target(5, 5), w: 1 }, { i: 6, t: target(5, 6), w: 1 }, { i: 8, t: target(1, 8), w: 0.2 }], lambda, true);
    for (let k = 0; k <= d; k++) expect(got[k]).toBeCloseTo(want[k], 5);
    const strict = FoldInModel.for(rec, { minPositives: 3 })!;
    expect(strict.update('newbie', fb)).toBeNull(); // 2 positives < 3: the bandit keeps serving it
    expect(strict.get('newbie')).toEqual({ seen: Int32Array.of(5, 6) });
    expect(strict.update('newbie', [...fb, { ...fb[0], id: 9, itemId: 'i10' }])).not.toBeNull();
    expect(strict.get('newbie')?.scores?.()).toHaveLength(n);
  });

  it('scores every item as μ + b_u + b_i + p·q_i', () => {
    const x = Float32Array.from(x0);
    const s = fold.scoreAll(x);
    const i = 17;
    const want = mu + x[d] + itemBias[i] + feat(i, false).reduce((acc, q, k) => acc + q * x[k], 0);
    expect(s[i]).toBeCloseTo(want, 4);
  });

  it('keeps no per-user score vector: one shared buffer for ranking, O(factors) for a single item', () => {
    const f = FoldInModel.for(rec, { minPositives: 1 })!;
    const mk = (user: string, item: string) => rows([[item, 1, 'chosen']]).map((r) => ({ ...r, userId: user }));
    f.update('a', mk('a', 'i3'));
    f.update('b', mk('b', 'i9'));
    const a = f.get('a')!;
    const b = f.get('b')!;
    const sa = Float32Array.from(a.scores!());
    const bufferB = b.scores!();
    expect(bufferB).toBe(a.scores!()); // the same buffer, refilled per call
    const sb = Float32Array.from(b.scores!());
    for (const i of [0, 7, n - 1]) {
      expect(a.score!(i)).toBeCloseTo(sa[i], 5);
      expect(b.score!(i)).toBeCloseTo(sb[i], 5);
    }
    expect(sa).not.toEqual(sb);
  });

  it('is unavailable for a model without readable factors', () => {
    expect(FoldInModel.for(model('explicit', x0, lambda, {}, false))).toBeNull();
  });
});

describe('fold-in (implicit, Hu–Koren–Volinsky)', () => {
  const lambda = 0.5;
  const alpha = 2;
  /** x = (QᵀQ + λI + Σ (c−1) q qᵀ)⁻¹ Σ c·p q over observed items with confidence c and preference p. */
  function hkv(obs: Map<number, { c: number; p: number }>): Float64Array {
    const A = new Float64Array(d * d);
    const b = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const q = feat(i, false);
      const o = obs.get(i);
      const c = o?.c ?? 1;
      const p = o?.p ?? 0;
      for (let r = 0; r < d; r++) {
        b[r] += c * p * q[r];
        for (let k = 0; k < d; k++) A[r * d + k] += c * q[r] * q[k];
      }
    }
    for (let k = 0; k < d; k++) A[k * d + k] += lambda;
    return solveSpd(A, b, d);
  }
  const base = new Map(S.map((i) => [i, { c: 1 + alpha, p: 1 }]));
  const x0 = hkv(base);
  const fold = FoldInModel.for(model('implicit', x0, lambda, { alpha }))!;

  it('equals the implicit closed form after new positives, a stronger positive and a removal', () => {
    const fb = rows([['i2', 0.5, 'chosen'], ['i4', 1, 'chosen'], ['i7', 0, 'chosen']]);
    const got = fold.solve('known', new Map(fb.map((r) => [r.itemId, r])));
    const obs = new Map(base);
    obs.set(2, { c: 1 + alpha * 0.5, p: 1 });
    obs.set(4, { c: 1 + alpha + alpha * 1, p: 1 });
    obs.delete(7);
    const want = hkv(obs);
    for (let k = 0; k < d; k++) expect(got[k]).toBeCloseTo(want[k], 4);
  });
});
