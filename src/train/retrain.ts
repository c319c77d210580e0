// Retraining on base data plus stored interactions, gated by a holdout comparison with the current
// model, publishing a new version directory only when the candidate is not worse.
//
//   data     base rows: a base interaction log (--base / RECSERVE_RETRAIN_BASE), else what the current
//            model knows — each user's training items (`seen`) with the model's own predicted rating
//            (a self-distillation that keeps the old model's knowledge); plus the stored feedback rows
//            (reward r → rating lo + r·(hi − lo); `skipped` rows are left out), latest per (user, item),
//            overriding base rows for the same pair.
//            Feedback rows for items no catalog lists (neither the current model nor the base log) are
//            dropped first: a retrain never turns a client's invented id into a catalog item.
//   holdout  the newest `holdoutFraction` of the feedback rows (a temporal split; their pairs are also
//            removed from the base rows, so nothing about them leaks into training), plus a seeded
//            sample of base rows (as many as the feedback holdout, at least `minHoldout`, at most
//            `holdoutFraction` of the base), also left out of training.
//   train    ALS (src/train/als.ts) on the rest, with the current model's rank and rating range.
//   gate     both models score both holdouts through the Recommender (pair scores; a pair either model
//            does not know gets the training mean). Publish only when (1) on the feedback holdout
//            RMSE_candidate ≤ RMSE_current·(1 + tol), and (2) on the base holdout the candidate is within
//            `baseTolerance` of the same training without any feedback (the reference; the current model
//            trained on those very rows, so it is no fair bar there). Clients write only feedback, so
//            (1) alone is theirs to pass; (2) is not: feedback that overturns what the base data says
//            is refused however consistent it is. Fewer than `minHoldout` held-out feedback rows:
//            nothing is published (not enough evidence).
//   publish  the evaluated model (not a refit) goes to <root>/.staging-…, then one rename to
//            <root>/r<N> (the VersionRepository names, stages and publishes); publish.json beside it
//            holds this report. Its training record carries
//            `interactions_through` (the newest feedback row it learnt from): a server loading it re-folds
//            users with newer feedback, so the held-out feedback still reaches them through fold-in.
import { RETRAIN_DEFAULTS } from '../config/retrain.js';
import { DomainError } from '../errors.js';
import path from 'node:path';
import { loadArtifact, type Artifact } from '../model-format/artifact.js';
import type { RetrainSummary } from '../model-format/retrain-contract.js';
import { VersionRepository } from '../model-format/version-repository.js';
import { loadModel, type ScorerFactory } from '../model/registry.js';
import { Recommender } from '../model/recommender.js';
import { inProcessScorer } from '../model/pool/factory.js';
import { trainAls, ALS_DEFAULTS } from './als.js';
import { IdMap, readInteractions } from './data.js';
import { writeArtifact } from '../model-format/export-onnx.js';
import { meanAuc } from './metrics.js';
import { counts, predict, toFactorModel } from './model.js';
import { factorScore } from '../util/factor-score.js';
import { rng } from '../util/random.js';
import type { Interaction, InteractionStore } from '../feedback/store/index.js';

export interface RetrainOptions {
  store: InteractionStore;
  /** Directory of the model serving now (the one to beat). */
  currentDir: string;
  /** Versions root to publish into. */
  root: string;
  /** Base interaction log (MovieLens / CSV, read by src/train/data.ts); null = the current model's knowledge. */
  base?: string | null;
  holdoutFraction?: number;
  minHoldout?: number;
  /** Relative RMSE the candidate may lose on the feedback holdout and still count as "not worse". */
  tolerance?: number;
  /** Relative RMSE the candidate may lose on the base holdout against the same training without feedback. */
  baseTolerance?: number;
  factors?: number;
  epochs?: number;
  reg?: number;
  seed?: number;
  makeScorer?: ScorerFactory;
  log?: { info(obj: object, msg: string): void };
}

export interface HoldoutMetrics {
  rmse: number;
  /** Mean per-user AUC of held-out items rewarded above ½ over those rewarded below; null without such users. */
  auc: number | null;
  n: number;
  /** Held-out pairs this model could score (the rest got the training mean). */
  covered: number;
}

/** The base holdout: both models, and the RMSE of the same training without feedback (the bar). */
export interface GateMetrics {
  base: { current: HoldoutMetrics; candidate: HoldoutMetrics; reference: number };
  baseTolerance: number;
}

