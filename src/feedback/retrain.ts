// Retraining on base data plus stored interactions, gated by a holdout comparison with the current
// model, publishing a new version directory only when the candidate is not worse.
//
//   data     base rows: a base interaction log (--base / RECSERVE_RETRAIN_BASE), else what the current
//            model knows — each user's training items (`seen`) with the model's own predicted rating
//            (a self-distillation that keeps the old model's knowledge); plus the stored feedback rows
//            (reward r → rating lo + r·(hi − lo); `skipped` rows are left out), latest per (user, item),
//            overriding base rows for the same pair.
//   holdout  the newest `holdoutFraction` of the feedback rows (a temporal split; their pairs are also
//            removed from the base rows, so nothing about them leaks into training).
//   train    ALS (src/train/als.ts) on the rest, with the current model's rank and rating range.
//   gate     both models score the holdout through the Recommender (pair scores; a pair either model
//            does not know gets the training mean): publish when RMSE_candidate ≤ RMSE_current·(1 + tol).
//            Fewer than `minHoldout` held-out rows: nothing is published (not enough evidence).
//   publish  the evaluated model (not a refit) goes to <root>/.staging-…, then one rename to
//            <root>/r<N>; publish.json beside it holds this report. Its training record carries
//            `interactions_through` (the newest feedback row it learnt from): a server loading it re-folds
//            users with newer feedback, so the held-out feedback still reaches them through fold-in.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadArtifact, type Artifact } from '../model/artifact.js';
import { inProcessScorer, type ScorerFactory } from '../model/registry.js';
import { Recommender } from '../model/recommender.js';
import { trainAls, ALS_DEFAULTS } from '../train/als.js';
import { readInteractions } from '../train/data.js';
import { writeArtifact } from '../train/export-onnx.js';
import { counts, toFactorModel } from '../train/model.js';
import type { Interaction, InteractionStore } from './store.js';

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
  /** Relative RMSE the candidate may lose and still count as "not worse". */
  tolerance?: number;
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

export interface RetrainReport {
  published: boolean;
  version: string | null;
  dir: string | null;
  reason: string;
  parent: { version: string; dir: string };
  data: {
    baseSource: string;
    baseRows: number;
    interactions: number;
    feedbackRows: number;
    trainRows: number;
    holdoutRows: number;
    users: number;
    items: number;
    interactionsThrough: number;
  };
  metrics: { current: HoldoutMetrics; candidate: HoldoutMetrics } | null;
  params: { factors: number; epochs: number; reg: number; weightedReg: boolean };
  seconds: number;
  at: string;
}

interface Row {
  user: string;
  item: string;
  y: number;
  id: number;
}

export class RetrainError extends Error {}

