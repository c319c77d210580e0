// Signature discovery from the graph alone, and the loader's errors for models it cannot serve.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadArtifact } from '../../src/model-format/artifact.js';
import { DataType, decodeModel, encodeModel, tensorValue, type OnnxModel } from '../../src/model-format/onnx-format.js';
import { discoverSignature } from '../../src/model/signature.js';
import { buildDemo } from '../../src/model-format/demo.js';
import { buildOnnxModel, writeArtifact } from '../../src/model-format/export-onnx.js';

const bare = (inputs: OnnxModel['graph']['input'], outputs: OnnxModel['graph']['output']): OnnxModel => ({
  irVersion: 8,
  opsetImport: [{ domain: '', version: 17 }],
  graph: { name: 'g', node: [], initializer: [], input: inputs, output: outputs },
});

describe('discoverSignature', () => {
  it('recognises the exporter’s catalog scorer', () => {
    const { model, extras } = buildDemo();
    const sig = discoverSignature(decodeModel(encodeModel(buildOnnxModel(model, extras))));
    expect(sig).toEqual({ kind: 'catalog', userInput: 'user', output: 'scores', catalogSize: 120 });
  });

  it('tells user from item by name in a pair scorer, whatever the order', () => {
    const m = bare(
      [tensorValue('movie_idx', DataType.INT64, ['N']), tensorValue('user_idx', DataType.INT64, ['N'])],
      [tensorValue('rating', DataType.FLOAT, ['N'])],
    );
    expect(discoverSignature(m)).toEqual({ kind: 'pair', userInput: 'user_idx', itemInput: 'movie_idx', output: 'rating' });
  });

  it('recognises fastai’s packed [N, 2] input', () => {
    const m = bare([tensorValue('x', DataType.INT64, ['N', 2])], [tensorValue('out', DataType.FLOAT, ['N'])]);
    expect(discoverSignature(m).kind).toBe('packed');
  });

  it('model-settings.json overrides win, and a wrong name is reported with the graph’s names', () => {
    const m = bare(
      [tensorValue('a', DataType.INT64, ['N']), tensorValue('b', DataType.INT64, ['N'])],
      [tensorValue('s', DataType.FLOAT, ['N'])],
    );
    expect(discoverSignature(m, { user_input: 'b', item_input: 'a' })).toMatchObject({ userInput: 'b', itemInput: 'a' });
    expect(() => discoverSignature(m, { user_input: 'nope' })).toThrow(/names user_input "nope".*inputs a\["N"\]:int64, b/);
  });

  it('refuses a graph it cannot interpret, saying what it saw', () => {
    const m = bare([tensorValue('img', DataType.FLOAT, ['N', 3])], [tensorValue('y', DataType.FLOAT, ['N'])]);
    expect(() => discoverSignature(m)).toThrow(/cannot tell whether.*img\["N",3\]:float32/);
  });
});

describe('loadArtifact', () => {
  it('reads ids, catalog, popularity, seen items and factors back from one file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-art-'));
    const { model, extras } = buildDemo();
    await writeArtifact(dir, model, extras);
    const a = await loadArtifact(dir);
    expect(a.userIds).toEqual(model.userIds);
    expect(a.itemIds).toEqual(model.itemIds);
    expect(a.catalog?.[0]).toEqual(extras.catalog[0]);
    expect(Array.from(a.popularity)).toEqual(Array.from(extras.popularity));
    expect(Array.from(a.seen![0])).toEqual(extras.seen[0]);
    expect(Array.from(a.factors!.itemFactors)).toEqual(Array.from(model.itemFactors));
    expect(a.factors!.globalBias).toBeCloseTo(2.9, 6);
    expect(a.ratingRange).toEqual([1, 5]);
  });

  it('sidecar users.csv / items.csv give ids and catalog fields to a bare export', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-art-'));
    const fixture = path.resolve(import.meta.dirname, '../fixtures/torch/edb_pair/model.onnx');
    const { copyFileSync } = await import('node:fs');
    copyFileSync(fixture, path.join(dir, 'model.onnx'));
    writeFileSync(path.join(dir, 'users.csv'), 'user_id\n' + Array.from({ length: 12 }, (_, i) => `u${i}`).join('\n') + '\n');
    writeFileSync(path.join(dir, 'items.csv'), 'item_id,title\n' + Array.from({ length: 20 }, (_, i) => `m${i},"Movie, number ${i}"`).join('\n') + '\n');
    writeFileSync(path.join(dir, 'model-settings.json'), JSON.stringify({ name: 'edb', version: '7' }));
    const a = await loadArtifact(dir);
    expect(a.userIds[3]).toBe('u3');
    expect(a.itemIds[19]).toBe('m19');
    expect(a.catalog?.[2]).toEqual({ title: 'Movie, number 2' });
    expect([a.name, a.version]).toEqual(['edb', '7']);
  });

  it('says what is wrong with a missing or corrupt model', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-art-'));
    await expect(loadArtifact(dir)).rejects.toThrow(/no model.onnx in/);
    writeFileSync(path.join(dir, 'model.onnx'), Buffer.from('this is not protobuf at all, no sir'));
    await expect(loadArtifact(dir)).rejects.toThrow(/not a readable ONNX model|has no graph/);
  });
});
