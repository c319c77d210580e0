// The commands end to end on small generated files: train (with a catalog), evaluate, tune, and the
// CLI's help text.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerTrainCommands } from '../../src/cli/train-commands.js';
import { ModelRegistry } from '../../src/model/registry.js';
import { inProcessScorer } from '../../src/model/pool/factory.js';
import { runFitJobs, type FitJob } from '../../src/train/jobs.js';
import { inputOf } from '../../src/train/model.js';
import { evaluateArtifact, evaluateCommand, trainCommand, tuneCommand } from '../../src/train/pipeline.js';
import { kebab, PARAMS } from '../../src/train/trainers.js';
import { loadBest } from '../../src/train/tune.js';
import { plantedRatings, tempDir } from './helpers.js';

const dir = tempDir('recserve-pipeline-');
const { data } = plantedRatings({ users: 80, items: 60, density: 0.35 });
const dataFile = path.join(dir, 'ratings.csv');
writeFileSync(
  dataFile,
  'userId,movieId,rating,timestamp\n' +
    Array.from(data.users, (u, k) => `${data.userIds.ids[u]},${data.itemIds.ids[data.items[k]]},${Math.min(5, Math.max(1, Math.round(data.ratings[k])))},${1000 + k}`).join('\n') +
    '\n',
);
const catalogFile = path.join(dir, 'movies.csv');
writeFileSync(catalogFile, 'movieId,title,genres\n' + data.itemIds.ids.map((id, i) => `${id},"Film ${i}, The (${1990 + (i % 20)})",${i % 2 ? 'Comedy' : 'Drama|Romance'}`).join('\n') + '\n');

const registries: ModelRegistry[] = [];
afterAll(async () => {
  for (const r of registries) await r.close();
});

describe('recserve train', () => {
  it('writes a model the server loads, with catalog, popularity and seen items, and can filter by genre', async () => {
    const out = path.join(dir, 'model');
    const s = await trainCommand({ data: dataFile, items: { file: catalogFile }, out, algo: 'als', params: { factors: 4, epochs: 5 }, valid: { kind: 'random', test: 0.1, seed: 1 } });
    expect(s.verify?.ok).toBe(true);
    expect(s.validation?.rmse).toBeLessThan(1.2);
    const registry = new ModelRegistry(inProcessScorer);
    registries.push(registry);
    const rec = await registry.load(out);
    expect(rec.artifact.catalog?.[0]).toHaveProperty('genre');
    expect(rec.artifact.ratingRange).toEqual([1, 5]);
    expect(JSON.parse(rec.artifact.metadata['recserve.training'])).toMatchObject({ algo: 'als', params: { factors: 4, epochs: 5 } });
    const [r] = await rec.recommend({ users: ['u3'], k: 5, excludeSeen: true, filter: { genre: 'Comedy' } });
    expect(r.strategy).toBe('personalized');
    expect(r.items.length).toBe(5);
    for (const it of r.items) expect(it.fields?.genre).toEqual(['Comedy']);
    const seen = new Set(rec.artifact.seen![rec.userIdx('u3')!]);
    for (const it of r.items) expect(seen.has(rec.itemIdx(it.itemId)!)).toBe(false);
    // evaluate the artifact on a test file
    const testFile = path.join(dir, 'test.csv');
    writeFileSync(testFile, 'userId,movieId,rating\nu1,i2,4\nu2,i3,2\nnobody,i1,3\n');
    const ev = await evaluateArtifact({ model: out, test: testFile });
    expect(ev.rmse).toBeGreaterThan(0);
    expect(ev.unknown_user_rows).toBe(1);
  });

  it('fails with the file and line of a bad row', async () => {
    const bad = path.join(dir, 'bad.csv');
    writeFileSync(bad, 'user,item,rating\na,b,5\nc,d,five\n');
    await expect(trainCommand({ data: bad, out: path.join(dir, 'never'), algo: 'sgd' })).rejects.toThrow(`${bad}:3: rating "five" is not a number`);
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });
});

describe('recserve evaluate and tune', () => {
  it('cross-validates with a generic split', async () => {
    const [s] = await evaluateCommand({ data: dataFile, algo: 'sgd', params: { factors: 4, epochs: 10, lr: 0.01 }, split: { kind: 'kfold', k: 3, seed: 0 }, threads: 1 });
    expect(s.jobs.length).toBe(3);
    expect(s.metrics.rmse).toBeGreaterThan(0.3);
    expect(s.metrics.rmse).toBeLessThan(1.3);
    expect(s.std.rmse).toBeGreaterThanOrEqual(0);
  });

  it('logs every trial to a JSON-lines run log and saves the best parameters', async () => {
    const log = path.join(dir, 'runs', 'tune.jsonl');
    const best = path.join(dir, 'runs', 'best-params.json');
    const { result } = await tuneCommand({
      data: dataFile,
      algo: 'sgd',
      valid: { kind: 'random', test: 0.2, seed: 1 },
      trials: 3,
      seed: 1,
      fixed: { factors: 4 },
      maxIterations: 15,
      patience: 2,
      threads: 1,
      log,
      saveBest: { file: best, key: 'rating' },
    });
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0].type).toBe('tune');
    expect(lines.filter((l) => l.type === 'trial').length).toBe(3);
    expect(lines.at(-1)!.type).toBe('best');
    for (const t of result.trials) {
      expect(t.params.factors).toBe(4);
      expect(t.params.epochs).toBe(t.best_epoch);
      expect(t.curve.length).toBeGreaterThan(0);
    }
    const saved = loadBest(best).rating;
    expect(saved.algo).toBe('sgd');
    expect(saved.value).toBe(Math.min(...result.trials.map((t) => t.value)));
    expect(saved.run_log).toBe('tune.jsonl');
  });

  it('runs jobs on worker threads with the same results as in-process (needs the compiled worker)', async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    if (!existsSync(path.join(here, '../../dist/src/train/fit-worker.js'))) return; // `npm test` builds first
    const jobs: FitJob[] = [1, 2, 3].map((seed) => ({ id: `j${seed}`, algo: 'sgd', params: { factors: 4, epochs: 3, seed }, train: inputOf(data), evals: [{ kind: 'rating', test: data }] }));
    const a = await runFitJobs(jobs, 1);
    const b = await runFitJobs(jobs, 2);
    expect(b.map((r) => r.metrics.rmse)).toEqual(a.map((r) => r.metrics.rmse));
  });
});

describe('CLI help', () => {
  const program = new Command('recserve').exitOverride();
  registerTrainCommands(program);
  const help = (name: string) => program.commands.find((c) => c.name() === name)!.helpInformation();

  it('registers train, evaluate, tune, export and validate-data', () => {
    expect(program.commands.map((c) => c.name()).sort()).toEqual(['evaluate', 'export', 'train', 'tune', 'validate-data']);
  });

  it('explains every hyperparameter flag on train, evaluate and tune', () => {
    for (const cmd of ['train', 'evaluate', 'tune']) {
      const h = help(cmd);
      for (const p of PARAMS) expect(h).toContain(`--${kebab(p.key)}`);
      for (const flag of ['--data', '--algo', '--format', '--user-col', '--event-weights', '--progress']) expect(h).toContain(flag);
    }
    expect(help('export')).toContain('--user-factors');
    expect(help('export')).toContain('--item-factors');
  });

  it('every option has a description', () => {
    for (const c of program.commands) for (const o of c.options) expect(o.description.length, `${c.name()} ${o.flags}`).toBeGreaterThan(5);
  });
});
