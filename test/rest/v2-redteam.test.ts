// What the red-team review of V2 and the repository found, each as a request over real HTTP that must
// now get a clean answer: model files that are not regular files, folders that lead out of the models
// root, error bodies that leaked paths or other tenants' model names, a constant request id credited to
// whoever used it last, case-shifted V2 paths answered in Seldon's format, an empty id not echoed, and
// v1 numeric ids past 2^53.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoModel } from '../../src/model-format/demo.js';
import { postJson, requestJson, startTestServer, type TestServer } from '../helpers/server.js';

let root: string;
let outside: string;
let repo: TestServer;
let demo: TestServer;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'recserve-redteam-root-'));
  outside = mkdtempSync(path.join(os.tmpdir(), 'recserve-redteam-outside-'));
  await ensureDemoModel(path.join(root, 'movies_1', '1'));
  mkdirSync(path.join(root, 'zero_1'));
  symlinkSync('/dev/zero', path.join(root, 'zero_1', 'model.onnx'));
  await ensureDemoModel(outside);
  symlinkSync(outside, path.join(root, 'linked_1'));
  mkdirSync(path.join(root, 'broken_1'));
  writeFileSync(path.join(root, 'broken_1', 'model.onnx'), 'not an ONNX graph');
  [repo, demo] = await Promise.all([startTestServer({ RECSERVE_MODELS_ROOT: root, RECSERVE_DEMO: 'false' }), startTestServer()]);
});
afterAll(async () => {
  await Promise.all([repo?.stop(), demo?.stop()]);
  for (const d of [root, outside]) if (d) rmSync(d, { recursive: true, force: true });
});

const load = (name: string) => postJson(`${repo.url}/v2/repository/models/${name}/load`, {});
const infer = (base: string, body: unknown, prefix = '/v2') => postJson(`${base}${prefix}/models/demo-movies/infer`, body);
const users = (ids: string[]) => ({ name: 'user_id', datatype: 'BYTES', shape: [ids.length], data: ids });

describe('model folders a load must not trust', () => {
  it('a model.onnx that is a link to /dev/zero is refused at once, without reading it', async () => {
    const t0 = Date.now();
    const r = await load('zero_1');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/model\.onnx is not a regular file/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a folder that is a link out of the models root is refused', async () => {
    const r = await load('linked_1');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/leads outside the models root/);
  });

  it("a refused load names the model, not the server's paths, and the others keep serving", async () => {
    expect((await load('movies_1')).status).toBe(200);
    const r = await load('broken_1');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/^model broken_1 could not be loaded: /);
    expect(r.body.error).not.toContain(root);
    const index = await postJson(`${repo.url}/v2/repository/index`, {});
    expect(JSON.stringify(index.body)).not.toContain(root);
    expect((await postJson(`${repo.url}/v2/models/movies_1/infer`, { inputs: [users(['1'])] })).status).toBe(200);
  });

  it('an unknown model is a 404 that names no other model', async () => {
    const r = await postJson(`${repo.url}/v2/models/nope/infer`, { inputs: [users(['1'])] });
    expect(r.status).toBe(404);
    expect(r.body.error).toBe('model "nope" is not served here');
  });

  it('v1 on a server without a default model says so without its paths', async () => {
    const r = await postJson(`${repo.url}/api/v1.0/predictions`, { jsonData: { user_id: '1' } });
    expect(r.status).toBe(503);
    expect(r.body.status.info).toMatch(/no default model/);
    expect(r.body.status.info).not.toContain(root);
  });
});

describe('requests', () => {
  it('one id for two different predictions credits neither: feedback by that id learns nothing', async () => {
    const id = `constant-${Date.now()}`;
    expect((await infer(demo.url, { id, inputs: [users(['10'])] })).status).toBe(200);
    expect((await infer(demo.url, { id, inputs: [users(['attacker-visitor'])] })).status).toBe(200);
    const fb = await postJson(`${demo.url}/v2/models/demo-movies/feedback`, { id, truth: ['77'], reward: 1 });
    expect(fb.status).toBe(200);
    expect(JSON.stringify(fb.body)).toMatch(/named more than one recent prediction/);
  });

  it('a case-shifted /V2 path still answers errors as V2 does', async () => {
    const r = await requestJson('POST', `${demo.url}/V2/models/nope/infer`, { inputs: [users(['1'])] });
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ error: expect.any(String) });
  });

  it('an empty id is echoed as given', async () => {
    const r = await infer(demo.url, { id: '', inputs: [users(['10'])] });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe('');
  });

  it('v1 jsonData ids past 2^53 are refused, not rounded into another user', async () => {
    for (const body of [{ user_id: 9007199254740993 }, { users: [9007199254740993] }, { pairs: [[9007199254740993, '1']] }]) {
      const r = await postJson(`${demo.url}/api/v1.0/predictions`, { jsonData: body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.status.info).toMatch(/an id must be a non-empty string or a whole number/);
    }
  });
});
