// Catalog discovery on a real server with the demo model: Seldon v1 metadata (custom.catalog_summary)
// and V2 model metadata (parameters.catalog_summary), over REST and gRPC, list the catalog's fields
// with their types, counts, values and ranges as computed here from the demo catalog itself; and the
// values it lists work as filters.
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo } from '../../src/model-format/demo.js';
import type { CatalogSummary } from '../../src/model/catalog-summary.js';
import { call, metadataFromProto, seldonClients, type SeldonClients } from '../helpers/grpc-client.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';
import { call as v2Call, v2Client } from '../grpc/v2-client.js';

const MODEL = 'demo-movies';
const catalog = buildDemo().extras.catalog as { title: string; genre: string; year: number }[];
let t: TestServer;
let seldon: SeldonClients;
let v2: grpc.Client;

beforeAll(async () => {
  t = await startTestServer();
  const address = `127.0.0.1:${t.server.ports.grpc}`;
  seldon = seldonClients(address);
  v2 = v2Client(address);
});
afterAll(async () => {
  seldon?.close();
  v2?.close();
  await t?.stop();
});

describe('catalog discovery in model metadata', () => {
  it('Seldon v1 REST: custom.catalog_summary describes genre, title and year of the demo catalog', async () => {
    const md = await (await fetch(`${t.url}/api/v1.0/metadata`)).json();
    expect(md.custom.catalog_fields).toBe('title,genre,year');
    const summary: CatalogSummary = JSON.parse(md.custom.catalog_summary);
    expect(summary.items).toBe(catalog.length);
    expect(summary.fields_truncated).toBe(false);
    const [genre, title, year] = summary.fields;
    const genres = [...new Set(catalog.map((c) => c.genre))].sort();
    // Every genre has 15 items: equally frequent, so listed alphabetically.
    expect(genre).toEqual({ field: 'genre', type: 'string', items: catalog.length, values: genres, distinct_count: genres.length, truncated: false });
    expect(title).toMatchObject({ field: 'title', type: 'string', items: catalog.length, distinct_count: new Set(catalog.map((c) => c.title)).size, truncated: true });
    expect(title.values).toHaveLength(50);
    for (const v of title.values!) expect(catalog.some((c) => c.title === v)).toBe(true);
    const years = catalog.map((c) => c.year);
    expect(year).toEqual({ field: 'year', type: 'number', items: catalog.length, min: Math.min(...years), max: Math.max(...years) });
  });

  it('the same summary over Seldon gRPC, V2 REST and V2 gRPC', async () => {
    const rest = (await (await fetch(`${t.url}/api/v1.0/metadata`)).json()).custom.catalog_summary;
    const grpcMd = metadataFromProto(await call(seldon.Model, 'Metadata', {}));
    expect(grpcMd.custom.catalog_summary).toBe(rest);
    const v2Rest = await (await fetch(`${t.url}/v2/models/${MODEL}`)).json();
    expect(v2Rest.parameters.catalog_summary).toBe(rest);
    const v2Grpc = await v2Call(v2, 'ModelMetadata', { name: MODEL });
    expect(v2Grpc.parameters.catalog_summary).toMatchObject({ parameter_choice: 'string_param', string_param: rest });
  });

  it('listed values and ranges work as filters', async () => {
    const summary: CatalogSummary = JSON.parse((await (await fetch(`${t.url}/api/v1.0/metadata`)).json()).custom.catalog_summary);
    const genre = summary.fields.find((f) => f.field === 'genre')!;
    for (const value of genre.values!) {
      const r = await postJson(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 3, filter: { genre: value } } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const items = r.body.jsonData.recommendations[0].items;
      expect(items.length).toBeGreaterThan(0);
      for (const it of items) expect(it.genre).toBe(value);
    }
    const year = summary.fields.find((f) => f.field === 'year')!;
    const all = await postJson(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 5, exclude_seen: false, filter: { year: { gte: year.min, lte: year.max } } } });
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect(all.body.jsonData.recommendations[0].items).toHaveLength(5);
    const none = await postJson(`${t.url}/api/v1.0/predictions`, { jsonData: { user_id: '1', k: 5, filter: { year: { gt: year.max } } } });
    expect(none.status, JSON.stringify(none.body)).toBe(200);
    expect(none.body.jsonData.recommendations[0].items).toEqual([]);
  });
});
