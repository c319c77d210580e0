// The demo model `recserve serve` falls back to when no model directory exists: a small synthetic
// movie catalogue with planted taste structure, built deterministically in a few milliseconds.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { gaussian, rng } from '../util/random.js';
import { writeArtifact, type FactorModel } from './export-onnx.js';

export const DEMO = { users: 300, items: 120, factors: 8, seed: 42, version: 'demo-1' } as const;

const GENRES = ['Action', 'Comedy', 'Drama', 'Sci-Fi', 'Romance', 'Thriller', 'Animation', 'Documentary'];
const ADJ = ['Silent', 'Last', 'Golden', 'Hidden', 'Broken', 'Electric', 'Distant', 'Wild', 'Quiet', 'Crimson', 'Lost', 'Bright'];
const NOUN = ['River', 'Empire', 'Garden', 'Signal', 'Harbor', 'Machine', 'Summer', 'Frontier', 'Mirror', 'Orbit'];

/** Writes the demo model into dir unless one is already there; returns the directory. */
export async function ensureDemoModel(dir: string): Promise<string> {
  if (existsSync(path.join(dir, 'model.onnx'))) return dir;
  const { model, extras } = buildDemo();
  await writeArtifact(dir, model, extras);
  return dir;
}

export function buildDemo() {
  const { users: nU, items: nI, factors: d, seed } = DEMO;
  const rand = rng(seed);
  const normal = gaussian(rand);
  // Each genre is a direction in taste space; an item leans towards its genre, a user towards two.
  const genreVec = GENRES.map(() => Float32Array.from({ length: d }, () => normal()));
  const catalog: Record<string, unknown>[] = [];
  const itemFactors = new Float32Array(nI * d);
  const itemBias = new Float32Array(nI);
  for (let i = 0; i < nI; i++) {
    const g = i % GENRES.length;
    for (let f = 0; f < d; f++) itemFactors[i * d + f] = 0.3 * genreVec[g][f] + 0.15 * normal();
    itemBias[i] = 0.3 * normal();
    catalog.push({
      title: `The ${ADJ[i % ADJ.length]} ${NOUN[Math.floor(i / ADJ.length) % NOUN.length]} (${1970 + ((i * 7) % 55)})`,
      genre: GENRES[g],
      year: 1970 + ((i * 7) % 55),
    });
  }
  const userFactors = new Float32Array(nU * d);
  const userBias = new Float32Array(nU);
  const seen: number[][] = [];
  const popularity = new Float64Array(nI);
  for (let u = 0; u < nU; u++) {
    const a = Math.floor(rand() * GENRES.length);
    const b = Math.floor(rand() * GENRES.length);
    for (let f = 0; f < d; f++) userFactors[u * d + f] = 0.25 * genreVec[a][f] + 0.15 * genreVec[b][f] + 0.15 * normal();
    userBias[u] = 0.2 * normal();
    // Each user has watched a few items, mostly from their favourite genre.
    const watched = new Set<number>();
    const count = 3 + Math.floor(rand() * 8);
    while (watched.size < count) {
      const g = rand() < 0.7 ? a : Math.floor(rand() * GENRES.length);
      watched.add(g + GENRES.length * Math.floor(rand() * (nI / GENRES.length)));
    }
    seen.push([...watched].sort((x, y) => x - y));
    for (const i of watched) popularity[i]++;
  }
  const model: FactorModel = {
    userIds: Array.from({ length: nU }, (_, u) => String(u + 1)),
    itemIds: Array.from({ length: nI }, (_, i) => String(i + 1)),
    factors: d,
    userFactors,
    itemFactors,
    userBias,
    itemBias,
    globalBias: 2.9,
    kind: 'explicit',
    ratingRange: [1, 5],
  };
  return {
    model,
    extras: { name: 'demo-movies', version: DEMO.version, catalog, popularity, seen, regularization: 0.1, training: { source: 'synthetic demo', seed } },
  };
}
