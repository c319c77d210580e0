// The training report: report.json agrees with what training returned and with the artifact's
// headline; --refit keeps every item; report.html renders in real headless Chromium with one chart
// point per epoch / trial and fetches nothing. Generated data only.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { evaluateCommand, trainCommand, tuneCommand } from '../../src/train/pipeline.js';
import type { Report } from '../../src/train/report.js';
import { significant as round } from '../../src/util/round.js';
import { esc } from '../../src/train/report-html.js';
import { plantedClicks, plantedRatings, tempDir, writeRatingsCsv } from './helpers.js';

const dir = tempDir('recserve-report-');
const dataFile = path.join(dir, 'ratings.csv');
const written = writeRatingsCsv(dataFile, plantedRatings({ users: 70, items: 50, density: 0.35 }).data, 30);
const valid = { kind: 'random', test: 0.2, seed: 1 } as const;
const EPOCHS = 8;
const readReport = (d: string) => JSON.parse(readFileSync(path.join(d, 'report.json'), 'utf8')) as Report;

describe('report.json', () => {
  it('train --valid: per-epoch validation, data summary and headline agree with the run and the artifact', async () => {
    const out = path.join(dir, 'sgd');
    const s = await trainCommand({ data: dataFile, out, algo: 'sgd', params: { factors: 4, epochs: EPOCHS, lr: 0.01 }, valid });
    const r = readReport(out);
    expect(s.report?.json).toBe(path.join(out, 'report.json'));
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);
    expect(r).toMatchObject({ format: 'recserve-report/1', command: 'train', algo: 'sgd' });

    expect(r.data).toMatchObject({ interactions: written.rows, users: written.users, items: written.items, explicit: true, rating_range: [1, 5] });
    expect(r.data!.sparsity).toBeCloseTo(1 - written.rows / (written.users * written.items), 12);
    expect(r.data!.histogram.map((b) => b.label)).toEqual(['1', '2', '3', '4', '5']);
    expect(r.data!.histogram.reduce((a, b) => a + b.count, 0)).toBe(written.rows);

    expect(r.epochs.map((e) => e.epoch)).toEqual(Array.from({ length: EPOCHS }, (_, j) => j + 1));
    for (const e of r.epochs) {
      expect(e.loss_name).toBe('train_rmse');
      expect(Object.keys(e.validation!)).toEqual(expect.arrayContaining(['rmse', 'mae', 'ndcg@10', 'recall@10']));
    }
    expect(r.epochs).toEqual(JSON.parse(JSON.stringify(s.epochs)));
    // Every held-out row scores the final epoch's RMSE, per epoch and at the end alike.
    expect(r.epochs.at(-1)!.validation!.rmse).toBeCloseTo(s.validation!.rmse, 12);
    const rmses = r.epochs.map((e) => e.validation!.rmse);
    expect(r.validation!.best_epoch).toBe(rmses.indexOf(Math.min(...rmses)) + 1);
    expect(r.validation!.final).toEqual(s.validation);
    expect(r.validation!.held_out_rows + r.validation!.train_rows).toBe(written.rows);

    expect(r.headline).toMatchObject({ algo: 'sgd', users: s.users, items: s.items, factors: 4, epochs: EPOCHS, valid_rmse: round(s.validation!.rmse), valid_epoch: EPOCHS, refit: 'no' });
    expect((await loadArtifact(out)).headline).toEqual(r.headline);
    for (const k of ['read', 'train', 'validation_per_epoch', 'export', 'verify', 'total']) expect(r.timings[k], k).toBeGreaterThanOrEqual(0);
  });

  it('--refit retrains on all data with the best epoch count and keeps every item; without it the held-out-only items are missing', async () => {
    const without = await trainCommand({ data: dataFile, out: path.join(dir, 'no-refit'), algo: 'als', params: { factors: 4, epochs: 6 }, valid });
    expect(without.onlyHeldOut!.items).toBeGreaterThan(0);
    expect(without.items).toBe(written.items - without.onlyHeldOut!.items);

    const out = path.join(dir, 'refit');
    const s = await trainCommand({ data: dataFile, out, algo: 'als', params: { factors: 4, epochs: 6 }, valid, refit: true });
    const r = readReport(out);
    expect(s.items).toBe(written.items);
    expect(s.users).toBe(written.users);
    expect((await loadArtifact(out)).itemIds).toHaveLength(written.items);
    expect(r.refit).toMatchObject({ parameter: 'epochs', iterations: r.validation!.best_epoch, chosen_by: 'best-validation-epoch', items: written.items, interactions: written.rows });
    expect(r.refit!.epochs).toHaveLength(r.validation!.best_epoch);
    expect(r.params.epochs).toBe(r.validation!.best_epoch);
    expect(r.headline).toMatchObject({ refit: 'yes', items: written.items, valid_epoch: r.validation!.best_epoch, valid_rmse: round(r.epochs[r.validation!.best_epoch - 1].validation!.rmse) });

    const given = await trainCommand({ data: dataFile, out: path.join(dir, 'refit-3'), algo: 'als', params: { factors: 4, epochs: 6 }, valid, refit: 3, report: false });
    expect(given.refit).toEqual({ parameter: 'epochs', iterations: 3, chosenBy: 'given' });
    expect(existsSync(path.join(dir, 'refit-3', 'report.json'))).toBe(false);
    await expect(trainCommand({ data: dataFile, out: path.join(dir, 'never'), algo: 'als', refit: true })).rejects.toThrow('--refit needs --valid');
  });

  it('implicit training validates a ranking metric every epoch, bayes only after its burn-in', async () => {
    const clicks = plantedClicks({ users: 60, items: 40, perUser: 10 });
    const file = path.join(dir, 'clicks.csv');
    writeFileSync(file, 'user,item\n' + Array.from(clicks.users, (u, k) => `${clicks.userIds.ids[u]},${clicks.itemIds.ids[clicks.items[k]]}`).join('\n') + '\n');
    const s = await trainCommand({ data: file, out: path.join(dir, 'wals'), algo: 'wals', params: { factors: 4, epochs: 4 }, valid: { kind: 'stratified-user', ratio: 0.8, seed: 1 } });
    const r = readReport(path.join(dir, 'wals'));
    expect(r.validation).toMatchObject({ objective: 'ndcg@10', mode: 'max' });
    expect(r.epochs.every((e) => e.validation?.['ndcg@10'] !== undefined && e.validation.rmse === undefined)).toBe(true);
    expect(r.data!.explicit).toBe(false);
    expect(s.validation!['ndcg@10']).toBeGreaterThan(0);

    const b = await trainCommand({ data: dataFile, out: path.join(dir, 'bayes'), algo: 'bayes', params: { factors: 3, burnIn: 3, samples: 4, thin: 1 }, valid, refit: true });
    const rb = readReport(path.join(dir, 'bayes'));
    expect(rb.epochs.filter((e) => e.validation).map((e) => e.epoch)).toEqual([4, 5, 6, 7]);
    expect(rb.refit).toMatchObject({ parameter: 'samples', iterations: rb.validation!.best_epoch - 3 });
    expect(b.items).toBe(written.items);
  });

  it('evaluate and tune reports: metrics with the published anchors, trial scores', async () => {
    const evalDir = path.join(dir, 'eval');
    const [sum] = await evaluateCommand({ data: dataFile, protocol: 'surprise', algo: 'sgd', params: { factors: 4, epochs: 5 }, threads: 1, report: evalDir });
    const e = readReport(evalDir);
    expect(e.command).toBe('evaluate');
    const rmse = e.evaluation!.rows.find((x) => x.metric === 'rmse')!;
    expect(rmse.value).toBe(sum.metrics.rmse);
    expect(rmse.std).toBe(sum.std.rmse);
    expect(rmse.anchors).toContainEqual({ model: 'Surprise SVD', value: 0.934 });
    // Generated data is not MovieLens 100K: the anchors are shown but flagged as not comparable.
    expect(e.evaluation!.anchors_comparable).toBe(false);
    expect(e.evaluation!.folds).toHaveLength(5);
    expect(e.headline).toMatchObject({ algo: 'sgd', protocol: 'kfold5', rmse: round(sum.metrics.rmse) });

    const tuneDir = path.join(dir, 'tuned');
    const { result, report } = await tuneCommand({ data: dataFile, algo: 'sgd', valid, trials: 3, seed: 1, fixed: { factors: 4 }, maxIterations: 6, threads: 1, log: path.join(dir, 'tune.jsonl'), out: tuneDir });
    expect(report?.html).toBe(path.join(tuneDir, 'report.html'));
    const t = readReport(tuneDir);
    expect(t.tune!.trials.map((x) => x.value)).toEqual(result.trials.map((x) => x.value));
    expect(t.tune!.best).toMatchObject({ trial: result.best.trial, value: result.best.value });
    expect(t.model?.items).toBe(written.items);
    expect(t.epochs).toHaveLength(Number(result.best.params.epochs));
  });
});

