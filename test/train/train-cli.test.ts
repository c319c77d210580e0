// The training commands as a user (or a Kubeflow step, or Katib's StdOut collector) runs them: the
// compiled CLI in a child process on generated files. train prints validation per epoch, numbers that
// match report.json, and ends with how to serve the model; validate-data accepts good files and
// refuses bad ones in one line; evaluate and tune print name=value metric lines.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DataCheck } from '../../src/train/pipeline.js';
import type { Report } from '../../src/train/report.js';
import { plantedRatings, tempDir, writeRatingsCsv } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/src/cli/index.js');
const recserve = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
const stdoutLines = (r: { stdout: string }) => r.stdout.trim().split('\n');
/** name=value lines as Katib's default StdOut filter reads them. */
const KATIB = /^([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)$/;
const metricsOf = (r: { stdout: string }) => Object.fromEntries(stdoutLines(r).filter((l) => KATIB.test(l)).map((l) => l.split('=')).map(([k, v]) => [k, Number(v)]));

const dir = tempDir('recserve-train-cli-');
const dataFile = path.join(dir, 'ratings.csv');
const written = writeRatingsCsv(dataFile, plantedRatings({ users: 60, items: 40, density: 0.35 }).data, 20);

describe('recserve train (CLI)', () => {
  it('--valid prints validation every epoch, matching report.json, suggests --refit and ends with the serve command', () => {
    const out = path.join(dir, 'valid');
    const r = recserve('train', '--data', dataFile, '--out', out, '--algo', 'sgd', '--factors', '4', '--epochs', '5', '--valid', 'random:0.2:1', '--progress', 'plain');
    expect(r.status, r.stderr).toBe(0);
    const lines = stdoutLines(r);
    expect(lines[0].trim().split(/\s+/)).toEqual(['epoch', 'train_rmse', 'valid_rmse', 'valid_mae', 'valid_ndcg@10', 'valid_recall@10']);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
    for (let e = 1; e <= 5; e++) {
      const cells = lines[e].trim().split(/\s+/);
      const row = report.epochs[e - 1];
      expect(cells.slice(0, 4)).toEqual([String(e), row.loss.toFixed(4), row.validation!.rmse.toFixed(4), row.validation!.mae.toFixed(4)]);
    }
    // Progress (stderr) shows each epoch's validation too.
    expect(r.stderr.split('\n').filter((l) => /^sgd \d\/5 .*valid_rmse/.test(l))).toHaveLength(5);
    expect(r.stdout).toMatch(/^note: the exported model was trained without the \d+ held-out rows, so \d+ items that appear only there are not in it; add --refit/m);
    expect(r.stdout).toContain(`report: ${path.join(out, 'report.html')}`);
    expect(metricsOf(r).rmse).toBeCloseTo(report.validation!.final.rmse, 5);
    expect(metricsOf(r).ndcg_at_10).toBeCloseTo(report.validation!.final['ndcg@10'], 5);
    expect(lines.at(-1)).toBe(`serve it: npx recserve serve --model ${out}`);
  });

  it('with --refit, the name=value lines describe the exported model: the best epoch it reproduces, as the headline does', () => {
    // Ratings with no structure: validation is best after the first epoch and worse after, so the
    // best epoch and the last one differ.
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const noisy = path.join(dir, 'noisy.csv');
    const rows = ['user,item,rating'];
    for (let u = 0; u < 60; u++) for (let i = 0; i < 40; i++) if (next() < 0.35) rows.push(`${u},${i},${1 + Math.floor(next() * 5)}`);
    writeFileSync(noisy, rows.join('\n') + '\n');
    const out = path.join(dir, 'refit-noisy');
    const r = recserve('train', '--data', noisy, '--out', out, '--algo', 'als', '--factors', '4', '--epochs', '6', '--valid', 'random:0.2:1', '--refit', '--progress', 'quiet');
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report;
    expect(report.validation!.best_epoch).toBeLessThan(report.epochs.length);
    const best = report.epochs.find((e) => e.epoch === report.validation!.best_epoch)!.validation!;
    const rmseLine = stdoutLines(r).find((l) => l.startsWith('rmse='));
    expect(Number(rmseLine!.slice('rmse='.length))).toBeCloseTo(best.rmse, 5);
    expect(report.headline.valid_rmse).toBeCloseTo(best.rmse, 5);
  });

  it('--refit retrains on all data and says so; --refit without --valid is one line', () => {
    const out = path.join(dir, 'refit');
    const r = recserve('train', '--data', dataFile, '--out', out, '--algo', 'als', '--factors', '4', '--epochs', '4', '--valid', 'random:0.2:1', '--refit', '--progress', 'quiet');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^refit: retrained on all ${written.rows} interactions with epochs \\d \\(best validation epoch \\d\\); the export has every user and item$`, 'm'));
    expect(r.stdout).toContain(`${path.join(out, 'model.onnx')}: als, ${written.users} users × ${written.items} items`);
    expect(stdoutLines(r).at(-1)).toBe(`serve it: npx recserve serve --model ${out}`);
    const bad = recserve('train', '--data', dataFile, '--out', path.join(dir, 'never'), '--refit', '--progress', 'quiet');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toEqual(['recserve train: --refit needs --valid: it retrains on all data with the epoch count chosen on the validation split']);
    const users = recserve('train', '--data', dataFile, '--out', path.join(dir, 'never'), '--valid-users', '50', '--progress', 'quiet');
    expect(users.stderr.trim().split('\n')).toEqual(['recserve train: --valid-users needs --valid: it bounds the per-epoch validation']);
    const none = recserve('train', '--data', dataFile, '--out', path.join(dir, 'never'), '--valid', 'random:0.2:1', '--valid-users', '0', '--progress', 'quiet');
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/--valid-users must be a whole number ≥ 1/);
  });
});

describe('recserve validate-data', () => {
  it('summarises a good file, as text, name=value lines and a JSON metrics file', () => {
    const dupFile = path.join(dir, 'dup.csv');
    writeFileSync(dupFile, readFileSync(dataFile, 'utf8') + 'zz,i1,3,5\nzz,i1,4,6\nzz,i1,2,7\n');
    const outFile = path.join(dir, 'checks', 'good.json');
    const r = recserve('validate-data', '--data', dupFile, '--out', outFile);
    expect(r.status, r.stderr).toBe(0);
    expect(stdoutLines(r)[0]).toBe(`${dupFile}: usable`);
    const check = JSON.parse(readFileSync(outFile, 'utf8')) as DataCheck;
    expect(check).toMatchObject({ usable: true, rows: written.rows + 3, users: written.users + 1, duplicates: 2, items: written.items, bad_rows: 0, explicit: true, rating_min: 1, rating_max: 5 });
    expect(check.interactions).toBe(check.rows - check.duplicates);
    expect(metricsOf(r)).toEqual({ rows: check.rows, users: check.users, items: check.items, duplicates: check.duplicates, bad_rows: 0 });
    const json = recserve('validate-data', '--data', dupFile, '--json');
    expect(JSON.parse(json.stdout)).toEqual(check);
  });

  it('refuses unusable data in one line (and still writes --out); --max-bad-rows tolerates some', () => {
    const badFile = path.join(dir, 'bad.csv');
    writeFileSync(badFile, 'user,item,rating\na,x,5\nb,y,4\nc,z,five\nd,x,3\n');
    const outFile = path.join(dir, 'checks', 'bad.json');
    const r = recserve('validate-data', '--data', badFile, '--out', outFile);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([`recserve validate-data: ${badFile}: 1 unreadable row (allowed 0); first: ${badFile}:4: rating "five" is not a number: "c,z,five"`]);
    expect(JSON.parse(readFileSync(outFile, 'utf8'))).toMatchObject({ usable: false, bad_rows: 1, rows: 3, users: 3, items: 2 });

    const tolerated = recserve('validate-data', '--data', badFile, '--max-bad-rows', '1');
    expect(tolerated.status, tolerated.stderr).toBe(0);
    expect(metricsOf(tolerated).bad_rows).toBe(1);

    const missing = recserve('validate-data', '--data', path.join(dir, 'nope.csv'));
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim()).toBe(`recserve validate-data: ${path.join(dir, 'nope.csv')}: no such file`);

    const oneItem = path.join(dir, 'one-item.csv');
    writeFileSync(oneItem, 'user,item,rating\na,x,5\nb,x,4\n');
    expect(recserve('validate-data', '--data', oneItem).stderr).toMatch(/1 item\(s\): a factor model needs at least 2 of each/);
  });
});

describe('metric lines for Katib', () => {
  it('evaluate prints every mean metric as name=value', () => {
    const r = recserve('evaluate', '--data', dataFile, '--split', 'kfold:3:0', '--algo', 'sgd', '--factors', '4', '--epochs', '5', '--threads', '1', '--progress', 'quiet');
    expect(r.status, r.stderr).toBe(0);
    const m = metricsOf(r);
    expect(Object.keys(m).sort()).toEqual(['mae', 'rmse']);
    expect(r.stdout).toMatch(new RegExp(`mean\\s+rmse ${m.rmse.toFixed(4)}`));
    // --json stays one JSON object.
    const j = recserve('evaluate', '--data', dataFile, '--split', 'kfold:3:0', '--algo', 'sgd', '--factors', '4', '--epochs', '5', '--threads', '1', '--progress', 'quiet', '--json');
    expect(() => JSON.parse(j.stdout)).not.toThrow();
  });

  it('tune prints the best trial metrics as name=value, writes its report into --out and ends with the serve command', () => {
    const out = path.join(dir, 'tuned');
    const r = recserve('tune', '--data', dataFile, '--algo', 'sgd', '--factors', '4', '--trials', '2', '--max-iterations', '5', '--threads', '1', '--log', path.join(dir, 't.jsonl'), '--out', out, '--progress', 'quiet');
    expect(r.status, r.stderr).toBe(0);
    const best = r.stdout.match(/^best: trial \d+, rmse ([\d.]+)/m)!;
    expect(metricsOf(r).rmse.toFixed(4)).toBe(best[1]);
    expect(Object.keys(metricsOf(r)).sort()).toEqual(['mae', 'rmse']);
    expect(r.stdout).toContain(`report: ${path.join(out, 'report.html')}`);
    expect(stdoutLines(r).at(-1)).toBe(`serve it: npx recserve serve --model ${out}`);
  });

  it('export ends with the serve command', () => {
    const uf = path.join(dir, 'uf.jsonl');
    const itf = path.join(dir, 'if.jsonl');
    writeFileSync(uf, ['{"id":1,"features":[0.1,0.2]}', '{"id":2,"features":[0.3,-0.1]}'].join('\n') + '\n');
    writeFileSync(itf, ['{"id":10,"features":[0.5,0.1]}', '{"id":11,"features":[-0.2,0.4]}', '{"id":12,"features":[0.1,0.1]}'].join('\n') + '\n');
    const out = path.join(dir, 'with space');
    const r = recserve('export', '--user-factors', uf, '--item-factors', itf, '--kind', 'implicit', '--out', out, '--progress', 'quiet');
    expect(r.status, r.stderr).toBe(0);
    expect(stdoutLines(r).at(-1)).toBe(`serve it: npx recserve serve --model '${out}'`);
  });
});
