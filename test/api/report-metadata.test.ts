// The training report's headline numbers reach the served model's metadata: Seldon v1 `custom.report_*`
// and V2 `parameters.report_*`, over real HTTP, for a model trained here with --valid.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../../src/train/pipeline.js';
import type { Report } from '../../src/train/report.js';
import { requestJson, startTestServer, type TestServer } from '../helpers/server.js';
import { plantedRatings, tempDir, writeRatingsCsv } from '../train/helpers.js';

describe('training report headline in metadata', () => {
  const dir = tempDir('recserve-report-meta-');
  const out = path.join(dir, 'model');
  let srv: TestServer;
  let headline: Report['headline'];

  beforeAll(async () => {
    const data = path.join(dir, 'ratings.csv');
    writeRatingsCsv(data, plantedRatings({ users: 40, items: 30, density: 0.4 }).data, 5);
    await trainCommand({ data, out, name: 'reported', algo: 'sgd', params: { factors: 4, epochs: 3, lr: 0.01 }, valid: { kind: 'random', test: 0.2, seed: 1 } });
    headline = (JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report).headline;
    srv = await startTestServer({ MODEL_PATH: out, RECSERVE_DEMO: 'false' });
  }, 120_000);
  afterAll(() => srv?.stop());

  it('Seldon v1 metadata lists every headline number as custom.report_<name>', async () => {
    const { status, body: json } = await requestJson('GET', `${srv.url}/api/v1.0/metadata`);
    expect(status).toBe(200);
    expect(Object.keys(headline).length).toBeGreaterThan(3);
    for (const [k, v] of Object.entries(headline)) expect(json.custom[`report_${k}`], k).toBe(String(v));
  });

  it('V2 model metadata carries the same as parameters.report_<name>', async () => {
    const { status, body: json } = await requestJson('GET', `${srv.url}/v2/models/reported`);
    expect(status).toBe(200);
    expect(json.parameters.report_valid_rmse).toBe(String(headline.valid_rmse));
    expect(json.parameters.report_algo).toBe('sgd');
  });
});
