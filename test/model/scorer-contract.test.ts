// The Scorer contract (scorer-contract.ts) run against every implementation the server composes —
// the in-process ONNX scorer (with and without the top-k node appended to the graph), the worker pool,
// and the micro-batcher in front of either — over real ONNX models: the project's own exporter
// (catalog signature) and the PyTorch exports in test/fixtures/torch (pair and packed signatures).
// Workers load dist/ (the global setup keeps it current).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { loadArtifact, type Artifact } from '../../src/model-format/artifact.js';
import { MicroBatcher } from '../../src/model/batcher.js';
import { int8Refusal, quantizeCatalog } from '../../src/model/int8-exact.js';
import { createModelScorer, OrtScorer } from '../../src/model/ort-scorer.js';
import { WorkerPool } from '../../src/model/pool/pool.js';
import type { Scorer } from '../../src/model/scorer.js';
import { buildSynthetic, ensureSyntheticModel, type SyntheticSpec } from '../fixtures/synthetic.js';
import { scorerContract, type ScoreReference, type ScorerSubject } from './scorer-contract.js';

/** Each implementation over one artifact; the batcher's concurrency follows its downstream as in the server. */
function subjectsFor(artifact: () => Artifact, opts: { withoutGraphTopK?: boolean; int8?: boolean } = {}): ScorerSubject[] {
  const ort = (graphTopK = true) => OrtScorer.create(artifact().onnx, artifact().signature, artifact().itemIds.length, { graphTopK });
  const pool = () => {
    const a = artifact();
    return WorkerPool.create({ onnx: a.onnx, signature: a.signature, nItems: a.itemIds.length, seen: a.seen }, { workers: 2, intraOpNumThreads: 1 });
  };
  const batched = async (inner: Scorer, concurrency: number) => new MicroBatcher(inner, { maxBatchSize: 8, maxBatchDelayMs: 2, concurrency });
  // int8 scoring with the exact re-rank, in-process and in workers (its arrays in shared memory).
  const quantized = (shared: boolean) => {
    const a = artifact();
    if (int8Refusal(a.factors!, a.itemIds.length) !== null) throw new Error('the contract model must take the int8 path');
    return quantizeCatalog(a.factors!, a.itemIds.length, shared ? (b) => new SharedArrayBuffer(b) : undefined);
  };
  const int8Subjects: ScorerSubject[] = [
    {
      name: 'Int8ExactScorer',
      create: async () => {
        const refused: string[] = [];
        const s = await createModelScorer(artifact().onnx, artifact().signature, artifact().itemIds.length, { int8: quantized(false), onInt8Refused: (r) => refused.push(r) });
        if (refused.length > 0) throw new Error(`int8 refused: ${refused.join('; ')}`);
        return s;
      },
    },
    {
      name: 'WorkerPool with int8',
      create: () => {
        const a = artifact();
        return WorkerPool.create({ onnx: a.onnx, signature: a.signature, nItems: a.itemIds.length, seen: a.seen, int8: quantized(true) }, { workers: 2, intraOpNumThreads: 1 });
      },
    },
  ];
  return [
    ...(opts.int8 ? int8Subjects : []),
    { name: 'OrtScorer', create: () => ort() },
    ...(opts.withoutGraphTopK ? [{ name: 'OrtScorer without the graph top-k', create: () => ort(false) }] : []),
    { name: 'WorkerPool', create: pool },
    { name: 'MicroBatcher over OrtScorer', create: async () => batched(await ort(), 1) },
    { name: 'MicroBatcher over WorkerPool', create: async () => batched(await pool(), 2) },
  ];
}

describe('over the exporter’s catalog model', () => {
  const SPEC: SyntheticSpec = { users: 60, items: 250, factors: 12, seed: 11, seenPerUser: 15, genres: 3 };
  let dir: string;
  let artifact: Artifact;
  let reference: ScoreReference;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-contract-'));
    await ensureSyntheticModel(dir, SPEC);
    artifact = await loadArtifact(dir);
    // The same factors the exporter wrote, scored in float64: μ + b_u + b_i + p_u·q_i.
    const { model: m } = buildSynthetic(SPEC);
    const d = m.factors;
    reference = {
      nUsers: SPEC.users,
      nItems: SPEC.items,
      tolerance: 1e-5,
      seen: artifact.seen,
      score(u, i) {
        let s = (m.globalBias ?? 0) + m.userBias![u] + m.itemBias![i];
        for (let f = 0; f < d; f++) s += m.userFactors[u * d + f] * m.itemFactors[i * d + f];
        return s;
      },
    };
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  scorerContract(
    subjectsFor(() => artifact, { withoutGraphTopK: true, int8: true }),
    () => reference,
  );
});

const TORCH = path.resolve(import.meta.dirname, '../fixtures/torch');
/** Every (user, item) score torch computed for its exports (test/fixtures/torch/README.md). */
const torchScores = JSON.parse(readFileSync(path.join(TORCH, 'expected_scores.json'), 'utf8')) as { n_users: number; n_items: number; pairs: [number, number, number][] };

describe.each(['edb_pair', 'edb_fastai'])('over the PyTorch export %s', (name) => {
  let artifact: Artifact;
  let reference: ScoreReference;

  beforeAll(async () => {
    artifact = await loadArtifact(path.join(TORCH, name));
    const { n_users: nUsers, n_items: nItems, pairs } = torchScores;
    const table = new Float64Array(nUsers * nItems).fill(NaN);
    for (const [u, i, s] of pairs) table[u * nItems + i] = s;
    if (table.some(Number.isNaN)) throw new Error('expected_scores.json must score every (user, item) pair');
    reference = { nUsers, nItems, tolerance: 1e-5, seen: artifact.seen, score: (u, i) => table[u * nItems + i] };
  });

  scorerContract(subjectsFor(() => artifact), () => reference);
});
