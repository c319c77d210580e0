// Checks an exported artifact: loads it back the way the server does (artifact loader + onnxruntime
// session + Recommender), scores a sample of (user, item) pairs with ONNX Runtime and
// compares them with the in-memory model's scores.
import type { FactorModel } from '../model-format/export-onnx.js';
import { factorScore } from '../util/factor-score.js';
import { rng } from '../util/random.js';
import { loadModel } from '../model/registry.js';
import { inProcessScorer } from '../model/pool/factory.js';

export interface VerifyReport {
  ok: boolean;
  pairs: number;
  users: number;
  maxAbsDiff: number;
  /** Largest |onnx − memory| / max(1, |memory|). */
  maxRelDiff: number;
  tolerance: number;
  idsMatch: boolean;
}

export { factorScore }; // test/train/export.test.ts compares exports against it from here

export interface VerifyOptions {
  /** Users sampled (default 64; all when fewer). */
  users?: number;
  /** Items scored per sampled user (default 32; all when fewer). */
  itemsPerUser?: number;
  tolerance?: number;
  seed?: number;
}

export async function verifyArtifact(dir: string, m: FactorModel, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const tolerance = opts.tolerance ?? 1e-4;
  const rec = await loadModel(dir, inProcessScorer);
  try {
    const a = rec.artifact;
    const idsMatch =
      a.userIds.length === m.userIds.length &&
      a.itemIds.length === m.itemIds.length &&
      a.userIds.every((id, j) => id === m.userIds[j]) &&
      a.itemIds.every((id, j) => id === m.itemIds[j]);
    const nU = m.userIds.length;
    const nI = m.itemIds.length;
    const rand = rng(opts.seed ?? 7);
    const wantUsers = Math.min(nU, opts.users ?? 64);
    const perUser = Math.min(nI, opts.itemsPerUser ?? 32);
    // Evenly spread users (first and last included), random items per user.
    const users: number[] = [];
    for (let j = 0; j < wantUsers; j++) users.push(wantUsers === 1 ? 0 : Math.round((j * (nU - 1)) / (wantUsers - 1)));
    const pu: number[] = [];
    const pi: number[] = [];
    for (const u of users) {
      for (let j = 0; j < perUser; j++) {
        pu.push(u);
        pi.push(perUser === nI ? j : Math.floor(rand() * nI));
      }
    }
    // The catalog graph scores every item per row: chunk so a call holds at most ~4M scores.
    const chunk = Math.max(1, Math.floor(4_000_000 / Math.max(1, nI)));
    let maxAbs = 0;
    let maxRel = 0;
    for (let s = 0; s < pu.length; s += chunk) {
      const U = Int32Array.from(pu.slice(s, s + chunk));
      const I = Int32Array.from(pi.slice(s, s + chunk));
      const got = await rec.scorer.scorePairs(U, I);
      for (let r = 0; r < U.length; r++) {
        const want = factorScore(m, U[r], I[r]);
        const diff = Math.abs(got[r] - want);
        if (!(diff <= maxAbs)) maxAbs = Number.isNaN(diff) ? Infinity : diff;
        const rel = diff / Math.max(1, Math.abs(want));
        if (!(rel <= maxRel)) maxRel = Number.isNaN(rel) ? Infinity : rel;
      }
    }
    return { ok: idsMatch && maxRel <= tolerance, pairs: pu.length, users: users.length, maxAbsDiff: maxAbs, maxRelDiff: maxRel, tolerance, idsMatch };
  } finally {
    await rec.scorer.close();
  }
}
