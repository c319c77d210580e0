// `recserve train | evaluate | tune | export`: flag parsing and printing only; the work happens in
// src/train/pipeline.ts.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DataError, type Aggregate, type CatalogOptions, type ReadOptions } from '../train/data.js';
import { evaluateArtifact, evaluateCommand, exportCommand, trainCommand, tuneCommand, validateData, type CatalogSource, type ProtocolName, type TrainSummary } from '../train/pipeline.js';
import { createProgress, type ProgressMode } from '../train/progress.js';
import { metricLines, REPORT_HTML, REPORT_JSON } from '../train/report.js';
import { EPOCH_RANKING_USERS } from '../train/validation.js';
import type { InputOptions } from '../train/protocols.js';
import { parseSplitSpec, type PredefinedSplit, type SplitSpec } from '../train/split.js';
import { ALGO_INFO, ALGOS, isAlgo, kebab, PARAMS, type Algo, type Params } from '../train/trainers.js';
import { loadBest, parseSpace } from '../train/tune.js';
import { countArg, numberArg, positiveArg, positiveNumberArg } from './args.js';

type Opts = Record<string, unknown>;

const splitArg = (v: string) => {
  try {
    return parseSplitSpec(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};
const rangeArg = (v: string): [number, number] => {
  const [a, b] = v.split(/[,:]/).map(Number);
  if (!Number.isFinite(a) || !Number.isFinite(b) || a >= b) throw new InvalidArgumentError('use MIN,MAX (e.g. 1,5)');
  return [a, b];
};
const weightsArg = (v: string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const part of v.split(',')) {
    const [k, w] = part.split('=');
    if (!k || w === undefined || !Number.isFinite(Number(w))) throw new InvalidArgumentError(`"${part}": use EVENT=WEIGHT pairs, e.g. view=1,click=2,purchase=5`);
    out[k.trim()] = Number(w);
  }
  return out;
};

function addReadOptions(c: Command): Command {
  return c
    .addOption(new Option('--format <format>', 'interaction log layout: auto (by file name), movielens (u.data: tab, no header), ml-dat (ratings.dat: "::"), ml-csv (ratings.csv), csv (generic, see the column flags)').choices(['auto', 'movielens', 'ml-dat', 'ml-csv', 'csv']).default('auto'))
    .option('--delimiter <sep>', "generic files: field separator (',', tab or '\\t', ';', '|', '::'; default: sniffed)")
    .option('--header', 'generic files: the first line is a header (default: detected)')
    .option('--no-header', 'generic files: the first line is data')
    .option('--user-col <col>', 'user id column: header name or 0-based number (default: user, user_id, userId, … or column 0)')
    .option('--item-col <col>', 'item id column (default: item, item_id, movieId, product_id, … or column 1)')
    .option('--rating-col <col>', 'rating / weight column (default: rating, score, weight, … or column 2; none: every row weighs 1, i.e. implicit events)')
    .option('--time-col <col>', 'timestamp column, unix seconds or a date (default: timestamp, time, … or column 3)')
    .option('--event-col <col>', 'event-type column (view, click, purchase…), turned into weights by --event-weights')
    .option('--event-weights <list>', 'weight per event type, e.g. view=1,click=2,purchase=5 (multiplies the rating column when both exist)', weightsArg)
    .option('--min-rating <x>', 'drop interactions whose rating/weight is below x (e.g. 4 to keep only liked movies)', numberArg('--min-rating'))
    .addOption(new Option('--aggregate <how>', 'repeated (user, item) rows: last (explicit default: latest rating), sum (implicit default), max, mean').choices(['last', 'sum', 'max', 'mean']))
    .option('--encoding <enc>', 'text encoding of the interaction file (default utf8)');
}

function addCatalogOptions(c: Command): Command {
  return c
    .option('--items <file>', 'item catalog for titles/genres/… in the model (u.item, movies.csv or a CSV with a header)')
    .addOption(new Option('--items-format <format>', 'catalog layout (default: by file name)').choices(['auto', 'u.item', 'movies.csv', 'csv']).default('auto'))
    .option('--item-id-col <col>', 'generic catalog: the item id column (default: item_id, movieId, … or the first column)')
    .option('--list-cols <cols>', "generic catalog: comma-separated columns holding lists (e.g. categories), split on --list-sep")
    .option('--list-sep <sep>', "generic catalog: separator inside list columns (default '|')");
}

const AT_LEAST_ONE = new Set(['factors', 'epochs', 'samples', 'cgSteps', 'thin']);

function addParamOptions(c: Command): Command {
  c.addOption(new Option('--algo <algo>', `training algorithm: ${ALGOS.map((a) => `${a} (${ALGO_INFO[a].summary})`).join('; ')}`).choices([...ALGOS]));
  c.option('--params <file>', 'JSON file of hyperparameters ({"factors": 64, "reg": 0.1, …}); flags below override it');
  c.option('--best <file>', 'best-params file written by `recserve tune --save-best` (sets --algo and hyperparameters from the entry --best-key)');
  c.option('--best-key <key>', 'entry of the --best file (default: "rating" for explicit algorithms, "ranking" for implicit; or the only entry)');
  for (const p of PARAMS) {
    const flag = `--${kebab(p.key)}`;
    const help = `${p.help} [${p.algos.join(', ')}]`;
    if (p.type === 'bool') {
      c.option(flag, help);
      c.option(`--no-${kebab(p.key)}`, `turn off ${flag}`);
    } else if (p.type === 'choice') c.addOption(new Option(`${flag} <value>`, help).choices(p.choices!));
    // Counts a model cannot train with at 0 (factors, epochs, samples, CG steps, thinning) must be ≥ 1.
    else c.option(`${flag} <n>`, help, p.type === 'int' ? (AT_LEAST_ONE.has(p.key) ? positiveArg(flag) : countArg(flag)) : numberArg(flag));
  }
  c.addOption(new Option('--implicit-from <how>', 'implicit algorithms on rated data: binary (every interaction weighs 1; default) or value (the rating/weight is the confidence weight)').choices(['binary', 'value']));
  return c;
}

function addCommonOptions(c: Command): Command {
  return c
    .addOption(new Option('--progress <mode>', 'progress display on stderr: auto (a bar on a terminal, lines otherwise), bar, plain, quiet').choices(['auto', 'bar', 'plain', 'quiet']).default('auto'))
    .option('--json', 'print the result as one JSON object on stdout');
}

function readOptions(o: Opts): ReadOptions {
  const columns: ReadOptions['columns'] = {};
  if (o.userCol !== undefined) columns.user = o.userCol as string;
  if (o.itemCol !== undefined) columns.item = o.itemCol as string;
  if (o.ratingCol !== undefined) columns.rating = o.ratingCol as string;
  if (o.timeCol !== undefined) columns.timestamp = o.timeCol as string;
  if (o.eventCol !== undefined) columns.event = o.eventCol as string;
  const r: ReadOptions = { format: (o.format as ReadOptions['format']) ?? 'auto', columns };
  if (o.delimiter !== undefined) r.delimiter = o.delimiter as string;
  if (o.header !== undefined) r.header = o.header as boolean;
  if (o.eventWeights) r.eventWeights = o.eventWeights as Record<string, number>;
  if (o.minRating !== undefined) r.minRating = o.minRating as number;
  if (o.encoding) r.encoding = o.encoding as BufferEncoding;
  return r;
}

function catalogSource(o: Opts): CatalogSource | undefined {
  if (!o.items) return undefined;
  const options: CatalogOptions = { format: (o.itemsFormat as CatalogOptions['format']) ?? 'auto' };
  if (o.itemIdCol !== undefined) options.idColumn = o.itemIdCol as string;
  if (o.listCols) options.listColumns = String(o.listCols).split(',').map((s) => s.trim());
  if (o.listSep) options.listSeparator = o.listSep as string;
  if (o.delimiter && options.format === 'csv') options.delimiter = o.delimiter as string;
  return { file: o.items as string, options };
}

/** Algorithm and hyperparameters from --best / --params / flags (in that order of precedence, flags last). */
function modelChoice(o: Opts, fallback: Algo): { algo: Algo; params: Params; input: InputOptions } {
  let algo = o.algo as Algo | undefined;
  let params: Params = {};
  if (o.best) {
    const all = loadBest(o.best as string);
    const keys = Object.keys(all);
    let key = o.bestKey as string | undefined;
    if (!key) {
      if (keys.length === 1) key = keys[0];
      else key = algo ? (ALGO_INFO[algo].kind === 'explicit' ? 'rating' : 'ranking') : 'rating';
    }
    const entry = all[key];
    if (!entry) throw new Error(`${o.best as string} has no entry "${key}" (entries: ${keys.join(', ')})`);
    if (algo && algo !== entry.algo) throw new Error(`--algo ${algo} conflicts with ${o.best as string} entry "${key}" (algo ${entry.algo})`);
    algo = entry.algo;
    params = { ...entry.params };
  }
  if (o.params) {
    const f = o.params as string;
    if (!existsSync(f)) throw new Error(`--params ${f}: no such file`);
    try {
      params = { ...params, ...(JSON.parse(readFileSync(f, 'utf8')) as Params) };
    } catch (e) {
      throw new Error(`--params ${f}: ${(e as Error).message}`);
    }
  }
  algo ??= fallback;
  if (!isAlgo(algo)) throw new Error(`unknown algorithm ${algo}`);
  for (const p of PARAMS) {
    const v = o[p.key];
    if (v === undefined) continue;
    if (!p.algos.includes(algo)) throw new Error(`--${kebab(p.key)} does not apply to --algo ${algo} (it is for ${p.algos.join(', ')})`);
    params[p.key] = v as number | string | boolean;
  }
  const input: InputOptions = {};
  if (o.implicitFrom) input.implicit = o.implicitFrom as 'binary' | 'value';
  return { algo, params, input };
}

function fail(cmd: string, e: unknown): never {
  const msg = e instanceof DataError ? e.message : (e as Error).message;
  console.error(`recserve ${cmd}: ${msg}`);
  process.exit(1);
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(4);
}

const refitArg = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('--refit takes an iteration count ≥ 1, or nothing for the best validation epoch');
  return n;
};

