// `recserve retrain` and `recserve interactions export`: thin wrappers over src/feedback/. Both read
// the same --data-dir / RECSERVE_DATA_DIR and RECSERVE_STORE_URL as the server, so they see its store.
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { retrain } from '../train/retrain.js';
import { openStore, type Interaction } from '../feedback/store/index.js';
import { VersionRepository } from '../model-format/version-repository.js';
import { ensureDemoModel } from '../model-format/demo.js';
import { countArg, numberArg } from './args.js';

const fraction = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('not a number strictly between 0 and 1');
  return n;
};

export const CSV_COLUMNS = ['id', 'feedback_id', 'timestamp', 'user_id', 'item_id', 'reward', 'kind', 'served_by', 'puid', 'model_version'] as const;

/** One CSV line (RFC 4180 quoting) of an interaction; timestamp in Unix seconds, as MovieLens logs. */
export function csvLine(r: Interaction): string {
  const cells = [r.id, r.feedbackId, r.ts / 1000, r.userId, r.itemId, r.reward, r.kind, r.servedBy, r.puid ?? '', r.modelVersion ?? ''];
  return cells.map((c) => (typeof c === 'string' && /[",\r\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : String(c))).join(',');
}

export function registerFeedbackCommands(program: Command): void {
  program
    .command('retrain')
    .description('Train on base data + stored feedback; publish a new model version only if it is not worse than the current one on a holdout')
    .option('--data-dir <dir>', 'writable state: interaction store, published versions under models/ (env RECSERVE_DATA_DIR; default ./.data)')
    .option('--model <dir>', 'the current model (default: the version the data dir last served, else MODEL_PATH / /mnt/models / the demo model)')
    .option('--base <file>', 'base interaction log (MovieLens u.data, ratings.csv, generic CSV; env RECSERVE_RETRAIN_BASE); default: what the current model knows')
    .option('--holdout <fraction>', 'newest share of the feedback held out to compare the models', fraction, 0.2)
    .option('--min-holdout <n>', 'fewest held-out interactions to decide on (env RECSERVE_RETRAIN_MIN_HOLDOUT)', countArg('--min-holdout'))
    .option('--tolerance <x>', 'relative RMSE the new model may lose and still count as not worse', numberArg('--tolerance'), 0)
    .option('--factors <n>', 'latent factors (default: the current model’s)', countArg('--factors'))
    .option('--epochs <n>', 'ALS sweeps', countArg('--epochs'))
    .option('--reg <x>', 'L2 regularisation (default: the current model’s)', numberArg('--reg'))
    .option('--json', 'print the report as JSON')
    .action(async (opts) => {
      const config = loadConfig(process.env, { dataDir: opts.dataDir, model: opts.model });
      if (config.useDemoModel) await ensureDemoModel(config.modelDir);
      const root = path.join(config.dataDir, 'models');
      const currentDir = opts.model ? config.modelDir : new VersionRepository({ root, baseDir: config.modelDir }).startupDir();
      const store = await openStore({ url: config.storeUrl, dataDir: config.dataDir });
      try {
        const report = await retrain({
          store,
          currentDir,
          root,
          base: opts.base ?? config.feedback.retrainBase,
          holdoutFraction: opts.holdout,
          minHoldout: opts.minHoldout ?? config.feedback.retrainMinHoldout,
          tolerance: opts.tolerance,
          factors: opts.factors,
          epochs: opts.epochs,
          reg: opts.reg,
        });
        if (opts.json) {
          console.log(JSON.stringify(report, null, 2));
          return;
        }
        const m = report.metrics;
        console.log(`recserve retrain: ${report.reason}`);
        console.log(`  data: ${report.data.baseRows} base rows (${report.data.baseSource}), ${report.data.interactions} stored interactions → ${report.data.trainRows} training rows, ${report.data.holdoutRows} held out`);
        if (m) {
          console.log(`  holdout RMSE: current ${report.parent.version} ${m.current.rmse.toFixed(4)} (covers ${m.current.covered}/${m.current.n}), candidate ${m.candidate.rmse.toFixed(4)} (covers ${m.candidate.covered}/${m.candidate.n})`);
          if (m.current.auc !== null && m.candidate.auc !== null) console.log(`  holdout per-user AUC: current ${m.current.auc.toFixed(3)}, candidate ${m.candidate.auc.toFixed(3)}`);
        }
        if (report.published) console.log(`  published ${report.version} at ${report.dir}; a running server loads it with POST /admin/reload`);
      } finally {
        await store.close();
      }
    });

  const interactions = program.command('interactions').description('The interaction store (feedback) of a data directory');
  interactions
    .command('export')
    .description(`Write the stored interactions as CSV (${CSV_COLUMNS.join(',')})`)
    .option('--data-dir <dir>', 'data directory holding the store (env RECSERVE_DATA_DIR; default ./.data)')
    .option('--out <file>', 'output file (default: standard output)')
    .option('--after <id>', 'only interactions with a larger id (incremental exports)', countArg('--after'), 0)
    .action(async (opts) => {
      const config = loadConfig(process.env, { dataDir: opts.dataDir });
      const store = await openStore({ url: config.storeUrl, dataDir: config.dataDir });
      const out = opts.out ? createWriteStream(opts.out) : process.stdout;
      const write = async (text: string) => {
        if (!out.write(text)) await once(out, 'drain');
      };
      let n = 0;
      try {
        await write(`${CSV_COLUMNS.join(',')}\n`);
        for (let after = opts.after as number; ; ) {
          const page = await store.scan(after, 5000);
          if (page.length === 0) break;
          await write(page.map((r) => `${csvLine(r)}\n`).join(''));
          n += page.length;
          after = page[page.length - 1].id;
        }
      } finally {
        await store.close();
        if (opts.out) {
          (out as ReturnType<typeof createWriteStream>).end();
          await once(out, 'finish');
          console.error(`recserve: wrote ${n} interactions to ${opts.out}`);
        }
      }
    });
}
