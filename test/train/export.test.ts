// Export → load back with onnxruntime-node → scores match the in-memory model.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { ModelRegistry } from '../../src/model/registry.js';
import { inProcessScorer } from '../../src/model/pool/factory.js';
import { writeArtifact } from '../../src/model-format/export-onnx.js';
import { readFactorTable } from '../../src/train/factor-tables.js';
import { counts, inputOf, predictRaw, toFactorModel } from '../../src/train/model.js';
import { exportCommand } from '../../src/train/pipeline.js';
import { fit } from '../../src/train/trainers.js';
import { factorScore, verifyArtifact } from '../../src/train/verify.js';
import { plantedClicks, plantedRatings, tempDir } from './helpers.js';

const dir = tempDir('recserve-export-');
const registries: ModelRegistry[] = [];
afterAll(async () => {
  for (const r of registries) await r.close();
});

describe('trained model → model.onnx → onnxruntime', () => {
  const { data } = plantedRatings({ users: 60, items: 50 });
  const input = inputOf(data);

  for (const [algo, params] of [
    ['sgd', { factors: 6, epochs: 5, seed: 1 }],
    ['bayes', { factors: 3, burnIn: 3, samples: 6, thin: 2, seed: 1 }],
  ] as const) {
    it(`${algo}: every sampled score matches the in-memory model to 1e-4`, async () => {
      const { model } = fit(algo, input, params, undefined, [1, 5]);
      const c = toFactorModel(model, data.userIds.ids, data.itemIds.ids, counts(model.nUsers, input.users), counts(model.nItems, input.items));
      const out = path.join(dir, algo);
      await writeArtifact(out, c.model, { popularity: counts(model.nItems, input.items) });
      const report = await verifyArtifact(out, c.model, { users: 60, itemsPerUser: 50 });
      expect(report.idsMatch).toBe(true);
      expect(report.pairs).toBe(60 * 50);
      expect(report.maxAbsDiff).toBeLessThan(1e-4);
      expect(report.ok).toBe(true);
      // and the compacted model scores like the index-space one it came from
      expect(factorScore(c.model, 3, 7)).toBeCloseTo(predictRaw(model, c.userRows[3], c.itemRows[7]), 5);
    });
  }

  it('the registry serves the same top-k as the in-memory model, seen items excluded', async () => {
    const clicks = plantedClicks({ users: 40, items: 30 });
    const cin = inputOf(clicks);
    const { model } = fit('wals', cin, { factors: 4, epochs: 5, reg: 0.1, alpha: 5, seed: 1 });
    const c = toFactorModel(model, clicks.userIds.ids, clicks.itemIds.ids, counts(model.nUsers, cin.users), counts(model.nItems, cin.items));
    const seen: number[][] = Array.from({ length: c.model.userIds.length }, () => []);
    for (let k = 0; k < cin.users.length; k++) seen[cin.users[k]].push(cin.items[k]);
    const out = path.join(dir, 'wals');
    await writeArtifact(out, c.model, { seen: seen.map((s) => Int32Array.from(s).sort()) });
    const registry = new ModelRegistry(inProcessScorer);
    registries.push(registry);
    const rec = await registry.load(out);
    const [served] = await rec.recommend({ users: ['user-5'], k: 5, excludeSeen: true, filter: null });
    const u = clicks.userIds.get('user-5')!;
    const seenSet = new Set(seen[u]);
    const expected = Array.from({ length: model.nItems }, (_, i) => i)
      .filter((i) => !seenSet.has(i))
      .sort((a, b) => predictRaw(model, u, b) - predictRaw(model, u, a))
      .slice(0, 5)
      .map((i) => clicks.itemIds.ids[i]);
    expect(served.items.map((x) => x.itemId)).toEqual(expected);
  });
});