/** The shell form of a path: bare when it needs no quoting. */
function shellPath(p: string): string {
  return /^[\w./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

/** The last line of every command that writes a model: what to run next. */
function serveHint(dir: string): string {
  return `serve it: npx recserve serve --model ${shellPath(dir)}`;
}

function reportLine(dir: string): string {
  return `report: ${path.join(dir, REPORT_HTML)} (data: ${path.join(dir, REPORT_JSON)})`;
}

/** The per-epoch table of a validated training run. */
function epochTable(s: TrainSummary): string[] {
  const rows = s.epochs ?? [];
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.validation ?? {})))].filter((n) => ['rmse', 'mae', 'ndcg@10', 'recall@10'].includes(n));
  if (rows.length === 0 || names.length === 0) return [];
  const head = ['epoch', rows[0].loss_name, ...names.map((n) => `valid_${n}`)];
  const width = head.map((h) => Math.max(8, h.length));
  const line = (cells: string[]) => cells.map((c, j) => c.padStart(width[j])).join('  ');
  const cell = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(4));
  const out = [line(head)];
  for (const r of rows) out.push(line([String(r.epoch), cell(r.loss), ...names.map((n) => cell(r.validation?.[n]))]) + (r.epoch === s.bestEpoch ? '  ← best' : ''));
  return out;
}

