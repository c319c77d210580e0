// Float32 against exact int8 scoring (src/model/int8-exact.ts) per catalog size, in-process: one user
// alone (the latency a lone request pays the model), and 64 users per run (throughput). The two
// scorers run alternately, round by round, so a busy shared machine slows both alike; every int8
// answer is compared bit for bit with float32's, and the share that matched is reported (it must be 1).
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { int8Refusal, quantizeCatalog } from '../../src/model/int8-exact.js';
import { createModelScorer, Int8ExactScorer, OrtScorer } from '../../src/model/ort-scorer.js';
import type { Ranked, TopKQuery } from '../../src/model/scorer.js';
import { httpLoad } from './http-load.js';
import { startServerProcess } from './server-process.js';
import { BENCH_MODEL, ensureSyntheticModel, userId } from './synthetic.js';

export interface CatalogRow {
  items: number;
  /** One user per run, k = 10, seen items excluded: median ms. */
  fp32P50Ms: number;
  int8P50Ms: number;
  /** 64 users per run: median ms per user. */
  fp32MsPerUserBatch64: number;
  int8MsPerUserBatch64: number;
  /** Items rescored in float32 per query, as a share of the catalog. */
  rescoredFraction: number;
  /** Queries the int8 path handed to float32 (no provable candidate set within its limit). */
  fallbacks: number;
  queries: number;
  /** int8 answers bit-identical to float32's / answers compared. */
  identical: number;
  compared: number;
  quantizeMs: number;
  /** This process after both scorers are built (float32 and int8 side by side), MB. */
  rssMb: number;
}

export interface LargeCatalogOptions {
  /** Rounds of (float32, int8), alternating. */
  rounds?: number;
  /** Single-user queries per scorer per round. */
  perRound?: number;
  intraOpThreads?: number;
  log?: (line: string) => void;
}

export function modelDirFor(items: number): string {
  const spec = { ...BENCH_MODEL, items };
  return path.join(os.tmpdir(), 'recserve-bench', `model-${spec.users}x${items}x${spec.factors}-s${spec.seed}`);
}

export async function measureCatalog(items: number, opts: LargeCatalogOptions = {}): Promise<CatalogRow> {
  const log = opts.log ?? (() => {});
  const rounds = opts.rounds ?? 6;
  const perRound = opts.perRound ?? 20;
  const dir = modelDirFor(items);
  mkdirSync(path.dirname(dir), { recursive: true });
  let t = performance.now();
  await ensureSyntheticModel(dir, { ...BENCH_MODEL, items });
  const artifact = await loadArtifact(dir);
  log(`  ${items} items: model ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const refusal = int8Refusal(artifact.factors!, items);
  if (refusal) throw new Error(`the bench model cannot take the int8 path: ${refusal}`);
  t = performance.now();
  const quantized = quantizeCatalog(artifact.factors!, items);
  const quantizeMs = performance.now() - t;
  const threads = opts.intraOpThreads ?? 1;
  const fp32 = await OrtScorer.create(artifact.onnx, artifact.signature, items, { intraOpNumThreads: threads });
  const refused: string[] = [];
  const int8 = await createModelScorer(artifact.onnx, artifact.signature, items, { intraOpNumThreads: threads, int8: quantized, onInt8Refused: (r) => refused.push(r) });
  if (!(int8 instanceof Int8ExactScorer)) throw new Error(`int8 scoring refused: ${refused.join('; ')}`);
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  const nUsers = artifact.userIds.length;
  const query = (u: number): TopKQuery => ({ user: u, k: 10, exclude: artifact.seen?.[u] ?? null, allow: null });
  let identical = 0;
  let compared = 0;
  const compare = (a: Ranked[], b: Ranked[]) => {
    a.forEach((x, j) => {
      compared++;
      if (sameBits(x, b[j])) identical++;
    });
  };
  try {
    // Warm both (arenas, caches) before timing.
    for (let r = 0; r < 3; r++) for (const s of [fp32, int8]) await s.topK([query(r)]);
    const single: Record<'fp32' | 'int8', number[]> = { fp32: [], int8: [] };
    const batch: Record<'fp32' | 'int8', number[]> = { fp32: [], int8: [] };
    const before = int8.int8Stats;
    for (let round = 0; round < rounds; round++) {
      const users = Array.from({ length: perRound }, (_, i) => ((round * perRound + i) * 7919) % nUsers);
      const answers: Record<'fp32' | 'int8', Ranked[]> = { fp32: [], int8: [] };
      // Alternate which goes first, so neither always runs on a cache the other warmed.
      for (const name of round % 2 === 0 ? (['fp32', 'int8'] as const) : (['int8', 'fp32'] as const)) {
        const s = name === 'fp32' ? fp32 : int8;
        for (const u of users) {
          const t0 = performance.now();
          const [ranked] = await s.topK([query(u)]);
          single[name].push(performance.now() - t0);
          answers[name].push(ranked);
        }
      }
      compare(answers.int8, answers.fp32);
    }
    const after = int8.int8Stats;
    const singleQueries = after.queries - before.queries;
    const rescoredFraction = (after.rescored - before.rescored) / Math.max(1, singleQueries - (after.fallbacks - before.fallbacks)) / items;
    // 64 users per run (fewer rounds at 1M: a run is tens of ms).
    const batchRounds = Math.max(2, Math.min(rounds, Math.round((rounds * 200_000) / items)));
    for (let round = 0; round < batchRounds; round++) {
      const qs = Array.from({ length: 64 }, (_, i) => query(((round * 64 + i) * 104729) % nUsers));
      const got: Record<'fp32' | 'int8', Ranked[]> = { fp32: [], int8: [] };
      for (const name of round % 2 === 0 ? (['fp32', 'int8'] as const) : (['int8', 'fp32'] as const)) {
        const t0 = performance.now();
        got[name] = await (name === 'fp32' ? fp32 : int8).topK(qs);
        batch[name].push((performance.now() - t0) / 64);
      }
      compare(got.int8, got.fp32);
    }
    const end = int8.int8Stats;
    return {
      items,
      fp32P50Ms: median(single.fp32),
      int8P50Ms: median(single.int8),
      fp32MsPerUserBatch64: median(batch.fp32),
      int8MsPerUserBatch64: median(batch.int8),
      rescoredFraction,
      fallbacks: end.fallbacks - before.fallbacks,
      queries: end.queries - before.queries,
      identical,
      compared,
      quantizeMs,
      rssMb,
    };
  } finally {
    await fp32.close();
    await int8.close();
  }
}

export function formatRows(rows: CatalogRow[]): string[] {
  const out = [
    '| items | fp32 p50 ms (1 user) | int8 p50 ms | speed-up | fp32 ms/user (64) | int8 ms/user (64) | speed-up | rescored / query | fallbacks | identical | quantize ms | bench RSS MB |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.items.toLocaleString('en')} | ${r.fp32P50Ms.toFixed(2)} | ${r.int8P50Ms.toFixed(2)} | ${(r.fp32P50Ms / r.int8P50Ms).toFixed(2)}× | ` +
        `${r.fp32MsPerUserBatch64.toFixed(3)} | ${r.int8MsPerUserBatch64.toFixed(3)} | ${(r.fp32MsPerUserBatch64 / r.int8MsPerUserBatch64).toFixed(2)}× | ` +
        `${(r.rescoredFraction * r.items).toFixed(1)} (${(r.rescoredFraction * 100).toPrecision(2)}%) | ${r.fallbacks}/${r.queries} | ${r.identical}/${r.compared} | ${r.quantizeMs.toFixed(0)} | ${r.rssMb.toFixed(0)} |`,
    );
  }
  return out;
}

