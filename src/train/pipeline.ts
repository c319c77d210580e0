// The logic behind `recserve train | evaluate | tune | export`: each command is one function here,
// so the CLI only parses flags and prints.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { alignCatalog, dedupe, IdMap, readCatalog, readInteractions, subset, type Aggregate, type CatalogOptions, type Interactions, type ReadOptions } from './data.js';
import { MetaKey, writeArtifact, type ArtifactExtras, type FactorModel } from '../model-format/export-onnx.js';
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
import { evaluationSection, REPORT_FORMAT, summarizeData, type EpochRow, type Headline, type RefitSection, type Report, type ValidationSection } from './report.js';
import { writeReport } from './report-html.js';
import { epochValidator } from './validation.js';
import { loadArtifact } from '../model-format/artifact.js';
import { significant } from '../util/round.js';

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
  /** Hold out a validation split and report its metrics after every epoch. */
  valid?: SplitSpec;
  /**
   * With valid: retrain on all rows and export that model — true: with the best validation epoch's
   * iteration count; a number: with that many. Without it the export is the model trained without the held-out rows.
   */
  refit?: boolean | number;
  /** Held-out users ranked after each epoch (default EPOCH_RANKING_USERS); the final validation ranks all. */
  validUsers?: number;
  /** Write report.json and report.html into out (default true). */
  report?: boolean;
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
  /** The validation metrics that describe the exported model: the best epoch's with --refit, else `validation`. */
  exportedValidation?: Record<string, number>;
  verify?: VerifyReport;
  catalogMissing?: number;
  /** Training loss (and validation metrics with --valid) per epoch of the validated run. */
  epochs?: EpochRow[];
  bestEpoch?: number;
  /** Users / items whose every row was held out (missing from the export unless refit). */
  onlyHeldOut?: { users: number; items: number };
  refit?: { parameter: string; iterations: number; chosenBy: RefitSection['chosen_by'] };
  headline?: Headline;
  /** Paths of report.json / report.html when written. */
  report?: { json: string; html: string };
  reportData?: Report;
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
  const refitAsked = o.refit !== undefined && o.refit !== false;
  if (refitAsked && !o.valid) throw new Error('--refit needs --valid: it retrains on all data with the epoch count chosen on the validation split');
  if (o.validUsers !== undefined && !o.valid) throw new Error('--valid-users needs --valid: it bounds the per-epoch validation');
  const started = performance.now();
  const timings: Record<string, number> = {};
  const since = (t: number) => (performance.now() - t) / 1000;
  progress.log(`reading ${o.data}`);
  let t = performance.now();
  const raw = await readInteractions(o.data, o.read);
  const data = dedupe(raw, o.aggregate);
  timings.read = since(t);
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
  // Bayes averages samples only after the burn-in: before it there is no model to validate.
  const burnIn = o.algo === 'bayes' ? Number(params.burnIn ?? info.defaults.burnIn) : 0;
  const validator = valid ? epochValidator(info.kind, train, valid, o.validUsers) : null;
  const shown = info.kind === 'explicit' ? ['rmse', 'ndcg@10'] : ['ndcg@10', 'recall@10'];
  const epochs: EpochRow[] = [];
  const best = { epoch: 0, value: NaN };
  let validSeconds = 0;
  progress.start(`${o.algo}`, iterationsTotal(o.algo, params));
  t = performance.now();
  const result = fit(
    o.algo,
    input,
    params,
    (r, model) => {
      const row: EpochRow = { epoch: r.epoch, loss: r.loss, loss_name: r.lossName, seconds: r.seconds };
      const fields: Record<string, number> = { [r.lossName]: r.loss, 's/epoch': r.seconds };
      if (validator && r.epoch > burnIn) {
        const tv = performance.now();
        row.validation = validator.evaluate(model());
        validSeconds += since(tv);
        const v = row.validation[validator.objective];
        if (best.epoch === 0 || validator.better(v, best.value)) Object.assign(best, { epoch: r.epoch, value: v });
        for (const k of shown) fields[`valid_${k}`] = row.validation[k];
      }
      epochs.push(row);
      progress.update(r.epoch, fields);
      return false;
    },
    ratingRangeOf(train),
  );
  progress.stop();
  timings.train = since(t) - validSeconds;
  if (validator) timings.validation_per_epoch = validSeconds;
  let validation: Record<string, number> | undefined;
  let validationSection: ValidationSection | undefined;
  if (valid && validator) {
    t = performance.now();
    const evals: EvalSpec[] = [];
    if (info.kind === 'explicit') evals.push({ kind: 'rating', test: valid });
    evals.push({ kind: 'ranking', test: valid, k: 10 });
    validation = evaluateModel(result.model, train, evals);
    timings.validation_final = since(t);
    const bestEpoch = best.epoch || Number(result.params[info.iterations]) + burnIn;
    validationSection = {
      split: formatSplitSpec(o.valid!),
      train_rows: train.users.length,
      held_out_rows: valid.users.length,
      ranking_users: validator.rankingUsers,
      objective: validator.objective,
      mode: validator.mode,
      best_epoch: bestEpoch,
      best_iterations: Math.max(1, bestEpoch - burnIn),
      final: validation,
      only_held_out: { users: onlyIn(data.users, train.users, data.userIds.size), items: onlyIn(data.items, train.items, data.itemIds.size) },
    };
  }

  // --refit: the model to export is retrained on every row with the chosen iteration count.
  let final = result;
  let finalTrain = train;
  let finalInput = input;
  let refit: RefitSection | undefined;
  if (refitAsked && validationSection) {
    const iterations = typeof o.refit === 'number' ? o.refit : validationSection.best_iterations;
    const refitParams: Params = { ...params, [info.iterations]: iterations };
    finalInput = trainInputFor(o.algo, data, o.input);
    finalTrain = data;
    const refitEpochs: EpochRow[] = [];
    progress.log(`refit: retraining on all ${data.users.length} interactions with ${info.iterations} ${iterations} (${typeof o.refit === 'number' ? 'as given' : `best validation epoch ${validationSection.best_epoch}`})`);
    progress.start(`${o.algo} refit`, iterationsTotal(o.algo, refitParams));
    t = performance.now();
    final = fit(
      o.algo,
      finalInput,
      refitParams,
      (r) => {
        refitEpochs.push({ epoch: r.epoch, loss: r.loss, loss_name: r.lossName, seconds: r.seconds });
        progress.update(r.epoch, { [r.lossName]: r.loss, 's/epoch': r.seconds });
        return false;
      },
      ratingRangeOf(data),
    );
    progress.stop();
    timings.refit = since(t);
    refit = {
      parameter: info.iterations,
      iterations,
      chosen_by: typeof o.refit === 'number' ? 'given' : 'best-validation-epoch',
      users: 0,
      items: 0,
      interactions: finalInput.users.length,
      seconds: timings.refit,
      epochs: refitEpochs,
    };
  }

  const uc = counts(final.model.nUsers, finalInput.users);
  const ic = counts(final.model.nItems, finalInput.items);
  const { model: fm, userRows, itemRows } = toFactorModel(final.model, data.userIds.ids, data.itemIds.ids, uc, ic);
  if (refit) Object.assign(refit, { users: fm.userIds.length, items: fm.itemIds.length });
  const { extras, catalogMissing } = await extrasFor(fm, itemRows, userRows, finalTrain, final.model.nUsers, final.model.nItems, o.items, o.noSeen, progress);
  // The validation figures that describe the exported model: the refit reproduces the best epoch.
  // When the refit reproduces an earlier epoch, that epoch's figures describe it (ranking metrics there
  // cover the per-epoch user sample); when it is the last epoch, the final figures over every user do.
  const lastEpoch = epochs.at(-1)?.epoch ?? 0;
  const earlier = refit && validationSection && validationSection.best_epoch !== lastEpoch ? validationSection.best_epoch : null;
  const described = earlier !== null ? { epoch: earlier, metrics: epochs.find((e) => e.epoch === earlier)?.validation ?? validation } : validation && { epoch: lastEpoch, metrics: validation };
  const headline = trainHeadline(o.algo, fm, finalInput.users.length, Number(final.params[info.iterations]), info.iterations, described, refit);
  extras.name = o.name ?? path.basename(path.resolve(o.out));
  extras.version = o.version ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  extras.regularization = final.regularization;
  extras.training = {
    command: 'train',
    algo: o.algo,
    params: final.params,
    input: o.input ?? {},
    data: { source: o.data, rows: data.users.length, users: fm.userIds.length, items: fm.itemIds.length, explicit: data.explicit },
    valid: o.valid ? formatSplitSpec(o.valid) : undefined,
    validation,
    refit: refit ? { [refit.parameter]: refit.iterations, chosen_by: refit.chosen_by } : undefined,
    headline,
    seconds: Number(final.seconds.toFixed(3)),
    created: new Date().toISOString(),
  };
  t = performance.now();
  const file = await writeArtifact(o.out, fm, extras);
  timings.export = since(t);
  progress.log(`wrote ${file} (${fm.userIds.length} users × ${fm.itemIds.length} items, ${fm.factors} factors)`);
  let verify: VerifyReport | undefined;
  if (!o.noVerify) {
    t = performance.now();
    verify = await verifyArtifact(o.out, fm);
    timings.verify = since(t);
    if (!verify.ok) throw new Error(`exported model does not reproduce the trained scores: max |Δ| ${verify.maxAbsDiff}, ids match ${verify.idsMatch}`);
    progress.log(`verified with onnxruntime: ${verify.pairs} scores, max |Δ| ${verify.maxAbsDiff.toExponential(2)}`);
  }
  timings.total = since(started);
  const report: Report = {
    format: REPORT_FORMAT,
    command: 'train',
    created: String(extras.training.created),
    algo: o.algo,
    params: final.params,
    data: summarizeData(data, raw.users.length - data.users.length),
    model: { dir: o.out, file, name: extras.name, version: extras.version, users: fm.userIds.length, items: fm.itemIds.length, factors: fm.factors },
    epochs,
    timings,
    headline,
  };
  if (validationSection) report.validation = validationSection;
  if (refit) report.refit = refit;
  const written = o.report === false ? undefined : writeReport(o.out, report);
  return {
    file,
    algo: o.algo,
    params: final.params,
    users: fm.userIds.length,
    items: fm.itemIds.length,
    interactions: finalInput.users.length,
    factors: fm.factors,
    seconds: final.seconds,
    validation,
    exportedValidation: described?.metrics,
    verify,
    catalogMissing,
    epochs,
    bestEpoch: validationSection?.best_epoch,
    onlyHeldOut: validationSection?.only_held_out,
    refit: refit ? { parameter: refit.parameter, iterations: refit.iterations, chosenBy: refit.chosen_by } : undefined,
    headline,
    report: written,
    reportData: report,
  };
}