export function registerTrainCommands(program: Command): void {
  // ---------------------------------------------------------------- train
  const train = program
    .command('train')
    .description('Train a factor model from an interaction log and write <out>/model.onnx (checked by loading it back with onnxruntime)')
    .requiredOption('--data <file>', 'interaction log: MovieLens u.data / ratings.dat / ratings.csv, or a CSV/TSV of user,item[,rating][,timestamp]')
    .requiredOption('--out <dir>', 'model directory to write (model.onnx with id maps, catalog, popularity and seen items inside)')
    .option('--valid <split>', 'hold out a validation split and report its metrics after every epoch (random:0.1:1, stratified-item:0.75:42, stratified-user:0.75:42, kfold:5:0:1); without --refit the exported model is trained without it')
    .option('--valid-users <n>', `with --valid: rank the held-out rows of at most this many sampled users after each epoch (default ${EPOCH_RANKING_USERS}; the final validation ranks every user)`, positiveArg('--valid-users'))
    .option('--refit [iterations]', 'with --valid: then retrain on all data and export that model, with the best validation epoch count (or the iteration count given)', refitArg)
    .option('--name <name>', 'model name stored in the artifact (default: the --out directory name)')
    .option('--model-version <v>', 'model version stored in the artifact (default: a timestamp)')
    .option('--no-seen', 'do not store each user\'s training items (the server then cannot exclude seen items)')
    .option('--no-verify', 'skip loading the export back with onnxruntime to compare scores');
  addReadOptions(train);
  addCatalogOptions(train);
  addParamOptions(train);
  addCommonOptions(train);
  train.addHelpText(
    'after',
    `
Examples:
  npx recserve train --data ml-100k/u.data --items ml-100k/u.item --out models/ml100k --best runs/best-params.json --best-key rating
  npx recserve train --data ml-100k/u.data --out models/ml100k-rank --algo wals --factors 64 --reg 50 --alpha 5 --epochs 10
  npx recserve train --data events.csv --user-col visitorid --item-col itemid --event-col event \\
                 --event-weights view=1,addtocart=3,transaction=5 --algo wals --out models/shop`,
  );
  train.action(async (o: Opts) => {
    try {
      const m = modelChoice(o, 'sgd');
      const progress = createProgress(o.progress as ProgressMode);
      const s = await trainCommand({
        data: o.data as string,
        read: readOptions(o),
        aggregate: o.aggregate as Aggregate | undefined,
        items: catalogSource(o),
        out: o.out as string,
        algo: m.algo,
        params: m.params,
        input: m.input,
        valid: o.valid ? splitArg(o.valid as string) : undefined,
        refit: o.refit as boolean | number | undefined,
        validUsers: o.validUsers as number,
        name: o.name as string | undefined,
        version: o.modelVersion as string | undefined,
        noSeen: o.seen === false,
        noVerify: o.verify === false,
        progress,
      });
      const { reportData, ...summary } = s;
      if (o.json) console.log(JSON.stringify(summary));
      else {
        for (const l of epochTable(s)) console.log(l);
        console.log(`${s.file}: ${s.algo}, ${s.users} users × ${s.items} items, ${s.factors} factors, trained in ${s.seconds.toFixed(1)} s`);
        const line = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k} ${fmt(v)}`).join('  ');
        if (s.validation) console.log(`validation${s.exportedValidation && s.exportedValidation !== s.validation ? ' (last epoch, every held-out user)' : ''}: ${line(s.validation)}`);
        if (s.exportedValidation && s.validation && s.exportedValidation !== s.validation) console.log(`validation of the exported model (epoch ${s.bestEpoch}, ranking on the per-epoch user sample): ${line(s.exportedValidation)}`);
        const v = reportData?.validation;
        if (s.refit) console.log(`refit: retrained on all ${s.interactions} interactions with ${s.refit.parameter} ${s.refit.iterations} (${s.refit.chosenBy === 'given' ? 'as given' : `best validation epoch ${s.bestEpoch}`}); the export has every user and item`);
        else if (v) {
          const parts = [[v.only_held_out.users, 'users'], [v.only_held_out.items, 'items']].filter(([n]) => n !== 0).map(([n, what]) => `${n} ${what}`);
          const lost = parts.length > 0 ? `, so ${parts.join(' and ')} that appear only there are not in it` : '';
          console.log(`note: the exported model was trained without the ${v.held_out_rows} held-out rows${lost}; add --refit to retrain on all data with ${ALGO_INFO[m.algo].iterations} ${v.best_iterations} (the best validation epoch)`);
        }
        if (s.report) console.log(reportLine(o.out as string));
        // Katib and the pipeline read these: they describe the exported model (with --refit, the best epoch it reproduces).
        const exported = s.exportedValidation ?? s.validation;
        if (exported) for (const l of metricLines(exported)) console.log(l);
        console.log(serveHint(o.out as string));
      }
    } catch (e) {
      fail('train', e);
    }
  });

  // ---------------------------------------------------------------- evaluate
  const evaluate = program
    .command('evaluate')
    .description('Cross-validate an algorithm with the published MovieLens protocols (Surprise, Microsoft Recommenders, LightFM), or score an exported model on a test log')
    .option('--data <file>', 'interaction log (for --protocol ml-u1-u5 / lightfm: any file inside the MovieLens 100K directory, or the directory)')
    .addOption(
      new Option(
        '--protocol <name>',
        'surprise: random 5-fold over rows, numpy seed 0 (Surprise KFold), RMSE/MAE; ml-u1-u5: u1..u5.base/test, RMSE/MAE; msr: Microsoft Recommenders per-item stratified 75/25 seed 42, top-k nDCG/precision/recall/MAP with seen items removed; lightfm: ua.base/ua.test precision@k and AUC',
      ).choices(['surprise', 'ml-u1-u5', 'msr', 'lightfm']),
    )
    .option('--split <spec>', 'generic split instead of --protocol: random:<test>:<seed>, stratified-item:<ratio>:<seed>, stratified-user:<ratio>:<seed>, kfold:<k>:<seed>[:<fold>], predefined:u1,u2,… (default kfold:5:0)')
    .option('--metrics <list>', 'with --split: comma-separated rating,ranking,lightfm (default: rating for explicit algorithms, ranking for implicit)')
    .option('--k <n>', 'cut-off of the ranking metrics', positiveArg('--k'), 10)
    .option('--threads <n>', 'worker threads for independent folds (default: min(2, cores); env RECSERVE_TRAIN_THREADS)', countArg('--threads'))
    .option('--model <dir>', 'evaluate this exported model instead of training (needs --test)')
    .option('--test <file>', 'with --model: the held-out interactions to score')
    .option('--train <file>', 'with --model: training interactions to remove from top-k lists (default: the seen items stored in the model)')
    .option('--report <dir>', 'write report.html and report.json (metrics table with the published anchors, data summary, timings) into this directory');
  addReadOptions(evaluate);
  addParamOptions(evaluate);
  addCommonOptions(evaluate);
  evaluate.addHelpText(
    'after',
    `
Examples:
  npx recserve evaluate --data ml-100k/u.data --protocol surprise --best runs/best-params.json --best-key rating
  npx recserve evaluate --data ml-100k/u.data --protocol msr --algo wals --factors 64 --reg 50 --alpha 5
  npx recserve evaluate --data ratings.csv --split stratified-user:0.8:1 --metrics ranking --algo bpr
  npx recserve train --data ml-100k/u1.base --items ml-100k/u.item --out models/u1 --algo als
  npx recserve evaluate --model models/u1 --test ml-100k/u1.test`,
  );
  evaluate.action(async (o: Opts) => {
    try {
      if (o.model) {
        if (!o.test) throw new Error('--model needs --test FILE');
        const r = await evaluateArtifact({ model: o.model as string, test: o.test as string, train: o.train as string | undefined, read: readOptions(o), k: o.k as number, report: o.report as string | undefined });
        if (o.json) console.log(JSON.stringify(r));
        else {
          for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(20)} ${fmt(v)}`);
          if (o.report) console.log(reportLine(o.report as string));
          for (const l of metricLines(r)) console.log(l);
        }
        return;
      }
      if (!o.data) throw new Error('--data is required (or --model with --test)');
      const m = modelChoice(o, 'sgd');
      let split: SplitSpec | { kind: 'predefined'; names: PredefinedSplit[] } | undefined;
      if (o.split) {
        const s = o.split as string;
        if (s.startsWith('predefined:')) {
          const names = s.slice('predefined:'.length).split(',').map((x) => x.trim());
          for (const n of names) if (!/^u[1-5ab]$/.test(n)) throw new Error(`--split ${s}: unknown predefined split "${n}" (u1..u5, ua, ub)`);
          split = { kind: 'predefined', names: names as PredefinedSplit[] };
        } else split = splitArg(s);
      }
      if (o.split && o.protocol) throw new Error('use either --protocol or --split');
      const metrics = o.metrics ? (String(o.metrics).split(',').map((x) => x.trim()) as ('rating' | 'ranking' | 'lightfm')[]) : undefined;
      for (const x of metrics ?? []) if (!['rating', 'ranking', 'lightfm'].includes(x)) throw new Error(`--metrics: unknown "${x}" (rating, ranking, lightfm)`);
      const res = await evaluateCommand({
        data: o.data as string,
        read: readOptions(o),
        algo: m.algo,
        params: m.params,
        input: m.input,
        protocol: o.protocol as ProtocolName | undefined,
        split,
        metrics,
        k: o.k as number,
        threads: o.threads as number | undefined,
        report: o.report as string | undefined,
        progress: createProgress(o.progress as ProgressMode),
      });
      if (o.json) console.log(JSON.stringify(res.map((r) => ({ name: r.name, description: r.description, algo: m.algo, params: r.jobs[0]?.params, metrics: r.metrics, std: r.std, folds: r.jobs.map((j) => ({ id: j.id, ...j.metrics, seconds: j.seconds })), train_seconds: r.trainSeconds }))));
      else {
        for (const r of res) {
          console.log(`${r.name}: ${r.description}`);
          for (const j of r.jobs) console.log(`  ${j.id.padEnd(28)} ${Object.entries(j.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join('  ')}  (${j.seconds.toFixed(1)} s)`);
          console.log(`  ${'mean'.padEnd(28)} ${Object.entries(r.metrics).map(([k, v]) => `${k} ${fmt(v)}${r.std[k] !== undefined ? ` ±${r.std[k].toFixed(4)}` : ''}`).join('  ')}`);
        }
        if (o.report) console.log(reportLine(o.report as string));
        for (const r of res) for (const l of metricLines(r.metrics, res.length > 1 ? `${r.name}_` : '')) console.log(l);
      }
    } catch (e) {
      fail('evaluate', e);
    }
  });

  // ---------------------------------------------------------------- tune
  const tuneCmd = program
    .command('tune')
    .description('Random search over hyperparameters with early stopping on a validation split; logs every trial to a JSON-lines run log')
    .requiredOption('--data <file>', 'interaction log to tune on')
    .option('--restrict <split>', 'tune only on the train part of this split so its test part stays unseen (e.g. stratified-item:0.75:42 = the MSR test set, kfold:5:0:1)')
    .option('--valid <split>', 'how validation is carved from the tuning data (default random:0.1:1 for explicit, stratified-user:0.8:1 for implicit)')
    .option('--trials <n>', 'number of trials (the first uses the defaults/fixed parameters)', positiveArg('--trials'), 20)
    .option('--search-seed <n>', 'seed of the random search (the training seed is --seed, fixed across trials)', countArg('--search-seed'), 0)
    .option('--objective <metric>', 'rmse or mae (explicit); ndcg@10, precision@10, recall@10 or map (any algorithm)')
    .option('--space <json>', 'search space, e.g. \'{"factors":[16,32,64],"reg":[0.01,1,"log"],"alpha":[1,50,"log"]}\' (default: a space per algorithm)')
    .option('--max-iterations <n>', 'upper bound on epochs (samples for bayes) per trial; early stopping picks the best', countArg('--max-iterations'))
    .option('--patience <n>', 'stop a trial after this many evaluations without improvement', countArg('--patience'))
    .option('--threads <n>', 'trials run in parallel on this many worker threads (default: min(2, cores))', countArg('--threads'))
    .option('--log <file>', 'JSON-lines run log to append to (default runs/tune-<algo>-<time>.jsonl)')
    .option('--save-best <file>', 'merge the best trial into this best-params file (e.g. runs/best-params.json)')
    .option('--save-key <key>', 'entry name in --save-best (default: rating for rmse/mae objectives, ranking otherwise)')
    .option('--out <dir>', 'also train the best parameters on all of --data and export the model here')
    .option('--name <name>', 'with --out: model name')
    .option('--model-version <v>', 'with --out: model version')
    .option('--report <dir>', 'write report.html and report.json (trial scores, data summary, timings) here (default: --out, when given)');
  addReadOptions(tuneCmd);
  addCatalogOptions(tuneCmd);
  addParamOptions(tuneCmd);
  addCommonOptions(tuneCmd);
  tuneCmd.addHelpText(
    'after',
    `
Hyperparameter flags (--factors, --reg, …) are held fixed in every trial; the rest come from --space.

Examples:
  npx recserve tune --data ml-100k/u1.base --algo bayes --trials 8 --save-best runs/best-params.json
  npx recserve tune --data ml-100k/u.data --restrict stratified-item:0.75:42 --valid stratified-item:0.75:1 \\
                --algo wals --trials 30 --objective ndcg@10 --save-best runs/best-params.json`,
  );
  tuneCmd.action(async (o: Opts) => {
    try {
      const m = modelChoice(o, 'sgd');
      const explicit = ALGO_INFO[m.algo].kind === 'explicit';
      const objective = (o.objective as string | undefined) || (explicit ? 'rmse' : 'ndcg@10');
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
      const log = (o.log as string | undefined) ?? path.join('runs', `tune-${m.algo}-${stamp}.jsonl`);
      const { result, exported, report } = await tuneCommand({
        data: o.data as string,
        read: readOptions(o),
        algo: m.algo,
        input: m.input,
        restrict: o.restrict ? splitArg(o.restrict as string) : undefined,
        valid: o.valid ? splitArg(o.valid as string) : explicit && (objective === 'rmse' || objective === 'mae') ? { kind: 'random', test: 0.1, seed: 1 } : { kind: 'stratified-user', ratio: 0.8, seed: 1 },
        trials: o.trials as number,
        seed: o.searchSeed as number,
        space: o.space ? parseSpace(o.space as string) : undefined,
        fixed: m.params,
        objective,
        maxIterations: o.maxIterations as number | undefined,
        patience: o.patience as number | undefined,
        threads: o.threads as number | undefined,
        log,
        saveBest: o.saveBest ? { file: o.saveBest as string, key: (o.saveKey as string | undefined) ?? (objective === 'rmse' || objective === 'mae' ? 'rating' : 'ranking') } : undefined,
        out: o.out as string | undefined,
        items: catalogSource(o),
        exportMeta: { name: o.name as string | undefined, version: o.modelVersion as string | undefined },
        report: o.report as string | undefined,
        progress: createProgress(o.progress as ProgressMode),
      });
      if (o.json) console.log(JSON.stringify({ best: result.best, log: result.log, exported: exported && { ...exported, reportData: undefined }, report }));
      else {
        const sorted = [...result.trials].sort((a, b) => (result.mode === 'min' ? a.value - b.value : b.value - a.value));
        for (const t of sorted.slice(0, 10)) console.log(`trial ${String(t.trial).padStart(3)}  ${result.objective} ${fmt(t.value)}  ${JSON.stringify(t.params)}  (${t.seconds.toFixed(1)} s)`);
        console.log(`best: trial ${result.best.trial}, ${result.objective} ${fmt(result.best.value)}, ${JSON.stringify(result.best.params)}`);
        console.log(`run log: ${result.log}`);
        if (exported) console.log(`exported ${exported.file}`);
        if (report) console.log(reportLine(path.dirname(report.html)));
        for (const l of metricLines(result.best.metrics)) console.log(l);
        if (exported) console.log(serveHint(o.out as string));
      }
    } catch (e) {
      fail('tune', e);
    }
  });

  // ---------------------------------------------------------------- export
  const exp = program
    .command('export')
    .description('Turn factor tables trained elsewhere (e.g. Spark MLlib ALS userFactors/itemFactors) into the same model.onnx artifact')
    .requiredOption('--user-factors <path>', 'user factor table: JSON lines {"id":…, "features":[…]} or CSV id,"[f1,f2,…]" / id,f1,f2,…; a file or a directory of part-* files')
    .requiredOption('--item-factors <path>', 'item factor table, same formats')
    .requiredOption('--out <dir>', 'model directory to write')
    .addOption(new Option('--table-format <format>', 'factor table format (default: detected per file)').choices(['auto', 'jsonl', 'csv']).default('auto'))
    .option('--id-field <name>', 'id field / column name (default "id")')
    .option('--features-field <name>', 'vector field / column name (default "features")')
    .option('--user-bias <path>', 'per-user bias table: CSV id,bias or JSON lines {"id":…, "bias":…} (default: a "bias" field in the factor table, else 0)')
    .option('--item-bias <path>', 'per-item bias table (same formats)')
    .option('--global-bias <x>', 'constant added to every score (e.g. the global mean rating)', numberArg('--global-bias'))
    .addOption(new Option('--kind <kind>', 'explicit (scores are ratings) or implicit (preferences)').choices(['explicit', 'implicit']).default('explicit'))
    .option('--rating-range <min,max>', 'explicit models: clamp reported scores to this range', rangeArg)
    .option('--regularization <x>', 'λ the server should use to fold new users in (the training regularisation, > 0)', positiveNumberArg('--regularization'))
    .option('--interactions <file>', 'training interactions, for item popularity (cold start) and per-user seen items')
    .option('--name <name>', 'model name stored in the artifact')
    .option('--model-version <v>', 'model version stored in the artifact')
    .option('--no-seen', 'with --interactions: do not store per-user seen items')
    .option('--no-verify', 'skip the onnxruntime round-trip check');
  addReadOptions(exp);
  addCatalogOptions(exp);
  addCommonOptions(exp);
  exp.addHelpText(
    'after',
    `
Spark MLlib, for example:
  model.userFactors.write.json("uf"); model.itemFactors.write.json("if")
  npx recserve export --user-factors uf --item-factors if --kind implicit --items items.csv --out models/spark-als`,
  );
  exp.action(async (o: Opts) => {
    try {
      const s = await exportCommand({
        userFactors: o.userFactors as string,
        itemFactors: o.itemFactors as string,
        table: { format: o.tableFormat as 'auto' | 'jsonl' | 'csv', idField: o.idField as string | undefined, featuresField: o.featuresField as string | undefined },
        userBias: o.userBias as string | undefined,
        itemBias: o.itemBias as string | undefined,
        globalBias: o.globalBias as number | undefined,
        kind: o.kind as 'explicit' | 'implicit',
        ratingRange: o.ratingRange as [number, number] | undefined,
        regularization: o.regularization as number | undefined,
        interactions: o.interactions as string | undefined,
        read: readOptions(o),
        items: catalogSource(o),
        out: o.out as string,
        name: o.name as string | undefined,
        version: o.modelVersion as string | undefined,
        noSeen: o.seen === false,
        noVerify: o.verify === false,
        progress: createProgress(o.progress as ProgressMode),
      });
      if (o.json) console.log(JSON.stringify(s));
      else {
        console.log(`${s.file}: ${s.users} users × ${s.items} items, ${s.factors} factors${s.verify ? `, verified (max |Δ| ${s.verify.maxAbsDiff.toExponential(2)})` : ''}`);
        console.log(serveHint(o.out as string));
      }
    } catch (e) {
      fail('export', e);
    }
  });

  // ---------------------------------------------------------------- validate-data
  const check = program
    .command('validate-data')
    .description('Check an interaction log with the same read options as train: rows, users, items, rating range, repeated pairs, unreadable rows; exits 1 with one line when train could not use it')
    .requiredOption('--data <file>', 'interaction log to check')
    .option('--max-bad-rows <n>', 'unreadable rows tolerated before the data counts as unusable (train itself stops at the first)', countArg('--max-bad-rows'), 0)
    .option('--out <file>', 'also write the check as JSON to this file (a pipeline metrics artifact); written even when the data is unusable');
  addReadOptions(check);
  check.option('--json', 'print the check as one JSON object on stdout');
  check.action(async (o: Opts) => {
    try {
      const c = await validateData(o.data as string, { read: readOptions(o), maxBadRows: o.maxBadRows as number, out: o.out as string | undefined });
      if (o.json) console.log(JSON.stringify(c));
      else if (c.usable) {
        console.log(`${c.file}: usable`);
        console.log(`  rows ${c.rows}  users ${c.users}  items ${c.items}  interactions ${c.interactions}  sparsity ${(c.sparsity * 100).toFixed(2)} %`);
        console.log(`  ${c.explicit ? 'ratings' : 'event weights'} ${c.rating_min} – ${c.rating_max}${c.explicit ? '' : ' (implicit: no rating column)'}`);
        console.log(`  repeated (user, item) rows ${c.duplicates}${c.duplicates > 0 ? ' (train merges them, see --aggregate)' : ''}`);
        console.log(`  unreadable rows ${c.bad_rows}${c.bad_examples[0] ? ` (first: ${c.bad_examples[0]})` : ''}`);
        for (const l of metricLines({ rows: c.rows, users: c.users, items: c.items, duplicates: c.duplicates, bad_rows: c.bad_rows })) console.log(l);
      }
      if (!c.usable) fail('validate-data', new Error(c.problem));
    } catch (e) {
      fail('validate-data', e);
    }
  });
}
