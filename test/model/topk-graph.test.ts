// Top-k selected inside the ONNX graph must give exactly what scanning the full score matrix gives:
// same items, same scores, ties by lower index, exclusions honoured, NaN never returned.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { OrtScorer } from '../../src/model/ort-scorer.js';
import type { TopKQuery } from '../../src/model/scorer.js';
import { graphCandidates, pickCandidates } from '../../src/model/topk-graph.js';
import { writeArtifact } from '../../src/model-format/export-onnx.js';
import { gaussian, rng } from '../../src/util/random.js';

const USERS = 40;
const ITEMS = 600;
const D = 4;

/** Item factors repeat every 7 items and biases are equal, so scores tie in groups; item 13 scores NaN. */
async function writeTieModel(dir: string) {
  const normal = gaussian(rng(5));
  const base = Float32Array.from({ length: 7 * D }, () => Math.round(normal() * 4) / 4);
  const itemFactors = new Float32Array(ITEMS * D);
  for (let i = 0; i < ITEMS; i++) for (let f = 0; f < D; f++) itemFactors[i * D + f] = base[(i % 7) * D + f];
  itemFactors[13 * D] = NaN;
  const userFactors = Float32Array.from({ length: USERS * D }, () => Math.round(normal() * 4) / 4);
  const seen = Array.from({ length: USERS }, (_, u) => Array.from({ length: 1 + (u % 30) }, (_, j) => (u * 17 + j * 29) % ITEMS).sort((a, b) => a - b)).map((s) => [...new Set(s)]);
  await writeArtifact(
    dir,
    { userIds: Array.from({ length: USERS }, (_, u) => `u${u}`), itemIds: Array.from({ length: ITEMS }, (_, i) => `i${i}`), factors: D, userFactors, itemFactors, kind: 'implicit' },
    { seen },
  );
}

describe('top-k in the graph', () => {
  let dir: string;
  let inGraph: OrtScorer;
  let scan: OrtScorer;
  let seen: Int32Array[];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-topk-graph-'));
    await writeTieModel(dir);
    const a = await loadArtifact(dir);
    seen = a.seen!;
    inGraph = await OrtScorer.create(a.onnx, a.signature, ITEMS);
    scan = await OrtScorer.create(a.onnx, a.signature, ITEMS, { graphTopK: false });
  });

  afterAll(async () => {
    await inGraph?.close();
    await scan?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is used for catalog models', () => {
    expect(inGraph.graphTopK).toBe(true);
    expect(scan.graphTopK).toBe(false);
  });

  it('answers exactly as the full scan: ties by lower index, exclusions, every k', async () => {
    // Without the NaN item in play: exclude it everywhere, so the graph path is taken.
    const nan = 13;
    const queries: TopKQuery[] = Array.from({ length: USERS }, (_, u) => {
      const ex = new Set<number>([nan, ...(u % 2 === 0 ? seen[u] : [])]);
      return { user: u, k: [1, 2, 7, 10, 50, 150][u % 6], exclude: Int32Array.from([...ex].sort((a, b) => a - b)), allow: null };
    });
    const [got, want] = await Promise.all([inGraph.topK(queries), scan.topK(queries)]);
    got.forEach((r, i) => {
      expect(Array.from(r.items), `user ${i}`).toEqual(Array.from(want[i].items));
      expect(Array.from(r.scores)).toEqual(Array.from(want[i].scores));
    });
    // Ties really occurred (groups of 7 equal items).
    expect(new Set(want[4].scores).size).toBeLessThan(want[4].scores.length);
  });

  it('falls back to the full scan for NaN candidates and filter masks, with the same answers', async () => {
    const allow = Uint8Array.from({ length: ITEMS }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const queries: TopKQuery[] = Array.from({ length: USERS }, (_, u) => ({ user: u, k: 25, exclude: null, allow: u % 2 ? allow : null }));
    for (const batch of [queries, queries.filter((q) => q.allow === null)]) {
      const [got, want] = await Promise.all([inGraph.topK(batch), scan.topK(batch)]);
      got.forEach((r, i) => {
        expect(Array.from(r.items)).toEqual(Array.from(want[i].items));
        expect(r.items).not.toContain(13);
      });
    }
  });

  it('keeps pair scores unchanged', async () => {
    const users = Int32Array.from({ length: 30 }, (_, i) => i % USERS);
    const items = Int32Array.from({ length: 30 }, (_, i) => (i * 37) % ITEMS);
    expect(Array.from(await inGraph.scorePairs(users, items))).toEqual(Array.from(await scan.scorePairs(users, items)));
  });

  it('asks for k plus the exclusions, and for nothing when a mask or a large share is needed', () => {
    const q = (k: number, ex = 0, allow: Uint8Array | null = null) => ({ k, exclude: ex ? new Int32Array(ex) : null, allow });
    expect(graphCandidates([q(10), q(5, 20)], 50_000)).toBe(25);
    expect(graphCandidates([q(10), q(5, 20, new Uint8Array(1))], 50_000)).toBe(0);
    expect(graphCandidates([q(10, 10_000)], 50_000)).toBe(0);
    expect(graphCandidates([q(200, 500)], 200)).toBe(200); // a small catalog: the whole row
    expect(graphCandidates([q(200, 500)], 3000)).toBe(0); // a quarter of it: scan instead
  });

  it('picks around exclusions and stops at NaN', () => {
    const values = Float32Array.of(9, 8, 7, 6, 5);
    const indices = BigInt64Array.of(4n, 2n, 9n, 1n, 3n);
    expect(Array.from(pickCandidates(values, indices, 0, 5, 3, Int32Array.of(2, 3))!.items)).toEqual([4, 9, 1]);
    expect(Array.from(pickCandidates(values, indices, 1, 4, 10, null)!.items)).toEqual([2, 9, 1, 3]);
    expect(pickCandidates(Float32Array.of(9, NaN), BigInt64Array.of(1n, 2n), 0, 2, 2, null)).toBeNull();
  });
});
