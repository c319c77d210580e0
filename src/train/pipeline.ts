// The logic behind `recserve train | evaluate | tune | export`: each command is one function here,
// so the CLI only parses flags and prints.
import path from 'node:path';
import { alignCatalog, dedupe, IdMap, readCatalog, readInteractions, subset, type Aggregate, type CatalogOptions, type Interactions, type ReadOptions } from './data.js';
import { writeArtifact, type ArtifactExtras, type FactorModel } from '../model-format/export-onnx.js';
import { readBiasTable, readFactorTable, type TableOptions } from './factor-tables.js';
import type { EvalKind, EvalSpec, FitJob } from './jobs.js';
import { evaluateModel } from './jobs.js';
import { counts, emptyModel, toFactorModel, type MfModel } from './model.js';
import type { Progress } from './progress.js';
import { createProgress } from './progress.js';
import { kfoldPlan, lightfmPlan, msrPlan, predefinedPlan, ratingRangeOf, runPlans, trainInputFor, type InputOptions, type ModelChoice, type ProtocolPlan, type ProtocolSummary } from './protocols.js';
import { applySplit, formatSplitSpec, makeSplits, readPredefinedSplit, type PredefinedSplit, type SplitSpec } from './split.js';
import { ALGO_INFO, fit, type Algo, type Params } from './trainers.js';
import { saveBest, tune, type SearchSpace, type TrialRecord, type TuneResult } from './tune.js';
import { verifyArtifact, type VerifyReport } from './verify.js';
import { loadArtifact } from '../model-format/artifact.js';

export interface CatalogSource {
  file: string;
  options?: CatalogOptions;
}

export interface ExportMeta {
  name?: string;
  version?: string;
  /** Skip the ONNX Runtime round-trip check. */
  noVerify?: boolean;
  /** Leave per-user seen items out of the artifact (smaller file; exclude_seen then has nothing to exclude). */
  noSeen?: boolean;
}

export interface TrainOptions extends ExportMeta {
  data: string;
  read?: ReadOptions;
  aggregate?: Aggregate;
  items?: CatalogSource;
  out: string;
  algo: Algo;
  params?: Params;
  input?: InputOptions;
  /** Hold out a validation split, report its metrics, and export the model trained without it. */
  valid?: SplitSpec;
  progress?: Progress;
}

export interface TrainSummary {
  file: string;
  algo: Algo | 'imported';
  params: Params;
  users: number;
  items: number;
  interactions: number;
  factors: number;
  seconds: number;
  validation?: Record<string, number>;
  verify?: VerifyReport;
  catalogMissing?: number;
}

/** Builds the artifact extras (catalog, popularity, seen) for a compacted model. */
async function extrasFor(
  fm: FactorModel,
  itemRows: Int32Array,
  userRows: Int32Array,
  train: { users: Int32Array; items: Int32Array },
  nUsers: number,
  nItems: number,
  items: CatalogSource | undefined,
  noSeen: boolean | undefined,
  progress: Progress,
): Promise<{ extras: ArtifactExtras; catalogMissing?: number }> {
  const extras: ArtifactExtras = {};
  let catalogMissing: number | undefined;
  if (items) {
    const cat = await readCatalog(items.file, items.options);
    const aligned = alignCatalog(cat, fm.itemIds);
    extras.catalog = aligned.rows;
    catalogMissing = aligned.missing;
    if (aligned.missing > 0) progress.log(`note: ${aligned.missing} of ${fm.itemIds.length} items have no row in ${items.file}`);
  }
  const userPos = new Int32Array(nUsers).fill(-1);
  userRows.forEach((u, j) => (userPos[u] = j));
  const itemPos = new Int32Array(nItems).fill(-1);
  itemRows.forEach((i, j) => (itemPos[i] = j));
  const pop = new Float64Array(itemRows.length);
  for (let k = 0; k < train.items.length; k++) {
    const j = itemPos[train.items[k]];
    if (j >= 0) pop[j]++;
  }
  extras.popularity = Array.from(pop);
  if (!noSeen) {
    const seen: number[][] = Array.from({ length: userRows.length }, () => []);
    for (let k = 0; k < train.users.length; k++) {
      const u = userPos[train.users[k]];
      const i = itemPos[train.items[k]];
      if (u >= 0 && i >= 0) seen[u].push(i);
    }
    extras.seen = seen.map((s) => Int32Array.from(new Set(s)).sort());
  }
  return { extras, catalogMissing };
}

