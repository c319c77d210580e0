// Small generated data sets with planted structure (never the shared MovieLens files).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IdMap, type Interactions } from '../../src/train/data.js';
import { gaussian, rng } from '../../src/util/random.js';

export function tempDir(prefix = 'recserve-train-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export interface Planted {
  data: Interactions;
  /** The noiseless rating of every (user, item) pair, row-major nUsers × nItems. */
  truth: Float64Array;
  nUsers: number;
  nItems: number;
  noise: number;
}

/**
 * Ratings r = μ + b_u + b_i + p_u·q_i + ε with rank-`rank` factors, observed on a random `density`
 * fraction of the pairs (every user and item observed at least a few times).
 */
export function plantedRatings(o: { users?: number; items?: number; rank?: number; density?: number; noise?: number; seed?: number } = {}): Planted {
  const nU = o.users ?? 200;
  const nI = o.items ?? 150;
  const rank = o.rank ?? 3;
  const density = o.density ?? 0.3;
  const noise = o.noise ?? 0.1;
  const rand = rng(o.seed ?? 1);
  const normal = gaussian(rand);
  const P = Float64Array.from({ length: nU * rank }, () => 0.6 * normal());
  const Q = Float64Array.from({ length: nI * rank }, () => 0.6 * normal());
  const bu = Float64Array.from({ length: nU }, () => 0.3 * normal());
  const bi = Float64Array.from({ length: nI }, () => 0.4 * normal());
  const mu = 3.5;
  const truth = new Float64Array(nU * nI);
  for (let u = 0; u < nU; u++)
    for (let i = 0; i < nI; i++) {
      let s = mu + bu[u] + bi[i];
      for (let f = 0; f < rank; f++) s += P[u * rank + f] * Q[i * rank + f];
      truth[u * nI + i] = s;
    }
  const users: number[] = [];
  const items: number[] = [];
  const ratings: number[] = [];
  for (let u = 0; u < nU; u++)
    for (let i = 0; i < nI; i++) {
      if (rand() < density || (u + i) % 37 === 0) {
        users.push(u);
        items.push(i);
        ratings.push(truth[u * nI + i] + noise * normal());
      }
    }
  const data: Interactions = {
    users: Int32Array.from(users),
    items: Int32Array.from(items),
    ratings: Float32Array.from(ratings),
    timestamps: null,
    userIds: IdMap.from(Array.from({ length: nU }, (_, u) => `u${u}`)),
    itemIds: IdMap.from(Array.from({ length: nI }, (_, i) => `i${i}`)),
    explicit: true,
    source: 'planted',
  };
  return { data, truth, nUsers: nU, nItems: nI, noise };
}

/**
 * Implicit events with planted clusters: users and items belong to one of `groups` groups; a user
 * interacts mostly (90 %) with items of their own group.
 */
export function plantedClicks(o: { users?: number; items?: number; groups?: number; perUser?: number; seed?: number } = {}): Interactions & { userGroup: Int32Array; itemGroup: Int32Array } {
  const nU = o.users ?? 240;
  const nI = o.items ?? 120;
  const G = o.groups ?? 4;
  const per = o.perUser ?? 16;
  const rand = rng(o.seed ?? 2);
  const userGroup = Int32Array.from({ length: nU }, (_, u) => u % G);
  const itemGroup = Int32Array.from({ length: nI }, (_, i) => i % G);
  const users: number[] = [];
  const items: number[] = [];
  for (let u = 0; u < nU; u++) {
    const chosen = new Set<number>();
    while (chosen.size < per) {
      const g = rand() < 0.9 ? userGroup[u] : Math.floor(rand() * G);
      // within a group, popular items (low index) are likelier
      const k = Math.floor(Math.pow(rand(), 1.5) * (nI / G));
      chosen.add(g + G * k);
    }
    for (const i of chosen) {
      users.push(u);
      items.push(i);
    }
  }
  return {
    users: Int32Array.from(users),
    items: Int32Array.from(items),
    ratings: new Float32Array(users.length).fill(1),
    timestamps: null,
    userIds: IdMap.from(Array.from({ length: nU }, (_, u) => `user-${u}`)),
    itemIds: IdMap.from(Array.from({ length: nI }, (_, i) => `item-${i}`)),
    explicit: false,
    source: 'planted-clicks',
    userGroup,
    itemGroup,
  };
}

/**
 * Writes planted ratings as a ratings.csv (ratings rounded into 1..5), plus `rare` items rated once
 * each: a random validation split holds some of them out entirely.
 */
export function writeRatingsCsv(file: string, data: Interactions, rare = 0): { rows: number; users: number; items: number } {
  const lines = Array.from(data.users, (u, k) => `${data.userIds.ids[u]},${data.itemIds.ids[data.items[k]]},${Math.min(5, Math.max(1, Math.round(data.ratings[k])))},${1000 + k}`);
  for (let j = 0; j < rare; j++) lines.push(`${data.userIds.ids[j % data.userIds.size]},rare${j},4,${900_000 + j}`);
  writeFileSync(file, 'userId,movieId,rating,timestamp\n' + lines.join('\n') + '\n');
  return { rows: lines.length, users: data.userIds.size, items: data.itemIds.size + rare };
}