/** Iterations a trainer runs with these parameters (Gibbs sweeps for bayes: burn-in + samples). */
function iterationsTotal(algo: Algo, params: Params): number {
  const d = ALGO_INFO[algo].defaults;
  return algo === 'bayes' ? Number(params.burnIn ?? d.burnIn) + Number(params.samples ?? d.samples) : Number(params.epochs ?? d.epochs);
}

/** Ids present in `all` but never in `part` (both index arrays over the same id map of size n). */
function onlyIn(all: Int32Array, part: Int32Array, n: number): number {
  const inPart = counts(n, part);
  const inAll = counts(n, all);
  let c = 0;
  for (let j = 0; j < n; j++) if (inAll[j] > 0 && inPart[j] === 0) c++;
  return c;
}

const HEADLINE_METRICS = ['rmse', 'mae', 'ndcg@10', 'precision@10', 'recall@10'];

function trainHeadline(
  algo: Algo,
  fm: FactorModel,
  interactions: number,
  iterations: number,
  iterationName: string,
  validation: { epoch: number; metrics?: Record<string, number> } | undefined,
  refit: RefitSection | undefined,
): Headline {
  const h: Headline = { algo, users: fm.userIds.length, items: fm.itemIds.length, interactions, factors: fm.factors, [iterationName]: iterations };
  if (!validation) return h;
  for (const k of HEADLINE_METRICS) if (validation.metrics?.[k] !== undefined) h[`valid_${k}`] = significant(validation.metrics[k]);
  h.valid_epoch = validation.epoch;
  h.refit = refit ? 'yes' : 'no';
  return h;
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
  /** Write report.json and report.html into this directory. */
  report?: string;
  progress?: Progress;
}