it('report.html escapes every special character', () => {
  expect(esc(`<a href="x" onclick='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) console.warn(`[report.test] SKIPPED the browser part: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH); CI runs it.`);

describe.skipIf(!haveChromium && !process.env.CI)('report.html in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless', '--disable-gpu'], timeout: 30_000 });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens a report, recording every request and error; only the file itself may be fetched. */
  async function open(file: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
    const page = await browser.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    const res = await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    expect(res?.ok()).toBe(true);
    return { page, requests, errors };
  }

  it('renders the train report: loss and ranking charts with one point per epoch, the histogram, escaped strings, nothing fetched', async () => {
    const out = path.join(dir, 'html');
    const hostile = '<img src=x onerror="document.title=1">';
    await trainCommand({ data: dataFile, out, algo: 'sgd', params: { factors: 4, epochs: EPOCHS }, valid, refit: true, name: hostile });
    const r = readReport(out);
    const { page, requests, errors } = await open(path.join(out, 'report.html'));
    expect(requests).toEqual([pathToFileURL(path.join(out, 'report.html')).href]);
    expect(errors).toEqual([]);
    expect(await page.title()).toBe('recserve train report — sgd');
    expect(await page.locator('h1').innerText()).toContain(hostile);
    expect(await page.locator('img').count()).toBe(0);

    const loss = page.locator('svg#chart-loss');
    expect(await loss.isVisible()).toBe(true);
    for (const series of ['train train_rmse', 'validation rmse', 'validation mae']) {
      expect(await loss.locator(`path[data-series="${series}"]`).count(), series).toBe(1);
      expect(await loss.locator(`circle[data-series="${series}"]`).count(), series).toBe(EPOCHS);
    }
    expect(await loss.locator('circle[data-series="refit train_rmse"]').count()).toBe(r.refit!.epochs.length);
    const ranking = page.locator('svg#chart-ranking');
    expect(await ranking.locator('circle[data-series="validation ndcg@10"]').count()).toBe(EPOCHS);
    expect(await ranking.locator('circle[data-series="validation recall@10"]').count()).toBe(EPOCHS);
    expect(await page.locator('svg#chart-histogram rect.bar').count()).toBe(r.data!.histogram.length);
    // The charts have a real size on the page, and the epoch table one row per epoch.
    const box = await loss.boundingBox();
    expect(box!.width).toBeGreaterThan(300);
    expect(await page.locator('table.epochs tbody tr').count()).toBe(EPOCHS);
    expect(await page.locator('#refit').innerText()).toContain(`epochs = ${r.refit!.iterations}`);
    await page.close();
  });

  it('renders the tune report with one point per trial and the evaluate report with its anchors', async () => {
    const t = readReport(path.join(dir, 'tuned'));
    const tune = await open(path.join(dir, 'tuned', 'report.html'));
    expect(tune.requests).toHaveLength(1);
    expect(await tune.page.locator(`svg#chart-trials circle[data-series="${t.tune!.objective}"]`).count()).toBe(t.tune!.trials.length);
    expect(await tune.page.locator('svg#chart-trials circle[data-series="best"]').count()).toBe(1);
    await tune.page.close();

    const ev = await open(path.join(dir, 'eval', 'report.html'));
    expect(ev.requests).toHaveLength(1);
    const metrics = await ev.page.locator('table.metrics').innerText();
    expect(metrics).toContain('Surprise SVD 0.934');
    expect(await ev.page.locator('#evaluation').innerText()).toContain('does not look like MovieLens 100K');
    await ev.page.close();
  });

});