/** The full report; the server reads the RetrainSummary part of it (src/model-format/retrain-contract.ts). */
export interface RetrainReport extends RetrainSummary {
  dir: string | null;
  parent: { version: string; dir: string };
  data: {
    baseSource: string;
    baseRows: number;
    interactions: number;
    feedbackRows: number;
    trainRows: number;
    holdoutRows: number;
    /** Base rows held out for the gate (never trained on). */
    baseHoldoutRows: number;
    /** Feedback rows dropped because no catalog lists their item. */
    unknownItemRows: number;
    users: number;
    items: number;
    interactionsThrough: number;
  };
  /** current/candidate: on the feedback holdout; gate: the base holdout and the score the decision used. */
  metrics: { current: HoldoutMetrics; candidate: HoldoutMetrics; gate: GateMetrics } | null;
  params: { factors: number; epochs: number; reg: number; weightedReg: boolean };
  at: string;
}

interface Row {
  user: string;
  item: string;
  y: number;
  id: number;
}

export class RetrainError extends DomainError {
  constructor(message: string) {
    super('internal', message);
  }
}

/**
 * How much worse (relative RMSE) feedback may make the base holdout than training without it. Real
 * feedback about new users and new tastes moves it by a few per cent; feedback written to overturn
 * what the base data says moves it by far more.
 */
export const BASE_TOLERANCE = 0.1;

/** ALS on rows (ids → dense indices), with what the export needs. */
function fitAls(rows: Iterable<Row>, params: Parameters<typeof trainAls>[1]) {
  const userMap = new IdMap();
  const itemMap = new IdMap();
  const list = [...rows];
  const n = list.length;
  const users = new Int32Array(n);
  const items = new Int32Array(n);
  const values = new Float32Array(n);
  let sum = 0;
  list.forEach((r, k) => {
    users[k] = userMap.intern(r.user);
    items[k] = itemMap.intern(r.item);
    values[k] = r.y;
    sum += r.y;
  });
  const m = trainAls({ nUsers: userMap.size, nItems: itemMap.size, users, items, values }, params);
  return { userMap, itemMap, userIds: userMap.ids, itemIds: itemMap.ids, users, items, n, sum, m };
}

/** RMSE of a trained (not exported) model on rows; pairs it does not know get the fallback. */
function rmseOf(fit: ReturnType<typeof fitAls>, rows: Row[], fallback: number): number {
  let se = 0;
  for (const r of rows) {
    const u = fit.userMap.get(r.user);
    const i = fit.itemMap.get(r.item);
    se += ((u === undefined || i === undefined ? fallback : predict(fit.m, u, i)) - r.y) ** 2;
  }
  return Math.sqrt(se / Math.max(1, rows.length));
}