function dirOf(p: string): string {
  return path.extname(p) === '' && !path.basename(p).includes('.') ? p : path.dirname(p);
}

export async function evaluateCommand(o: EvaluateOptions): Promise<ProtocolSummary[]> {
  const progress = o.progress ?? createProgress('quiet');
  const started = performance.now();
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
  if (o.report) {
    // The predefined-split protocols never read the whole log: summarise the directory's u.data.
    const whole = path.join(dirOf(o.data), 'u.data');
    const summaryData = data ?? (existsSync(whole) ? await readInteractions(whole, { format: 'movielens' }) : null);
    const summary = summaryData ? summarizeData(summaryData) : null;
    const evaluation = evaluationSection(out, o.protocol, summary);
    const headline: Headline = { algo: o.algo, protocol: out[0]?.name ?? '' };
    for (const s of out) for (const [k, v] of Object.entries(s.metrics)) headline[out.length > 1 ? `${s.name}_${k}` : k] = significant(v);
    writeReport(o.report, {
      format: REPORT_FORMAT,
      command: 'evaluate',
      created: new Date().toISOString(),
      algo: o.algo,
      params: out[0]?.jobs[0]?.params ?? m.params,
      data: summary,
      epochs: [],
      evaluation,
      timings: { train: out.reduce((a, s) => a + s.trainSeconds, 0), total: (performance.now() - started) / 1000 },
      headline,
    });
  }
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
  /** Write report.json and report.html into this directory. */
  report?: string;
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
  const started = performance.now();
  const out = evaluateModel(m, seen, evals);
  out.test_rows = test.users.length;
  out.unknown_user_rows = test.users.length - rankTest.users.length;
  if (o.report) {
    const training = a.metadata[MetaKey.training] ? (JSON.parse(a.metadata[MetaKey.training]) as { algo?: string; params?: Params }) : {};
    const summary: ProtocolSummary = { name: 'test', description: `${o.model} scored on ${o.test}`, metrics: out, std: {}, jobs: [], trainSeconds: 0 };
    const data = summarizeData(test);
    writeReport(o.report, {
      format: REPORT_FORMAT,
      command: 'evaluate',
      created: new Date().toISOString(),
      algo: training.algo ?? 'model',
      params: training.params ?? {},
      data,
      model: { dir: o.model, file: path.join(o.model, 'model.onnx'), name: a.name, version: a.version, users: nU, items: nI, factors: f.factors },
      epochs: [],
      evaluation: evaluationSection([summary], undefined, data),
      timings: { evaluate: (performance.now() - started) / 1000 },
      headline: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, significant(v)])),
    });
  }
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
  /** Where report.json / report.html go (default: out, when given). */
  report?: string;
  progress?: Progress;
}

