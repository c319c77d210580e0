// The raw in-process scoring cost, measured in the same run as the server figures: one OrtScorer on
// this thread, no HTTP, no workers, no batcher. "run" is one ONNX run asking for the single best item
// (the matrix product, bias adds and a trivial TopK, with almost nothing copied out); "topk" is what a
// request costs the model: top-10 with the user's seen items excluded (TopK in the graph, topk-graph.ts).
import { loadArtifact } from '../../src/model-format/artifact.js';
import { OrtScorer } from '../../src/model/ort-scorer.js';
import type { TopKQuery } from '../../src/model/scorer.js';

export interface RawCost {
  /** Median ms of one run scoring one user against the catalog. */
  runMsBatch1: number;
  /** Median ms of one run scoring 64 users, divided by 64. */
  runMsPerUserBatch64: number;
  /** The same with top-k selection (k = 10, seen excluded) included. */
  topkMsBatch1: number;
  topkMsPerUserBatch64: number;
}

export async function measureRaw(modelDir: string, opts: { seconds?: number; batch?: number } = {}): Promise<RawCost> {
  const artifact = await loadArtifact(modelDir);
  const nUsers = artifact.userIds.length;
  const scorer = await OrtScorer.create(artifact.onnx, artifact.signature, artifact.itemIds.length, { intraOpNumThreads: 1 });
  const batch = opts.batch ?? 64;
  const budget = (opts.seconds ?? 4) * 1000;
  try {
    const users = (b: number, round: number) => Int32Array.from({ length: b }, (_, i) => (round * 7919 + i * 104729) % nUsers);
    const queries = (b: number, round: number): TopKQuery[] =>
      Array.from(users(b, round), (u) => ({ user: u, k: 10, exclude: artifact.seen?.[u] ?? null, allow: null }));
    const time = async (fn: (round: number) => Promise<unknown>, share: number) => {
      for (let r = 0; r < 3; r++) await fn(r); // warm
      const samples: number[] = [];
      const stop = performance.now() + budget * share;
      for (let r = 0; performance.now() < stop || samples.length < 5; r++) {
        const t0 = performance.now();
        await fn(r);
        samples.push(performance.now() - t0);
      }
      samples.sort((a, b) => a - b);
      return samples[samples.length >> 1];
    };
    const best1 = (b: number) => (round: number) => scorer.topK(Array.from(users(b, round), (u) => ({ user: u, k: 1, exclude: null, allow: null })));
    const runMsBatch1 = await time(best1(1), 0.2);
    const runMsBatchN = await time(best1(batch), 0.3);
    const topkMsBatch1 = await time((r) => scorer.topK(queries(1, r)), 0.2);
    const topkMsBatchN = await time((r) => scorer.topK(queries(batch, r)), 0.3);
    return { runMsBatch1, runMsPerUserBatch64: runMsBatchN / batch, topkMsBatch1, topkMsPerUserBatch64: topkMsBatchN / batch };
  } finally {
    await scorer.close();
  }
}