describe('export from factor tables (Spark MLlib ALS output)', () => {
  const users = ['10', '11', '12'];
  const items = ['a', 'b', 'c', 'd'];
  const d = 3;
  const uf = users.map((_, j) => Array.from({ length: d }, (_, f) => Math.sin(j * 3 + f)));
  const itf = items.map((_, j) => Array.from({ length: d }, (_, f) => Math.cos(j * 5 + f)));

  it('reads JSON-lines part files and CSV "[…]" vectors into a model that scores like the tables', async () => {
    const ufDir = path.join(dir, 'userFactors');
    mkdirSync(ufDir, { recursive: true });
    writeFileSync(path.join(ufDir, 'part-00000-x.json'), users.slice(0, 2).map((id, j) => JSON.stringify({ id: Number(id), features: uf[j] })).join('\n') + '\n');
    writeFileSync(path.join(ufDir, 'part-00001-x.json'), JSON.stringify({ id: 12, features: uf[2] }) + '\n');
    writeFileSync(path.join(ufDir, '_SUCCESS'), '');
    const itFile = path.join(dir, 'itemFactors.csv');
    writeFileSync(itFile, 'id,features\n' + items.map((id, j) => `${id},"[${itf[j].join(', ')}]"`).join('\n') + '\n');
    const interactions = path.join(dir, 'train.csv');
    writeFileSync(interactions, 'user,item\n10,a\n10,b\n11,c\n');
    const out = path.join(dir, 'spark');
    const s = await exportCommand({ userFactors: ufDir, itemFactors: itFile, kind: 'implicit', interactions, out });
    expect(s.verify?.ok).toBe(true);
    const a = await loadArtifact(out);
    expect(a.userIds).toEqual(users);
    expect(a.itemIds).toEqual(items);
    expect(Array.from(a.popularity)).toEqual([1, 1, 1, 0]);
    expect(a.seen?.map((x) => Array.from(x))).toEqual([[0, 1], [2], []]);
    const registry = new ModelRegistry(inProcessScorer);
    registries.push(registry);
    const rec = await registry.load(out);
    const got = await rec.scorer.scorePairs(Int32Array.of(0, 1, 2, 2), Int32Array.of(3, 0, 1, 2));
    [[0, 3], [1, 0], [2, 1], [2, 2]].forEach(([u, i], r) => {
      const want = uf[u].reduce((acc, x, f) => acc + x * itf[i][f], 0);
      expect(Math.abs(got[r] - want)).toBeLessThan(1e-5);
    });
  });

  it('reads plain numeric CSV and per-row biases', async () => {
    const p = path.join(dir, 'plain.csv');
    writeFileSync(p, '1,0.5,0.25\n2,1,2\n');
    const t = await readFactorTable(p);
    expect(t.ids).toEqual(['1', '2']);
    expect(t.factors).toBe(2);
    expect(Array.from(t.values)).toEqual([0.5, 0.25, 1, 2]);
    const j = path.join(dir, 'bias.jsonl');
    writeFileSync(j, '{"id":"x","features":[1,2],"bias":0.5}\n{"id":"y","features":[3,4],"bias":-1}\n');
    expect(Array.from((await readFactorTable(j)).bias!)).toEqual([0.5, -1]);
  });

  it('names the file and line of a bad row', async () => {
    const p = path.join(dir, 'bad.jsonl');
    writeFileSync(p, '{"id":1,"features":[1,2]}\n{"id":2,"features":[1]}\n');
    await expect(readFactorTable(p)).rejects.toThrow(`${p}:2: 1 factors, earlier rows have 2`);
    const q = path.join(dir, 'bad.csv');
    writeFileSync(q, 'id,features\n1,"[1,2]"\n2,"[1,x]"\n');
    await expect(readFactorTable(q)).rejects.toThrow(`${q}:3: "x" in the feature vector is not a number`);
    const r = path.join(dir, 'dup.jsonl');
    writeFileSync(r, '{"id":1,"features":[1]}\n{"id":1,"features":[2]}\n');
    await expect(readFactorTable(r)).rejects.toThrow(`${r}:2: id "1" appears twice`);
  });
});