export async function retrain(opts: RetrainOptions): Promise<RetrainReport> {
  const t0 = performance.now();
  const holdoutFraction = opts.holdoutFraction ?? 0.2;
  const minHoldout = opts.minHoldout ?? 20;
  const tolerance = opts.tolerance ?? 0;
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
  const latest = new Map<string, Row>();
  for (const r of all) {
    if (r.kind === 'skipped') continue;
    const key = `${r.userId}\u0000${r.itemId}`;
    latest.delete(key);
    latest.set(key, { user: r.userId, item: r.itemId, y: toRating(r.reward), id: r.id });
  }
  const feedback = [...latest.values()].sort((a, b) => a.id - b.id);
  const nHold = Math.floor(feedback.length * holdoutFraction);
  const holdout = feedback.slice(feedback.length - nHold);
  const trainFeedback = feedback.slice(0, feedback.length - nHold);
  const heldPairs = new Set(holdout.map((r) => `${r.user}\u0000${r.item}`));

  const base = await baseRows(current, opts.base ?? null);
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
  const userIds: string[] = [];
  const itemIds: string[] = [];
  const uIndex = new Map<string, number>();
  const iIndex = new Map<string, number>();
  const n = train.size;
  const users = new Int32Array(n);
  const items = new Int32Array(n);
  const values = new Float32Array(n);
  let k = 0;
  let sum = 0;
  for (const r of train.values()) {
    let u = uIndex.get(r.user);
    if (u === undefined) uIndex.set(r.user, (u = userIds.push(r.user) - 1));
    let i = iIndex.get(r.item);
    if (i === undefined) iIndex.set(r.item, (i = itemIds.push(r.item) - 1));
    users[k] = u;
    items[k] = i;
    values[k] = r.y;
    sum += r.y;
    k++;
  }
  report.data.trainRows = n;
  report.data.users = userIds.length;
  report.data.items = itemIds.length;
  const m = trainAls(
    { nUsers: userIds.length, nItems: itemIds.length, users, items, values },
    { factors: d, epochs, reg, weightedReg, seed: opts.seed ?? 0, ...(current.ratingRange ? { ratingRange: current.ratingRange } : {}) },
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

  mkdirSync(opts.root, { recursive: true });
  const version = nextVersion(opts.root);
  const staging = path.join(opts.root, `.staging-${version}-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
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
    const [cur, cand] = await Promise.all([evaluate(opts.currentDir, current, holdout, fallback, toRating(0.5), makeScorer), evaluate(staging, null, holdout, fallback, toRating(0.5), makeScorer)]);
    report.metrics = { current: cur, candidate: cand };
    const notWorse = cand.rmse <= cur.rmse * (1 + tolerance) + 1e-12;
    if (!notWorse) {
      rmSync(staging, { recursive: true, force: true });
      return finish(`candidate is worse on the holdout: RMSE ${cand.rmse.toFixed(4)} > current ${cur.rmse.toFixed(4)} (tolerance ${tolerance}); nothing published`);
    }
    const dir = path.join(opts.root, version);
    finish(`candidate is not worse on the holdout: RMSE ${cand.rmse.toFixed(4)} ≤ current ${cur.rmse.toFixed(4)}; published ${version}`);
    report.published = true;
    report.version = version;
    report.dir = dir;
    writeFileSync(path.join(staging, 'publish.json'), JSON.stringify(report, null, 2));
    renameSync(staging, dir); // one rename: a reader sees no version or a whole one
    opts.log?.info({ version, dir, rmse: cand.rmse, current_rmse: cur.rmse }, 'retrained model published');
    return report;
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}

/** The next free r<N> under root. */
export function nextVersion(root: string): string {
  let max = 0;
  if (existsSync(root)) {
    for (const name of readdirSync(root)) {
      const m = /^(?:\.staging-)?r(\d+)/.exec(name);
      if (m) max = Math.max(max, Number(m[1]));
    }
  }
  return `r${max + 1}`;
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
  const d = f.factors;
  const rr = current.ratingRange;
  const rows: Row[] = [];
  current.seen.forEach((items, u) => {
    for (const i of items) {
      let s = f.globalBias + f.userBias[u] + f.itemBias[i];
      for (let k = 0; k < d; k++) s += f.userFactors[u * d + k] * f.itemFactors[i * d + k];
      if (rr) s = Math.min(rr[1], Math.max(rr[0], s));
      rows.push({ user: current.userIds[u], item: current.itemIds[i], y: s, id: 0 });
    }
  });
  return { source: `model ${current.version} (its training items, scored by itself)`, rows };
}

/** Scores the held-out pairs through a Recommender; pairs it does not know get the fallback. */
async function evaluate(dir: string, artifact: Artifact | null, holdout: Row[], fallback: number, mid: number, makeScorer: ScorerFactory): Promise<HoldoutMetrics> {
  const a = artifact ?? (await loadArtifact(dir));
  const rec = new Recommender(a, await makeScorer(a));
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

function meanUserAuc(holdout: Row[], pred: Float64Array, mid: number): number | null {
  const byUser = new Map<string, { pos: number[]; neg: number[] }>();
  holdout.forEach((r, q) => {
    const e = byUser.get(r.user) ?? { pos: [], neg: [] };
    if (r.y !== mid) (r.y > mid ? e.pos : e.neg).push(pred[q]);
    byUser.set(r.user, e);
  });
  let total = 0;
  let users = 0;
  for (const { pos, neg } of byUser.values()) {
    if (pos.length === 0 || neg.length === 0) continue;
    let ok = 0;
    for (const p of pos) for (const q of neg) ok += p > q ? 1 : p === q ? 0.5 : 0;
    total += ok / (pos.length * neg.length);
    users++;
  }
  return users > 0 ? total / users : null;
}