export async function tuneCommand(o: TuneCommandOptions): Promise<{ result: TuneResult; exported?: TrainSummary; report?: { json: string; html: string } }> {
  const progress = o.progress ?? createProgress('quiet');
  const started = performance.now();
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
      report: false,
      ...o.exportMeta,
    });
  }
  const reportDir = o.report ?? o.out;
  if (!reportDir) return { result, exported };
  const headline: Headline = { algo: o.algo, objective: result.objective, best_value: significant(result.best.value), best_trial: result.best.trial, trials: result.trials.length };
  const timings: Record<string, number> = { trials: result.trials.reduce((a, t) => a + t.seconds, 0) };
  if (exported) timings.export_training = exported.seconds;
  timings.total = (performance.now() - started) / 1000;
  const report: Report = {
    format: REPORT_FORMAT,
    command: 'tune',
    created: new Date().toISOString(),
    algo: o.algo,
    params: result.best.params,
    data: summarizeData(data),
    epochs: exported?.epochs ?? [],
    tune: {
      objective: result.objective,
      mode: result.mode,
      log: result.log,
      best: { trial: result.best.trial, value: result.best.value, params: result.best.params },
      trials: result.trials.map((t) => ({ trial: t.trial, value: t.value, best_epoch: t.best_epoch, seconds: t.seconds, params: t.params, curve: t.curve })),
    },
    timings,
    headline,
  };
  if (exported?.reportData?.model) report.model = exported.reportData.model;
  return { result, exported, report: writeReport(reportDir, report) };
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