export async function retrain(opts: RetrainOptions): Promise<RetrainReport> {
  const t0 = performance.now();
  const holdoutFraction = opts.holdoutFraction ?? 0.2;
  const minHoldout = opts.minHoldout ?? RETRAIN_DEFAULTS.retrainMinHoldout;
  const tolerance = opts.tolerance ?? 0;
  const baseTolerance = opts.baseTolerance ?? BASE_TOLERANCE;
  const makeScorer = opts.makeScorer ?? inProcessScorer;
  const current = await loadArtifact(opts.currentDir);
  const [lo, hi] = current.ratingRange ?? [0, 1];
  const toRating = (r: number) => lo + r * (hi - lo);

  // Feedback rows, latest per (user, item), in id order.
  const all: Interaction[] = [];
  for (let after = 0; ; ) {
    const page = await opts.store.scan(after, 10_000);
    if (page.length === 0) break;
    all.push(...page);
    after = page[page.length - 1].id;
  }
  const base = await baseRows(current, opts.base ?? null);
  // Items some catalog lists: the serving model's, and the operator's base log.
  const known = new Set(current.itemIds);
  for (const r of base.rows) known.add(r.item);
  let unknownItemRows = 0;
  const latest = new Map<string, Row>();
  for (const r of all) {
    if (r.kind === 'skipped') continue;
    if (!known.has(r.itemId)) {
      unknownItemRows++;
      continue;
    }
    const key = `${r.userId}\u0000${r.itemId}`;
    latest.delete(key);
    latest.set(key, { user: r.userId, item: r.itemId, y: toRating(r.reward), id: r.id });
  }
  const feedback = [...latest.values()].sort((a, b) => a.id - b.id);
  const nHold = Math.floor(feedback.length * holdoutFraction);
  const holdout = feedback.slice(feedback.length - nHold);
  const trainFeedback = feedback.slice(0, feedback.length - nHold);
  const heldPairs = new Set(holdout.map((r) => `${r.user}\u0000${r.item}`));
  const baseHoldout = sampleBase(base.rows, heldPairs, Math.min(Math.floor(base.rows.length * holdoutFraction), Math.max(minHoldout, nHold)), opts.seed ?? 0);
  for (const r of baseHoldout) heldPairs.add(`${r.user}\u0000${r.item}`);
  const d = opts.factors ?? current.factors?.factors ?? 16;
  const reg = opts.reg ?? current.factors?.regularization ?? 0.1;
  const epochs = opts.epochs ?? 12;
  const weightedReg = ALS_DEFAULTS.weightedReg ?? false;
  const report: RetrainReport = {
    published: false,
    version: null,
    dir: null,
    reason: '',
    parent: { version: current.version, dir: path.resolve(opts.currentDir) },
    data: {
      baseSource: base.source,
      baseRows: base.rows.length,
      interactions: all.length,
      feedbackRows: feedback.length,
      trainRows: 0,
      holdoutRows: holdout.length,
      baseHoldoutRows: baseHoldout.length,
      unknownItemRows,
      users: 0,
      items: 0,
      interactionsThrough: trainFeedback.at(-1)?.id ?? 0,
    },
    metrics: null,
    params: { factors: d, epochs, reg, weightedReg },
    seconds: 0,
    at: new Date().toISOString(),
  };
  const finish = (reason: string) => {
    report.reason = reason;
    report.seconds = Math.round(performance.now() - t0) / 1000;
    return report;
  };
  if (all.length === 0) return finish('nothing to learn from: the interaction store holds no feedback yet');
  if (holdout.length < minHoldout) {
    return finish(`not enough feedback to judge a new model: ${holdout.length} held-out interactions, at least ${minHoldout} needed (${feedback.length} usable feedback rows × holdout ${holdoutFraction})`);
  }

  // Training set: base rows not held out, overridden by feedback rows for the same pair.
  const train = new Map<string, Row>();
  for (const r of base.rows) {
    const key = `${r.user}\u0000${r.item}`;
    if (!heldPairs.has(key)) train.set(key, r);
  }
  for (const r of trainFeedback) train.set(`${r.user}\u0000${r.item}`, r);
  const alsParams = { factors: d, epochs, reg, weightedReg, seed: opts.seed ?? 0, ...(current.ratingRange ? { ratingRange: current.ratingRange } : {}) };
  const { userIds, itemIds, users, items, n, sum, m } = fitAls(train.values(), alsParams);
  report.data.trainRows = n;
  report.data.users = userIds.length;
  report.data.items = itemIds.length;
  // The reference: the same training without any feedback. What the base holdout may lose is measured
  // against it, not against the current model (which trained on those very rows).
  const reference = fitAls(
    base.rows.filter((r) => !heldPairs.has(`${r.user}\u0000${r.item}`)),
    alsParams,
  );
  const userCounts = counts(userIds.length, users);
  const itemCounts = counts(itemIds.length, items);
  const { model, userRows, itemRows } = toFactorModel(m, userIds, itemIds, userCounts, itemCounts);
  if (current.ratingRange) model.ratingRange = current.ratingRange;
  const catalogById = new Map(current.itemIds.map((id, i) => [id, current.catalog?.[i] ?? {}]));
  const newItemIndex = new Map(Array.from(itemRows, (old, j) => [old, j]));
  const seen: number[][] = Array.from(userRows, () => []);
  const userPos = new Map(Array.from(userRows, (old, j) => [old, j]));
  for (let q = 0; q < n; q++) seen[userPos.get(users[q])!].push(newItemIndex.get(items[q])!);

  const versions = new VersionRepository({ root: opts.root });
  const version = versions.nextVersion();
  const staging = versions.stage(version);
  await writeArtifact(staging, model, {
    name: current.name,
    version,
    catalog: current.catalog ? model.itemIds.map((id) => (catalogById.get(id) ?? {}) as Record<string, unknown>) : undefined,
    popularity: Array.from(itemRows, (i) => itemCounts[i]),
    seen: seen.map((s) => s.sort((a, b) => a - b)),
    regularization: reg,
    training: {
      source: 'recserve retrain',
      parent: current.version,
      base: base.source,
      interactions_through: report.data.interactionsThrough,
      trainer: 'als',
      factors: d,
      epochs,
      reg,
      weightedReg,
      rows: n,
    },
  });

  try {
    const fallback = sum / Math.max(1, n);
    const mid = toRating(0.5);
    const [cur, cand, curBase, candBase] = await Promise.all([
      evaluate(opts.currentDir, current, holdout, fallback, mid, makeScorer),
      evaluate(staging, null, holdout, fallback, mid, makeScorer),
      evaluate(opts.currentDir, current, baseHoldout, fallback, mid, makeScorer),
      evaluate(staging, null, baseHoldout, fallback, mid, makeScorer),
    ]);
    const refBase = rmseOf(reference, baseHoldout, fallback);
    const gate: GateMetrics = { base: { current: curBase, candidate: candBase, reference: refBase }, baseTolerance };
    report.metrics = { current: cur, candidate: cand, gate };
    const onFeedback = `RMSE on the feedback holdout ${cand.rmse.toFixed(4)} vs current ${cur.rmse.toFixed(4)} (tolerance ${tolerance})`;
    const onBase = `on the base holdout ${candBase.rmse.toFixed(4)} vs ${refBase.toFixed(4)} trained without feedback (tolerance ${baseTolerance})`;
    const feedbackOk = cand.rmse <= cur.rmse * (1 + tolerance) + 1e-12;
    const baseOk = baseHoldout.length === 0 || candBase.rmse <= refBase * (1 + baseTolerance) + 1e-12;
    if (!feedbackOk || !baseOk) {
      versions.discard(staging);
      const what = !baseOk ? 'the feedback makes it worse at what the model already knew' : 'candidate is worse on the holdout';
      return finish(`${what}: ${onFeedback}, ${onBase}; nothing published`);
    }
    const dir = versions.publishedDir(version);
    finish(`candidate is not worse on the holdout: ${onFeedback}, ${onBase}; published ${version}`);
    report.published = true;
    report.version = version;
    report.dir = dir;
    versions.publish(staging, version, report);
    opts.log?.info({ version, dir, rmse: cand.rmse, current_rmse: cur.rmse, base_rmse: candBase.rmse, reference_base_rmse: refBase }, 'retrained model published');
    return report;
  } catch (e) {
    versions.discard(staging);
    throw e;
  }
}