export async function trainCommand(o: TrainOptions): Promise<TrainSummary> {
  const progress = o.progress ?? createProgress('quiet');
  progress.log(`reading ${o.data}`);
  const raw = await readInteractions(o.data, o.read);
  const data = dedupe(raw, o.aggregate);
  if (data.users.length !== raw.users.length) progress.log(`merged ${raw.users.length - data.users.length} repeated (user, item) rows (${o.aggregate ?? (raw.explicit ? 'last' : 'sum')})`);
  progress.log(`${data.users.length} interactions, ${data.userIds.size} users, ${data.itemIds.size} items${data.explicit ? '' : ' (implicit)'}`);
  let train: Interactions = data;
  let valid: Interactions | null = null;
  if (o.valid) {
    const splits = makeSplits(data, o.valid);
    const tt = applySplit(data, splits[0]);
    train = tt.train;
    valid = tt.test;
    progress.log(`validation ${formatSplitSpec(o.valid)}: ${train.users.length} train / ${valid.users.length} held out`);
  }
  const input = trainInputFor(o.algo, train, o.input);
  const info = ALGO_INFO[o.algo];
  const params = o.params ?? {};
  const total = o.algo === 'bayes' ? Number(params.burnIn ?? info.defaults.burnIn) + Number(params.samples ?? info.defaults.samples) : Number(params.epochs ?? info.defaults.epochs);
  progress.start(`${o.algo}`, total);
  const result = fit(
    o.algo,
    input,
    params,
    (r) => {
      progress.update(r.epoch, { [r.lossName]: r.loss, 's/epoch': r.seconds });
      return false;
    },
    ratingRangeOf(train),
  );
  progress.stop();
  let validation: Record<string, number> | undefined;
  if (valid) {
    const evals: EvalSpec[] = [];
    if (info.kind === 'explicit') evals.push({ kind: 'rating', test: valid });
    evals.push({ kind: 'ranking', test: valid, k: 10 });
    validation = evaluateModel(result.model, train, evals);
  }
  const uc = counts(result.model.nUsers, input.users);
  const ic = counts(result.model.nItems, input.items);
  const { model: fm, userRows, itemRows } = toFactorModel(result.model, data.userIds.ids, data.itemIds.ids, uc, ic);
  const { extras, catalogMissing } = await extrasFor(fm, itemRows, userRows, train, result.model.nUsers, result.model.nItems, o.items, o.noSeen, progress);
  extras.name = o.name ?? path.basename(path.resolve(o.out));
  extras.version = o.version ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  extras.regularization = result.regularization;
  extras.training = {
    command: 'train',
    algo: o.algo,
    params: result.params,
    input: o.input ?? {},
    data: { source: o.data, rows: data.users.length, users: fm.userIds.length, items: fm.itemIds.length, explicit: data.explicit },
    valid: o.valid ? formatSplitSpec(o.valid) : undefined,
    validation,
    seconds: Number(result.seconds.toFixed(3)),
    created: new Date().toISOString(),
  };
  const file = await writeArtifact(o.out, fm, extras);
  progress.log(`wrote ${file} (${fm.userIds.length} users × ${fm.itemIds.length} items, ${fm.factors} factors)`);
  let verify: VerifyReport | undefined;
  if (!o.noVerify) {
    verify = await verifyArtifact(o.out, fm);
    if (!verify.ok) throw new Error(`exported model does not reproduce the trained scores: max |Δ| ${verify.maxAbsDiff}, ids match ${verify.idsMatch}`);
    progress.log(`verified with onnxruntime: ${verify.pairs} scores, max |Δ| ${verify.maxAbsDiff.toExponential(2)}`);
  }
  return {
    file,
    algo: o.algo,
    params: result.params,
    users: fm.userIds.length,
    items: fm.itemIds.length,
    interactions: input.users.length,
    factors: fm.factors,
    seconds: result.seconds,
    validation,
    verify,
    catalogMissing,
  };
}

// ---------------------------------------------------------------------------------------------

export type ProtocolName = 'surprise' | 'ml-u1-u5' | 'msr' | 'lightfm';

export interface EvaluateOptions {
  data: string;
  read?: ReadOptions;
  algo: Algo;
  params?: Params;
  input?: InputOptions;
  /** A named anchor protocol, or a generic split with metrics. */
  protocol?: ProtocolName;
  split?: SplitSpec | { kind: 'predefined'; names: PredefinedSplit[] };
  metrics?: EvalKind[];
  k?: number;
  threads?: number;
  progress?: Progress;
}

