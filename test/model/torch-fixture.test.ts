// A model exported by PyTorch (fastai-style EmbeddingDotBias, test/fixtures/torch) loads with zero
// configuration and the server reproduces the scores torch computed, to 1e-5, over real HTTP.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/torch');
const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'expected_scores.json'), 'utf8')) as {
  n_users: number;
  n_items: number;
  pairs: [number, number, number][];
};

describe.each(['edb_pair', 'edb_fastai'])('PyTorch export %s', (name) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ MODEL_PATH: path.join(FIXTURES, name) });
  });
  afterAll(async () => t?.stop());

  it('discovers the signature and id space without configuration', async () => {
    const m = await (await fetch(`${t.url}/metadata`)).json();
    expect(m.custom.signature).toBe(name === 'edb_pair' ? 'pair' : 'packed');
    expect(m.custom.n_users).toBe(String(expected.n_users));
    expect(m.custom.n_items).toBe(String(expected.n_items));
  });

  it('reproduces every torch score to 1e-5', async () => {
    const r = await postJson(`${t.url}/api/v1.0/predictions`, {
      data: { names: ['user_id', 'item_id'], ndarray: expected.pairs.map(([u, i]) => [u, i]) },
    });
    expect(r.status).toBe(200);
    const got = r.body.data.ndarray.map((row: number[]) => row[0]);
    expect(got).toHaveLength(expected.pairs.length);
    let maxDiff = 0;
    expected.pairs.forEach(([, , s], j) => (maxDiff = Math.max(maxDiff, Math.abs(got[j] - s))));
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('ranks a user by scoring every item: top-k equals the best torch scores', async () => {
    const r = await postJson(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '3', k: 5 } });
    const items = r.body.jsonData.recommendations[0].items;
    const best = expected.pairs.filter(([u]) => u === 3).sort((a, b) => b[2] - a[2]).slice(0, 5);
    expect(items.map((i: any) => i.item_id)).toEqual(best.map(([, i]) => String(i)));
    items.forEach((it: any, j: number) => expect(Math.abs(it.score - best[j][2])).toBeLessThan(1e-5));
  });

  it('an index outside the embedding table is an unknown id, not a crash', async () => {
    const r = await postJson(`${t.url}/api/v1.0/predictions`, { data: { ndarray: [[0, expected.n_items]] } });
    expect(r.status).toBe(400);
    expect(r.body.status.info).toMatch(/unknown item_id "20"/);
  });
});