// ---------------------------------------------------------------------------------------------

export interface DataCheckOptions {
  read?: ReadOptions;
  /** More unreadable rows than this make the data unusable (train stops at the first one). */
  maxBadRows?: number;
  /** Write the check as JSON here (a pipeline's metrics artifact). */
  out?: string;
}

export interface DataCheck {
  file: string;
  usable: boolean;
  /** Why the data is unusable, in one line. */
  problem?: string;
  /** Readable rows, before merging repeated (user, item) pairs. */
  rows: number;
  bad_rows: number;
  /** The first few unreadable rows as `file:line: what is wrong`. */
  bad_examples: string[];
  /** Rows repeating an earlier (user, item) pair (train merges them, see --aggregate). */
  duplicates: number;
  users: number;
  items: number;
  interactions: number;
  sparsity: number;
  explicit: boolean;
  rating_min: number | null;
  rating_max: number | null;
}

const BAD_EXAMPLES = 5;

/** `recserve validate-data`: reads the log with train's options and says whether train can use it. */
export async function validateData(file: string, o: DataCheckOptions = {}): Promise<DataCheck> {
  const bad: string[] = [];
  let badRows = 0;
  const check: DataCheck = { file, usable: false, rows: 0, bad_rows: 0, bad_examples: [], duplicates: 0, users: 0, items: 0, interactions: 0, sparsity: 1, explicit: false, rating_min: null, rating_max: null };
  try {
    const raw = await readInteractions(file, {
      ...o.read,
      onBadRow: (e) => {
        badRows++;
        if (bad.length < BAD_EXAMPLES) bad.push(e.message);
      },
    });
    const merged = dedupe(raw);
    const summary = summarizeData(merged);
    Object.assign(check, {
      rows: raw.users.length,
      duplicates: raw.users.length - merged.users.length,
      users: summary.users,
      items: summary.items,
      interactions: merged.users.length,
      sparsity: summary.sparsity,
      explicit: summary.explicit,
      rating_min: summary.rating_range?.[0] ?? null,
      rating_max: summary.rating_range?.[1] ?? null,
    });
  } catch (e) {
    check.problem = (e as Error).message;
  }
  check.bad_rows = badRows;
  check.bad_examples = bad;
  const maxBad = o.maxBadRows ?? 0;
  if (!check.problem && badRows > maxBad) check.problem = `${file}: ${badRows} unreadable row${badRows === 1 ? '' : 's'} (allowed ${maxBad}); first: ${bad[0]}`;
  if (!check.problem && (check.users < 2 || check.items < 2)) check.problem = `${file}: ${check.users} user(s) and ${check.items} item(s): a factor model needs at least 2 of each`;
  check.usable = check.problem === undefined;
  if (o.out) {
    mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
    writeFileSync(o.out, JSON.stringify(check, null, 2) + '\n');
  }
  return check;
}