function dirOf(p: string): string {
  return path.extname(p) === '' && !path.basename(p).includes('.') ? p : path.dirname(p);
}

export async function evaluateCommand(o: EvaluateOptions): Promise<ProtocolSummary[]> {
  const progress = o.progress ?? createProgress('quiet');
  const m: ModelChoice = { algo: o.algo, params: o.params ?? {}, input: o.input };
  const k = o.k ?? 10;
  const plans: ProtocolPlan[] = [];
  const needData = o.protocol === 'surprise' || o.protocol === 'msr' || (!o.protocol && o.split?.kind !== 'predefined');
  let data: Interactions | null = null;
  if (needData) data = dedupe(await readInteractions(o.data, o.read));
  if (o.protocol === 'surprise') plans.push(kfoldPlan(data!, m, 5, 0));
  else if (o.protocol === 'ml-u1-u5') plans.push(await predefinedPlan(dirOf(o.data), m));
  else if (o.protocol === 'msr') plans.push(msrPlan(data!, m, k));
  else if (o.protocol === 'lightfm') plans.push(await lightfmPlan(dirOf(o.data), m, k));
  else {
    const split = o.split ?? { kind: 'kfold', k: 5, seed: 0 };
    const metrics = o.metrics ?? [ALGO_INFO[o.algo].kind === 'explicit' ? 'rating' : 'ranking'];
    const evals = (test: EvalSpec['test']): EvalSpec[] => metrics.map((kind) => ({ kind, test, k }));
    const jobs: FitJob[] = [];
    if (split.kind === 'predefined') {
      for (const name of split.names) {
        const { train, test } = await readPredefinedSplit(dirOf(o.data), name, o.read);
        jobs.push(jobFor(`${o.algo}:${name}`, m, train, evals(test)));
      }
      plans.push({ name: split.names.join('-'), description: `predefined ${split.names.join(', ')}`, jobs });
    } else {
      for (const s of makeSplits(data!, split)) {
        const { train, test } = applySplit(data!, s);
        jobs.push(jobFor(`${o.algo}:${s.name}`, m, train, evals(test)));
      }
      plans.push({ name: formatSplitSpec(split), description: `split ${formatSplitSpec(split)}, metrics ${metrics.join(', ')} (k=${k})`, jobs });
    }
  }
  const total = plans.reduce((a, p) => a + p.jobs.length, 0);
  progress.start(`evaluate ${o.algo}`, total);
  const out = await runPlans(plans, o.threads, (r, done) => progress.update(done, firstMetric(r.metrics)));
  progress.stop();
  return out;
}

function firstMetric(m: Record<string, number>): Record<string, number> {
  const [k] = Object.keys(m);
  return k ? { [k]: m[k] } : {};
}

function jobFor(id: string, m: ModelChoice, train: Interactions, evals: EvalSpec[]): FitJob {
  const input = trainInputFor(m.algo, train, m.input);
  const seen = input.users.length === train.users.length ? undefined : { users: train.users, items: train.items };
  return { id, algo: m.algo, params: m.params, train: input, seen, ratingRange: ratingRangeOf(train), evals };
}

export interface ArtifactEvalOptions {
  model: string;
  test: string;
  /** Interactions to remove from top-k lists (default: the artifact's seen items). */
  train?: string;
  read?: ReadOptions;
  k?: number;
}