/** A seeded sample of n base rows whose pairs are not already held out (partial Fisher–Yates). */
function sampleBase(rows: Row[], held: Set<string>, n: number, seed: number): Row[] {
  const pool = rows.filter((r) => !held.has(`${r.user}\u0000${r.item}`));
  const take = Math.max(0, Math.min(n, pool.length));
  const uniform = rng(seed + 7919);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(uniform() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, take);
}

async function baseRows(current: Artifact, base: string | null): Promise<{ source: string; rows: Row[] }> {
  if (base) {
    const data = await readInteractions(base);
    const rows: Row[] = new Array(data.users.length);
    for (let q = 0; q < data.users.length; q++) rows[q] = { user: data.userIds.ids[data.users[q]], item: data.itemIds.ids[data.items[q]], y: data.ratings[q], id: 0 };
    return { source: path.resolve(base), rows };
  }
  const f = current.factors;
  if (!f || !current.seen) {
    throw new RetrainError(
      'retraining needs base data (--base FILE or RECSERVE_RETRAIN_BASE): the current model carries no readable factors and training items to start from',
    );
  }
  const rr = current.ratingRange;
  const rows: Row[] = [];
  current.seen.forEach((items, u) => {
    for (const i of items) {
      const s = factorScore(f, u, i);
      rows.push({ user: current.userIds[u], item: current.itemIds[i], y: rr ? Math.min(rr[1], Math.max(rr[0], s)) : s, id: 0 });
    }
  });
  return { source: `model ${current.version} (its training items, scored by itself)`, rows };
}

/** Scores the held-out pairs through a Recommender; pairs it does not know get the fallback. */
async function evaluate(dir: string, artifact: Artifact | null, holdout: Row[], fallback: number, mid: number, makeScorer: ScorerFactory): Promise<HoldoutMetrics> {
  const rec = artifact ? new Recommender(artifact, await makeScorer(artifact)) : await loadModel(dir, makeScorer);
  try {
    const known: [string, string][] = [];
    const where: number[] = [];
    holdout.forEach((r, q) => {
      if (rec.userIdx(r.user) !== undefined && rec.itemIdx(r.item) !== undefined) {
        known.push([r.user, r.item]);
        where.push(q);
      }
    });
    const pred = new Float64Array(holdout.length).fill(fallback);
    for (let s = 0; s < known.length; s += 1000) {
      const scores = await rec.scorePairs(known.slice(s, s + 1000));
      scores.forEach((v, j) => (pred[where[s + j]] = v));
    }
    let se = 0;
    holdout.forEach((r, q) => (se += (pred[q] - r.y) ** 2));
    return { rmse: Math.sqrt(se / Math.max(1, holdout.length)), auc: meanUserAuc(holdout, pred, mid), n: holdout.length, covered: known.length };
  } finally {
    await rec.scorer.close();
  }
}

/** Mean per-user AUC, positives being held-out pairs rated above mid and negatives below (ties count half). */
function meanUserAuc(holdout: Row[], pred: Float64Array, mid: number): number | null {
  const byUser = new Map<string, { pos: number[]; neg: number[] }>();
  holdout.forEach((r, q) => {
    const e = byUser.get(r.user) ?? { pos: [], neg: [] };
    if (r.y !== mid) (r.y > mid ? e.pos : e.neg).push(pred[q]);
    byUser.set(r.user, e);
  });
  return meanAuc(byUser.values());
}
