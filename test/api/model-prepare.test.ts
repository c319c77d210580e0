// Whole-catalog work is done before a model version serves, not by its first requests: the similarity
// unit vectors, the catalog summary of the metadata answers and the fold-in's item Gram (implicit
// models) are built by the time the server is up, so the first similar-items, session and metadata
// requests over real HTTP build nothing. Against the demo model (explicit) and an implicit WALS model
// trained here.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../../src/train/pipeline.js';
import { postJson, requestJson } from '../helpers/server.js';
import { plantedRatings, tempDir } from '../train/helpers.js';
import { closeAll, serve, type Served } from './transports.js';

const servers: Served[] = [];
let demo: Served;
let implicit: Served;

beforeAll(async () => {
  demo = await serve(servers, {}, null);
  const dir = tempDir('recserve-prepare-');
  const { data } = plantedRatings({ users: 60, items: 50, density: 0.3, seed: 11 });
  const events = path.join(dir, 'events.csv'); // no rating column: an implicit model
  writeFileSync(events, 'userId,movieId\n' + Array.from(data.users, (u, n) => `${data.userIds.ids[u]},${data.itemIds.ids[data.items[n]]}`).join('\n') + '\n');
  const movies = path.join(dir, 'movies.csv');
  writeFileSync(movies, 'movieId,title,genres\n' + data.itemIds.ids.map((id, i) => `${id},Film ${i},${['Comedy', 'Drama'][i % 2]}`).join('\n') + '\n');
  const out = path.join(dir, 'model');
  await trainCommand({ data: events, items: { file: movies }, out, algo: 'wals', params: { factors: 4, epochs: 4 } });
  implicit = await serve(servers, { MODEL_PATH: out }, out);
}, 60_000);

afterAll(() => closeAll(servers));

describe('a model version', () => {
  it('is prepared before it serves: the first similar, session and metadata requests build nothing', async () => {
    for (const s of [demo, implicit]) {
      const model = s.ts.server.registry.current!;
      expect(model.session, 'fold-in is on').not.toBeNull();
      expect(model.prepared, s.model).toEqual({ similarity: true, catalogSummary: true, session: true });
      const item = s.artifact.itemIds[3];
      expect((await postJson(`${s.ts.url}/api/v1.0/predictions`, { jsonData: { similar_to: item, k: 3 } })).status).toBe(200);
      expect((await postJson(`${s.ts.url}/api/v1.0/predictions`, { jsonData: { items: [item], k: 3 } })).status).toBe(200);
      expect((await requestJson('GET', `${s.ts.url}/api/v1.0/metadata`)).status).toBe(200);
    }
    expect(implicit.artifact.ratingRange, 'the implicit model shares an item Gram across solves').toBeNull();
  });
});
