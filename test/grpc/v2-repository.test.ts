// What Seldon Core 2's agent does to a server, over a real gRPC socket with a client generated only from
// the V2 proto: the server starts with a models root and no model; the agent calls ServerLive, lists the
// repository and unloads whatever is READY or LOADING, then loads `<model>_<version>` names and infers
// right after the load returns (it polls nothing), unloads, and reloads on NOT_FOUND. Model folders are
// written by the project's own exporter; one is broken. Feedback state follows the base name across a
// `movies_1` → `movies_2` rename.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo, DEMO, ensureDemoModel } from '../../src/model-format/demo.js';
import { writeArtifact } from '../../src/model-format/export-onnx.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';
import { call, healthOf, idInput, inferRows, params, tryCall, v2Client, V2_SERVICE } from './v2-client.js';

let root: string;
let ts: TestServer;
let c: grpc.Client;

const catalog = buildDemo().extras.catalog;
const comedies = catalog.map((it, i) => [String(i + 1), it.genre] as const).filter(([, g]) => g === 'Comedy').map(([id]) => id);

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'recserve-sc2-'));
  // As the agent lays them out: <root>/<model>_<version>/1/…
  await ensureDemoModel(path.join(root, 'movies_1', '1'));
  await ensureDemoModel(path.join(root, 'movies_2', '1'));
  // A second, different model: the demo with every user's taste turned around.
  const { model, extras } = buildDemo();
  await writeArtifact(path.join(root, 'books_1', '1'), { ...model, userFactors: model.userFactors.map((x) => -x) }, { ...extras, name: 'demo-books', version: 'books-1' });
  mkdirSync(path.join(root, 'broken_1', '1'), { recursive: true });
  writeFileSync(path.join(root, 'broken_1', '1', 'model.onnx'), 'not an ONNX graph');
  ts = await startTestServer({ RECSERVE_MODELS_ROOT: root, RECSERVE_DEMO: 'false' });
  c = v2Client(`127.0.0.1:${ts.server.ports.grpc}`);
});
afterAll(async () => {
  c?.close();
  await ts?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const inferOn = (model: string, users: string[], extra: Record<string, unknown> = {}) => tryCall(c, 'ModelInfer', { model_name: model, parameters: params({ k: 5 }), inputs: [idInput('user_id', users)], ...extra });
const index = async () => ((await call(c, 'RepositoryIndex', {})).models ?? []) as { name: string; version?: string; state: string; reason?: string }[];

describe("Seldon Core 2's agent sequence", () => {
  it('start-up: live, nothing READY in the index (no demo model), every folder listed as loadable', async () => {
    expect(await call(c, 'ServerLive', {})).toEqual({ live: true });
    const models = await index();
    expect(models.map((m) => m.name)).toEqual(['books_1', 'broken_1', 'movies_1', 'movies_2']);
    // The agent unloads what is READY or LOADING; a server started for it has nothing there.
    const toUnload = models.filter((m) => m.state === 'READY' || m.state === 'LOADING');
    expect(toUnload).toEqual([]);
    for (const m of models) expect(m).toMatchObject({ state: 'UNAVAILABLE', reason: 'not loaded' });
    expect((await inferOn('movies_1', ['1'])).codeName).toBe('NOT_FOUND');
  });

  it('load → infer at once → unload → NOT_FOUND → load again → infer', async () => {
    expect(await call(c, 'RepositoryModelLoad', { model_name: 'movies_1' })).toEqual({});
    // No ModelReady poll: the agent trusts the load to return once the model serves.
    const first = await inferOn('movies_1', ['1', '2']);
    expect(first.ok, JSON.stringify(first)).toBe(true);
    if (!first.ok) return;
    expect(first.response).toMatchObject({ model_name: 'movies_1', model_version: DEMO.version });
    expect(inferRows(first.response).map((r) => r.strategy)).toEqual(['personalized', 'personalized']);
    expect((await call(c, 'ModelReady', { name: 'movies_1' })).ready).toBe(true);
    expect(await index()).toContainEqual({ name: 'movies_1', version: DEMO.version, state: 'READY' });

    expect(await call(c, 'RepositoryModelUnload', { model_name: 'movies_1' })).toEqual({});
    const gone = await inferOn('movies_1', ['1', '2']);
    expect(gone).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });
    expect(await tryCall(c, 'RepositoryModelUnload', { model_name: 'movies_1' })).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });

    // The agent's answer to NOT_FOUND: load, then retry.
    expect(await call(c, 'RepositoryModelLoad', { model_name: 'movies_1' })).toEqual({});
    const again = await inferOn('movies_1', ['1', '2']);
    expect(again.ok && inferRows(again.response)).toEqual(inferRows(first.response));
  });

  it('two models served at once, each its own answers', async () => {
    expect(await call(c, 'RepositoryModelLoad', { model_name: 'books_1' })).toEqual({});
    const [movies, books] = await Promise.all([inferOn('movies_1', ['7']), inferOn('books_1', ['7'])]);
    expect(movies.ok && books.ok).toBe(true);
    if (!movies.ok || !books.ok) return;
    expect(books.response).toMatchObject({ model_name: 'books_1', model_version: 'books-1' });
    expect(inferRows(books.response)[0].items).not.toEqual(inferRows(movies.response)[0].items);
    const ready = (await call(c, 'RepositoryIndex', { ready: true })).models.map((m: { name: string }) => m.name);
    expect(ready).toEqual(['books_1', 'movies_1']);
    expect((await call(c, 'ServerReady', {})).ready).toBe(true);
    expect(await healthOf(`127.0.0.1:${ts.server.ports.grpc}`, V2_SERVICE, 'SERVING')).toBe('SERVING');
  });

  it('a broken model folder is refused with INVALID_ARGUMENT, and the others keep serving', async () => {
    const r = await tryCall(c, 'RepositoryModelLoad', { model_name: 'broken_1' });
    expect(r).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT' });
    const broken = (await index()).find((m) => m.name === 'broken_1');
    expect(broken).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/^load failed/) });
    expect((await inferOn('broken_1', ['1'])).codeName).toBe('NOT_FOUND');
    for (const m of ['movies_1', 'books_1']) expect((await inferOn(m, ['1'])).ok, m).toBe(true);
  });

  it('feedback state follows the base name: learnt on movies_1, there on movies_2', async () => {
    const before = await inferOn('movies_1', ['sc2-newcomer'], { id: 'sc2-fb-1', parameters: params({ k: 10 }) });
    expect(before.ok && inferRows(before.response)[0].strategy).toBe('cold_start');
    const fb = await postJson(`${ts.url}/v2/models/movies_1/feedback`, { id: 'sc2-fb-1', reward: 1, truth: comedies.slice(0, 3) });
    expect(fb.status, JSON.stringify(fb.body)).toBe(200);
    expect(fb.body.parameters.folded_in_users).toEqual(['sc2-newcomer']);
    const learnt = await inferOn('movies_1', ['sc2-newcomer'], { parameters: params({ k: 10 }) });
    expect(learnt.ok && inferRows(learnt.response)[0].strategy).toBe('personalized');

    // The Model is edited: the agent loads movies_2, then unloads movies_1.
    expect(await call(c, 'RepositoryModelLoad', { model_name: 'movies_2' })).toEqual({});
    expect(await call(c, 'RepositoryModelUnload', { model_name: 'movies_1' })).toEqual({});
    const renamed = await inferOn('movies_2', ['sc2-newcomer'], { parameters: params({ k: 10 }) });
    expect(renamed.ok, JSON.stringify(renamed)).toBe(true);
    if (!renamed.ok || !learnt.ok) return;
    expect(renamed.response.model_name).toBe('movies_2');
    expect(inferRows(renamed.response)).toEqual(inferRows(learnt.response));
  });
});