/** Scores an exported model against a test log: RMSE/MAE when it predicts ratings, and top-k ranking. */
export async function evaluateArtifact(o: ArtifactEvalOptions): Promise<Record<string, number>> {
  const a = await loadArtifact(o.model);
  if (!a.factors) throw new Error(`${o.model}: the model's factor tables are not readable (not a recserve export); evaluate it through the server instead`);
  const f = a.factors;
  const userIds = IdMap.from(a.userIds);
  const itemIds = IdMap.from(a.itemIds);
  const nU = a.userIds.length;
  const nI = a.itemIds.length;
  const m: MfModel = { ...emptyModel(0, 0, f.factors, (a.metadata['recserve.kind'] as 'explicit' | 'implicit') ?? 'explicit'), nUsers: nU, nItems: nI, P: f.userFactors, Q: f.itemFactors, bu: f.userBias, bi: f.itemBias, mu: f.globalBias };
  if (a.ratingRange) m.ratingRange = a.ratingRange;
  const test = await readInteractions(o.test, { ...o.read, userIds, itemIds });
  // Only rows whose user the model knows can be ranked; unknown items count as misses.
  let seen: { users: Int32Array; items: Int32Array };
  if (o.train) {
    const tr = await readInteractions(o.train, { ...o.read, userIds, itemIds });
    seen = { users: tr.users, items: tr.items };
  } else if (a.seen) {
    const su: number[] = [];
    const si: number[] = [];
    a.seen.forEach((items, u) => items.forEach((i) => (su.push(u), si.push(i))));
    seen = { users: Int32Array.from(su), items: Int32Array.from(si) };
  } else {
    seen = { users: new Int32Array(0), items: new Int32Array(0) };
  }
  const evals: EvalSpec[] = [];
  if (m.kind === 'explicit' && test.explicit) evals.push({ kind: 'rating', test });
  const known = new Uint8Array(test.users.length);
  for (let r = 0; r < known.length; r++) known[r] = test.users[r] < nU ? 1 : 0;
  const rankTest = subset(test, known);
  // Items unknown to the model cannot be recommended but stay relevant (they count as misses).
  evals.push({ kind: 'ranking', test: rankTest, k: o.k ?? 10, candidates: 'all' });
  const out = evaluateModel(m, seen, evals);
  out.test_rows = test.users.length;
  out.unknown_user_rows = test.users.length - rankTest.users.length;
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface TuneCommandOptions {
  data: string;
  read?: ReadOptions;
  algo: Algo;
  input?: InputOptions;
  /** Tune only on the train part of this split (its test part stays unseen), e.g. the MSR split. */
  restrict?: SplitSpec;
  valid: SplitSpec;
  trials: number;
  seed?: number;
  space?: SearchSpace;
  fixed?: Params;
  objective?: string;
  maxIterations?: number;
  patience?: number;
  threads?: number;
  log: string;
  saveBest?: { file: string; key: string };
  /** Retrain the best parameters on all tuning data and export the model here. */
  out?: string;
  items?: CatalogSource;
  exportMeta?: ExportMeta;
  progress?: Progress;
}

export async function tuneCommand(o: TuneCommandOptions): Promise<{ result: TuneResult; exported?: TrainSummary }> {
  const progress = o.progress ?? createProgress('quiet');
  let data = dedupe(await readInteractions(o.data, o.read));
  const describe: Record<string, unknown> = { source: o.data, rows: data.users.length };
  if (o.restrict) {
    const [s] = makeSplits(data, o.restrict);
    data = applySplit(data, s).train;
    describe.restrict = `train part of ${formatSplitSpec(o.restrict)}`;
    describe.rows_after_restrict = data.users.length;
  }
  progress.start(`tune ${o.algo}`, o.trials);
  const result = await tune({
    algo: o.algo,
    data,
    valid: o.valid,
    trials: o.trials,
    seed: o.seed,
    space: o.space,
    fixed: o.fixed,
    objective: o.objective,
    maxIterations: o.maxIterations,
    patience: o.patience,
    threads: o.threads,
    input: o.input,
    log: o.log,
    describe,
    onTrial: (rec: TrialRecord, done) => progress.update(done, { [rec.objective]: rec.value, best_epoch: rec.best_epoch }),
  });
  progress.stop();
  if (o.saveBest) {
    saveBest(o.saveBest.file, o.saveBest.key, {
      algo: o.algo,
      params: result.best.params,
      objective: result.objective,
      value: result.best.value,
      tuned_on: { ...describe, valid: formatSplitSpec(o.valid), input: o.input ?? {} },
      run_log: path.relative(path.dirname(path.resolve(o.saveBest.file)), path.resolve(o.log)),
      trial: result.best.trial,
      updated: new Date().toISOString(),
    });
  }
  let exported: TrainSummary | undefined;
  if (o.out) {
    // Retrain with the best parameters on the whole --data file (validation and any restricted-out
    // test part included: the exported model is for serving, the run log holds the evaluation).
    exported = await trainCommand({
      data: o.data,
      read: o.read,
      out: o.out,
      algo: o.algo,
      params: result.best.params,
      input: o.input,
      items: o.items,
      progress,
      ...o.exportMeta,
    });
  }
  return { result, exported };
}

// ---------------------------------------------------------------------------------------------

export interface ExportOptions extends ExportMeta {
  userFactors: string;
  itemFactors: string;
  table?: TableOptions;
  userBias?: string;
  itemBias?: string;
  globalBias?: number;
  kind?: 'explicit' | 'implicit';
  ratingRange?: [number, number];
  items?: CatalogSource;
  /** Training interactions: item popularity and per-user seen items. */
  interactions?: string;
  read?: ReadOptions;
  regularization?: number;
  out: string;
  progress?: Progress;
}

export async function exportCommand(o: ExportOptions): Promise<TrainSummary> {
  const progress = o.progress ?? createProgress('quiet');
  const U = await readFactorTable(o.userFactors, o.table);
  const V = await readFactorTable(o.itemFactors, o.table);
  if (U.factors !== V.factors) throw new Error(`user factors have ${U.factors} dimensions but item factors have ${V.factors}`);
  progress.log(`read ${U.ids.length} user and ${V.ids.length} item vectors of ${U.factors} factors`);
  const bias = async (file: string | undefined, t: typeof U, what: string) => {
    if (!file) return t.bias;
    const map = await readBiasTable(file);
    const out = new Float32Array(t.ids.length);
    let missing = 0;
    t.ids.forEach((id, j) => {
      const v = map.get(id);
      if (v === undefined) missing++;
      else out[j] = v;
    });
    if (missing > 0) progress.log(`note: ${missing} ${what} have no bias in ${file} (0 used)`);
    return out;
  };
  const fm: FactorModel = {
    userIds: U.ids,
    itemIds: V.ids,
    factors: U.factors,
    userFactors: U.values,
    itemFactors: V.values,
    kind: o.kind ?? 'explicit',
    globalBias: o.globalBias ?? 0,
  };
  const ub = await bias(o.userBias, U, 'users');
  const ib = await bias(o.itemBias, V, 'items');
  if (ub) fm.userBias = ub;
  if (ib) fm.itemBias = ib;
  if (o.ratingRange) fm.ratingRange = o.ratingRange;
  const extras: ArtifactExtras = { name: o.name ?? path.basename(path.resolve(o.out)), version: o.version ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '') };
  if (o.regularization !== undefined) extras.regularization = o.regularization;
  let catalogMissing: number | undefined;
  let interactions = 0;
  if (o.interactions) {
    const userIds = IdMap.from(U.ids);
    const itemIds = IdMap.from(V.ids);
    const data = await readInteractions(o.interactions, { ...o.read, userIds, itemIds });
    interactions = data.users.length;
    const keep = { users: [] as number[], items: [] as number[] };
    for (let k = 0; k < data.users.length; k++) {
      if (data.users[k] < U.ids.length && data.items[k] < V.ids.length) keep.users.push(data.users[k]), keep.items.push(data.items[k]);
    }
    const rowsU = Int32Array.from({ length: U.ids.length }, (_, j) => j);
    const rowsI = Int32Array.from({ length: V.ids.length }, (_, j) => j);
    const r = await extrasFor(fm, rowsI, rowsU, { users: Int32Array.from(keep.users), items: Int32Array.from(keep.items) }, U.ids.length, V.ids.length, o.items, o.noSeen, progress);
    Object.assign(extras, r.extras);
    catalogMissing = r.catalogMissing;
  } else if (o.items) {
    const cat = await readCatalog(o.items.file, o.items.options);
    const aligned = alignCatalog(cat, V.ids);
    extras.catalog = aligned.rows;
    catalogMissing = aligned.missing;
  }
  extras.training = { command: 'export', user_factors: o.userFactors, item_factors: o.itemFactors, created: new Date().toISOString() };
  const file = await writeArtifact(o.out, fm, extras);
  progress.log(`wrote ${file}`);
  let verify: VerifyReport | undefined;
  if (!o.noVerify) {
    verify = await verifyArtifact(o.out, fm);
    if (!verify.ok) throw new Error(`exported model does not reproduce the factor tables' scores: max |Δ| ${verify.maxAbsDiff}`);
    progress.log(`verified with onnxruntime: ${verify.pairs} scores, max |Δ| ${verify.maxAbsDiff.toExponential(2)}`);
  }
  return { file, algo: 'imported', params: {}, users: U.ids.length, items: V.ids.length, interactions, factors: U.factors, seconds: 0, verify, catalogMissing };
}
