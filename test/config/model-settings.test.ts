// model-settings.json through the real loader: recserve's and MLServer's keys honoured, unknown keys
// warned once per load, values of the wrong type refusing the model.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { buildDemo } from '../../src/model-format/demo.js';
import { writeArtifact } from '../../src/model-format/export-onnx.js';

let model: string;

beforeAll(async () => {
  model = mkdtempSync(path.join(os.tmpdir(), 'recserve-settings-'));
  const { model: m, extras } = buildDemo();
  await writeArtifact(model, m, extras);
});

/** A model directory holding the demo model and this model-settings.json text. */
function withSettings(text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-settings-'));
  copyFileSync(path.join(model, 'model.onnx'), path.join(dir, 'model.onnx'));
  writeFileSync(path.join(dir, 'model-settings.json'), text);
  return dir;
}

const load = (settings: object) => loadArtifact(withSettings(JSON.stringify(settings)));

describe('model-settings.json', () => {
  it('without the file: nothing overridden, no warnings', async () => {
    const a = await loadArtifact(model);
    expect(a.version).toBe('demo-1');
    expect(a.settings).toEqual({ batching: {}, warnings: [] });
  });

  it("honours the Seldon Core 2 agent's MLServer layout: name, parameters.version, implementation", async () => {
    const a = await load({ name: 'movielens_12', implementation: 'recserve', parameters: { version: '1' } });
    expect([a.name, a.version]).toEqual(['movielens_12', '1']);
    expect(a.settings.warnings).toEqual([]);
  });

  it('a numeric version is the same version as text', async () => {
    expect((await load({ parameters: { version: 3 } })).version).toBe('3');
    expect((await load({ version: 4 })).version).toBe('4');
  });

  it('max_batch_size and max_batch_time (seconds) become the batcher settings of this model', async () => {
    const a = await load({ max_batch_size: 16, max_batch_time: 0.005 });
    expect(a.settings.batching).toEqual({ maxBatchSize: 16, maxBatchDelayMs: 5 });
  });

  it('names each ignored key once, with the reason or the recserve setting that replaces it', async () => {
    const a = await load({
      name: 'm',
      implementation: 'mlserver_sklearn.SKLearnModel',
      parallel_workers: 2,
      max_batch_delay: 5,
      defaults: { k: 5 },
      parameters: { uri: './model.onnx', version: '2' },
      signature: { kind: 'catalog', user_inptu: 'user' },
      n_itmes: 120,
    });
    const w = a.settings.warnings.map((line) => line.slice(line.indexOf(': ') + 2));
    expect(w).toHaveLength(7);
    expect(w).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^parallel_workers is ignored: .*RECSERVE_WORKERS/),
        expect.stringMatching(/^max_batch_delay is ignored: did you mean max_batch_time/),
        expect.stringMatching(/^defaults is ignored: .*PREDICTIVE_UNIT_PARAMETERS/),
        expect.stringMatching(/^parameters\.uri is ignored: .*model\.onnx/),
        expect.stringMatching(/^signature\.user_inptu is ignored: .*a typo/),
        expect.stringMatching(/^n_itmes is ignored: .*a typo/),
        expect.stringMatching(/^implementation "mlserver_sklearn.SKLearnModel" is not "recserve"/),
      ]),
    );
    expect(a.version).toBe('2');
    expect(a.settings.warnings[0]).toContain('model-settings.json');
  });

  it('parameters.rules and parameters.pins become the model defaults (pins by item id)', async () => {
    const rules = [
      { field: 'genre', value: 'comedy', multiply: 1.5 },
      { field: 'year', value: { gte: 1990, lt: 2000 }, add: -0.25 },
      { field: 'genre', value: ['Drama', 'Noir'], multiply: 0, add: 1 },
    ];
    const a = await load({ parameters: { version: '7', rules, pins: [{ item_id: '18', position: 1 }, { item_id: 35, position: 3 }] } });
    expect(a.settings.rules).toEqual(rules);
    expect(a.settings.pins).toEqual([
      { itemId: '18', position: 1 },
      { itemId: '35', position: 3 },
    ]);
    expect(a.settings.warnings).toEqual([]);
    expect(a.version).toBe('7');
  });

  it.each([
    [{ parameters: { rules: [{ field: 'genre', value: 'comedy' }] } }, /parameters\.rules\[0\] needs multiply or add/],
    [{ parameters: { rules: [{ field: 'genre', value: 'comedy', multiply: 101 }] } }, /\/parameters\/rules\/0\/multiply must be <= 100/],
    [{ parameters: { rules: [{ field: 'genre', value: 'comedy', add: -2e6 }] } }, /\/parameters\/rules\/0\/add must be >= -1000000/],
    [{ parameters: { rules: [{ field: 'year', value: { gtee: 1990 }, add: 1 }] } }, /\/parameters\/rules\/0\/value must NOT have additional properties \("gtee"\)/],
    [{ parameters: { rules: [{ field: 'year', value: { gte: '1990' }, add: 1 }] } }, /\/parameters\/rules\/0\/value\/gte must be number/],
    [{ parameters: { rules: [{ field: 'genre', value: 'x', add: 1, boost: 2 }] } }, /\/parameters\/rules\/0 must NOT have additional properties \("boost"\)/],
    [{ parameters: { rules: Array.from({ length: 33 }, () => ({ field: 'genre', value: 'x', add: 1 })) } }, /\/parameters\/rules must NOT have more than 32 items/],
    [{ parameters: { pins: [{ item_id: '18', position: 0 }] } }, /\/parameters\/pins\/0\/position must be >= 1/],
    [{ parameters: { pins: [{ item_id: '18' }] } }, /\/parameters\/pins\/0 must have required property 'position'/],
    [{ parameters: { pins: [{ item_id: '18', position: 1 }, { item_id: 18, position: 2 }] } }, /parameters\.pins names item_id "18" twice/],
    [{ parameters: { pins: [{ item_id: '18', position: 2 }, { item_id: '19', position: 2 }] } }, /parameters\.pins names position 2 twice/],
  ])('refuses the rules or pins %j, naming the file', async (settings, message) => {
    await expect(load(settings)).rejects.toThrow(message);
    await expect(load(settings)).rejects.toThrow(/model-settings\.json/);
  });

  it.each([
    [{ n_users: 'many' }, /\/n_users must be integer/],
    [{ max_batch_size: 0 }, /\/max_batch_size must be >= 1/],
    [{ max_batch_time: -1 }, /\/max_batch_time must be >= 0/],
    [{ signature: { kind: 'ranking' } }, /\/signature\/kind must be equal to one of the allowed values/],
    [{ rating_range: [5, 1] }, /rating_range must be \[low, high\] with low < high/],
    [{ rating_range: [1] }, /\/rating_range must NOT have fewer than 2 items/],
    [{ version: '1', parameters: { version: '2' } }, /"version" is "1" but "parameters.version" is "2"/],
    [[1, 2], /the file must be object/],
  ])('refuses %j', async (settings, message) => {
    await expect(load(settings)).rejects.toThrow(message);
  });

  it('refuses text that is not JSON', async () => {
    await expect(loadArtifact(withSettings('{name: m}'))).rejects.toThrow(/model-settings.json is not valid JSON/);
  });
});
