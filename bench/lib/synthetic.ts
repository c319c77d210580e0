// The benchmark's synthetic model: random factors with a fixed seed, written through the real exporter
// (writeArtifact), so the server loads exactly what a trained model would give it. Items carry one
// catalog field (`genre`) for filter requests, and every user a short seen list for exclude_seen.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeArtifact, type FactorModel } from '../../src/model-format/export-onnx.js';
import { gaussian, rng } from '../../src/util/random.js';

export interface SyntheticSpec {
  users: number;
  items: number;
  factors: number;
  seed: number;
  /** Seen items per user (exclude_seen lists). */
  seenPerUser: number;
  /** Distinct values of the `genre` catalog field. */
  genres: number;
}

export const BENCH_MODEL: SyntheticSpec = { users: 10_000, items: 50_000, factors: 64, seed: 20261123, seenPerUser: 20, genres: 8 };

export const userId = (u: number): string => `u${u}`;
export const itemId = (i: number): string => `i${i}`;
export const genreOf = (i: number, genres: number): string => `g${i % genres}`;

/**
 * Writes the model into dir unless the same spec is already there (a stamp file records it); returns
 * dir. Building 50k items takes about a second; 1M items tens of seconds, so the cache matters.
 */
export async function ensureSyntheticModel(dir: string, spec: SyntheticSpec): Promise<string> {
  const stamp = path.join(dir, 'synthetic.json');
  const want = JSON.stringify(spec);
  if (existsSync(path.join(dir, 'model.onnx')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return dir;
  const { model, seen, catalog, popularity } = buildSynthetic(spec);
  await writeArtifact(dir, model, { name: 'bench', version: `synthetic-${spec.items}`, seen, catalog, popularity });
  writeFileSync(stamp, want);
  return dir;
}

export function buildSynthetic(spec: SyntheticSpec) {
  const { users, items, factors: d, seed } = spec;
  const rand = rng(seed);
  const normal = gaussian(rand);
  const scale = 1 / Math.sqrt(d);
  const userFactors = new Float32Array(users * d);
  for (let j = 0; j < userFactors.length; j++) userFactors[j] = normal() * scale;
  const itemFactors = new Float32Array(items * d);
  for (let j = 0; j < itemFactors.length; j++) itemFactors[j] = normal() * scale;
  const userBias = Float32Array.from({ length: users }, () => 0.1 * normal());
  const itemBias = Float32Array.from({ length: items }, () => 0.1 * normal());
  const seen: number[][] = [];
  const popularity = new Float64Array(items);
  for (let u = 0; u < users; u++) {
    const s = new Set<number>();
    while (s.size < Math.min(spec.seenPerUser, items)) s.add(Math.floor(rand() * items));
    const list = [...s].sort((a, b) => a - b);
    for (const i of list) popularity[i]++;
    seen.push(list);
  }
  const catalog = Array.from({ length: items }, (_, i) => ({ genre: genreOf(i, spec.genres) }));
  const model: FactorModel = {
    userIds: Array.from({ length: users }, (_, u) => userId(u)),
    itemIds: Array.from({ length: items }, (_, i) => itemId(i)),
    factors: d,
    userFactors,
    itemFactors,
    userBias,
    itemBias,
    globalBias: 0,
    kind: 'implicit',
  };
  return { model, seen, catalog, popularity };
}