function sameBits(a: Ranked, b: Ranked): boolean {
  if (a.items.length !== b.items.length) return false;
  for (let j = 0; j < a.items.length; j++) if (a.items[j] !== b.items[j] || !Object.is(a.scores[j], b.scores[j])) return false;
  return true;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[s.length >> 1];
}

export interface ServedLargeCatalog {
  items: number;
  /** REST, one connection: the served latency of one user alone, exact top-10. */
  p50Ms: number;
  p99Ms: number;
  rps: number;
  /** The server process after the run (all threads), MB. */
  rssMb: number;
  errors: number;
}

/** Starts `recserve serve` on the catalog's model (int8 as configured by default) and drives REST at one connection. */
export async function measureServed(items: number, opts: { seconds: number; tool?: 'wrk' | 'autocannon'; env?: Record<string, string> }): Promise<ServedLargeCatalog> {
  const dir = modelDirFor(items);
  await ensureSyntheticModel(dir, { ...BENCH_MODEL, items });
  const work = path.dirname(dir);
  const server = await startServerProcess({
    modelDir: dir,
    dataDir: path.join(work, 'data-large'),
    env: { LOG_LEVEL: 'warn', RECSERVE_MAX_BATCH_SIZE: '16', ...opts.env },
    logFile: path.join(work, 'server-large.log'),
  });
  try {
    const requests = Array.from({ length: 200 }, (_, i) => ({ path: '/api/v1.0/predictions', body: JSON.stringify({ jsonData: { user_id: userId((i * 7919) % BENCH_MODEL.users), k: 10 } }) }));
    await httpLoad({ base: server.base, connections: 1, seconds: 2, requests, tool: opts.tool });
    const r = await httpLoad({ base: server.base, connections: 1, seconds: opts.seconds, requests, tool: opts.tool });
    return { items, p50Ms: r.p50Ms, p99Ms: r.p99Ms, rps: r.rps, rssMb: server.rssMb(), errors: r.errors + r.non2xx };
  } finally {
    await server.stop();
  }
}

/** The JSON keys of the large-catalog part (bench/serve.ts merges them into its line). */
export function largeCatalogSummary(rows: CatalogRow[], served: ServedLargeCatalog | null): Record<string, number | null> {
  const compared = rows.reduce((a, r) => a + r.compared, 0);
  const biggest = rows.reduce((a, r) => (r.items > a.items ? r : a), rows[0]);
  const round = (x: number | undefined, d: number) => (x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(d)));
  const out: Record<string, number | null> = {
    int8_exact_share: compared === 0 ? null : round(rows.reduce((a, r) => a + r.identical, 0) / compared, 6),
    rescored_fraction: round(biggest?.rescoredFraction, 8),
    p50_ms_1m_items: served?.items === 1_000_000 ? round(served.p50Ms, 3) : null,
    rss_mb_1m_items: served?.items === 1_000_000 ? round(served.rssMb, 0) : null,
  };
  for (const r of rows) {
    out[`int8_p50_ms_${r.items}`] = round(r.int8P50Ms, 3);
    out[`int8_speedup_${r.items}`] = round(r.fp32P50Ms / r.int8P50Ms, 2);
    out[`int8_speedup_batch64_${r.items}`] = round(r.fp32MsPerUserBatch64 / r.int8MsPerUserBatch64, 2);
  }
  return out;
}
