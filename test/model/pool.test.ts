// The worker pool with real worker threads and real ONNX sessions: its answers are the in-process
// scorer's answers bit for bit, work spreads over the workers, errors come back as errors, and a
// worker that dies is replaced. Workers load dist/ (npm test builds first).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArtifact, type Artifact } from '../../src/model-format/artifact.js';
import { OrtScorer } from '../../src/model/ort-scorer.js';
import { WorkerPool, type PoolLogger } from '../../src/model/pool/pool.js';
import type { TopKQuery } from '../../src/model/scorer.js';
import { ensureSyntheticModel, type SyntheticSpec } from '../fixtures/synthetic.js';

const SPEC: SyntheticSpec = { users: 200, items: 3000, factors: 16, seed: 7, seenPerUser: 30, genres: 5 };

class CapturingLogger implements PoolLogger {
  lines: { level: string; obj: object; msg: string }[] = [];
  debug(obj: object, msg: string) { this.lines.push({ level: 'debug', obj, msg }); }
  info(obj: object, msg: string) { this.lines.push({ level: 'info', obj, msg }); }
  warn(obj: object, msg: string) { this.lines.push({ level: 'warn', obj, msg }); }
  error(obj: object, msg: string) { this.lines.push({ level: 'error', obj, msg }); }
}

describe('WorkerPool', () => {
  let dir: string;
  let artifact: Artifact;
  let reference: OrtScorer;
  let pool: WorkerPool;
  const log = new CapturingLogger();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-pool-'));
    await ensureSyntheticModel(dir, SPEC);
    artifact = await loadArtifact(dir);
    reference = await OrtScorer.create(artifact.onnx, artifact.signature, artifact.itemIds.length);
    pool = await WorkerPool.create(
      { onnx: artifact.onnx, signature: artifact.signature, nItems: artifact.itemIds.length, seen: artifact.seen },
      { workers: 2, intraOpNumThreads: 1, log },
    );
  });

  afterAll(async () => {
    await pool?.close();
    await reference?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Mixed options: k, the user's seen list (sent by reference), an ad-hoc exclusion, filter masks. */
  function mixedQueries(): TopKQuery[] {
    const allowEven = Uint8Array.from({ length: SPEC.items }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const allowFew = Uint8Array.from({ length: SPEC.items }, (_, i) => (i % 97 === 3 ? 1 : 0));
    return Array.from({ length: 40 }, (_, j) => {
      const user = (j * 37) % SPEC.users;
      return {
        user,
        k: 1 + (j % 25),
        exclude: j % 3 === 0 ? artifact.seen![user] : j % 3 === 1 ? Int32Array.of(1, 5, 17, 2999) : null,
        allow: j % 4 === 0 ? allowEven : j % 4 === 1 ? allowFew : null,
      };
    });
  }

  it('answers top-k exactly as the in-process scorer, whatever the mix of options', async () => {
    const queries = mixedQueries();
    const [got, want] = await Promise.all([pool.topK(queries), reference.topK(queries)]);
    expect(got).toHaveLength(queries.length);
    got.forEach((r, i) => {
      expect(Array.from(r.items)).toEqual(Array.from(want[i].items));
      expect(Array.from(r.scores)).toEqual(Array.from(want[i].scores));
    });
    // The seen lists really were excluded (by reference, from the worker's shared copy).
    const seenQuery = queries.findIndex((q) => q.exclude === artifact.seen![q.user]);
    for (const item of got[seenQuery].items) expect(artifact.seen![queries[seenQuery].user]).not.toContain(item);
  });

  it('scores pairs exactly as the in-process scorer', async () => {
    const users = Int32Array.from({ length: 50 }, (_, i) => (i * 7) % SPEC.users);
    const items = Int32Array.from({ length: 50 }, (_, i) => (i * 131) % SPEC.items);
    const [got, want] = await Promise.all([pool.scorePairs(users, items), reference.scorePairs(users, items)]);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('spreads concurrent calls over its workers', async () => {
    const before = pool.stats().map((s) => s.jobs);
    const queries = mixedQueries();
    const answers = await Promise.all(queries.map((q) => pool.topK([q])));
    const want = await reference.topK(queries);
    answers.forEach((a, i) => expect(Array.from(a[0].items)).toEqual(Array.from(want[i].items)));
    const after = pool.stats().map((s) => s.jobs);
    expect(after[0] - before[0]).toBeGreaterThan(0);
    expect(after[1] - before[1]).toBeGreaterThan(0);
    expect(new Set(pool.stats().map((s) => s.threadId)).size).toBe(2);
  });

  it('returns an ORT failure as an error for that call only, and keeps the worker', async () => {
    const threadIds = pool.stats().map((s) => s.threadId);
    await expect(pool.topK([{ user: SPEC.users + 1000, k: 3, exclude: null, allow: null }])).rejects.toThrow(/indices|out of|bound/i);
    expect(pool.stats().map((s) => s.threadId)).toEqual(threadIds);
    expect(await pool.topK([{ user: 1, k: 3, exclude: null, allow: null }])).toHaveLength(1);
  });

  it('replaces a worker that dies; only the call it was running fails', async () => {
    const victim = pool.threads[0];
    // Kill it, then send it work before the pool has heard of the death: that call is lost with it.
    const dying = victim.terminate();
    const running = pool.topK([{ user: 3, k: 5, exclude: null, allow: null }]);
    await dying;
    await expect(running).rejects.toThrow(/inference worker 0 stopped/);
    // The replacement loads the model in the background; calls meanwhile go to worker 1 or wait.
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.topK([{ user: i, k: 4, exclude: null, allow: null }])));
    expect(answers.every((a) => a[0].items.length === 4)).toBe(true);
    await waitFor(() => pool.stats()[0].ready);
    expect(pool.threads[0]).not.toBe(victim);
    expect(pool.stats()[0].restarts).toBe(1);
    expect(log.lines.some((l) => l.level === 'warn' && l.msg === 'replacing inference worker')).toBe(true);
  });

  it('refuses to start on a model the workers cannot load, with the reason', async () => {
    await expect(
      WorkerPool.create({ onnx: new TextEncoder().encode('not an onnx model'), signature: artifact.signature, nItems: 3 }, { workers: 1, intraOpNumThreads: 1 }),
    ).rejects.toThrow(/could not load the model/);
  });

  it('rejects calls after close', async () => {
    const p = await WorkerPool.create({ onnx: artifact.onnx, signature: artifact.signature, nItems: artifact.itemIds.length }, { workers: 1, intraOpNumThreads: 1 });
    await p.close();
    await expect(p.topK([{ user: 1, k: 1, exclude: null, allow: null }])).rejects.toThrow(/closed/);
  });
});

async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
