// Helpers of the recommender API tests: one request in the jsonData shape on any of the four transports
// (Seldon v1 REST and gRPC, V2 REST and gRPC), read back into comparable lists, and real servers to send
// it to (the demo model or a model directory).
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadArtifact } from '../../src/model-format/artifact.js';
import type { Artifact } from '../../src/model-format/artifact.js';
import { messageFromProto, messageToProto, seldonClients, tryCall, type SeldonClients } from '../helpers/grpc-client.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';
import { idInput, params, v2Client } from '../grpc/v2-client.js';

export type Json = Record<string, unknown>;

export interface List {
  strategy: string;
  items: string[];
  /** As float32, so every transport compares equal. */
  scores: number[];
  because?: unknown[];
}
export type Answer = { ok: true; lists: List[]; nothing: { nothing_matched: boolean; filter_allowed: number } | null; raw: any } | { ok: false; kind: 'bad_data' | 'not_found' | string; message: string };

export interface Served {
  ts: TestServer;
  model: string;
  artifact: Artifact;
  seldon: SeldonClients;
  v2: grpc.Client;
}

export const TRANSPORTS = ['v1 REST', 'v1 gRPC', 'V2 REST', 'V2 gRPC'] as const;
export type Transport = (typeof TRANSPORTS)[number];

const kindOfHttp = (status: number) => (status === 404 ? 'not_found' : status === 400 ? 'bad_data' : `http ${status}`);
const kindOfGrpc = (code: number) => (code === 5 ? 'not_found' : code === 3 ? 'bad_data' : `grpc ${code}`);

function v1Lists(j: any): List[] {
  const lists = j.recommendations ?? [{ strategy: j.strategy, items: j.items }];
  return lists.map((l: any) => ({
    strategy: l.strategy,
    items: l.items.map((i: any) => i.item_id),
    scores: l.items.map((i: any) => Math.fround(i.score)),
    ...(l.items.some((i: any) => i.because !== undefined) ? { because: l.items.map((i: any) => i.because) } : {}),
  }));
}

/** V2 outputs (JSON data or gRPC typed contents, read by `values`) as lists. */
function v2Lists(outputs: any[], values: (o: any) => any[]): { lists: List[] } {
  const out = (name: string) => outputs.find((o) => o.name === name);
  const w = Number(out('item_id').shape[1]);
  const counts = values(out('count')).map(Number);
  const ids = values(out('item_id'));
  const scores = values(out('score'));
  const strategies = values(out('strategy'));
  const because = out('because') ? values(out('because')) : null;
  const lists = counts.map((n, r) => ({
    strategy: strategies[r],
    items: ids.slice(r * w, r * w + n),
    scores: scores.slice(r * w, r * w + n).map(Math.fround),
    ...(because ? { because: because.slice(r * w, r * w + n).map((t: string) => JSON.parse(t)) } : {}),
  }));
  return { lists };
}

/** One request, its options in the jsonData shape, on one transport. */
export async function ask(s: Served, transport: Transport, options: Json): Promise<Answer> {
  const { user_id, users, ...rest } = options;
  const userIds = (users as (string | number)[] | undefined) ?? (user_id !== undefined ? [user_id as string] : null);
  // Exploration slots are a meta tag in v1 (a parameter in V2, like the other options).
  const { explore, ...jsonData } = options;
  const v1 = explore === undefined ? { jsonData } : { jsonData, meta: { tags: { explore } } };
  switch (transport) {
    case 'v1 REST': {
      const r = await postJson(`${s.ts.url}/api/v1.0/predictions`, v1);
      if (r.status !== 200) return { ok: false, kind: kindOfHttp(r.status), message: r.body.status.info };
      const j = r.body.jsonData;
      return { ok: true, lists: v1Lists(j), nothing: j.nothing_matched ? { nothing_matched: j.nothing_matched, filter_allowed: j.filter_allowed } : null, raw: r.body };
    }
    case 'v1 gRPC': {
      const r = await tryCall(s.seldon.Model, 'Predict', messageToProto(v1));
      if (!r.ok) return { ok: false, kind: kindOfGrpc(r.code), message: r.details };
      const j = messageFromProto(r.response).jsonData;
      return { ok: true, lists: v1Lists(j), nothing: j.nothing_matched ? { nothing_matched: j.nothing_matched, filter_allowed: j.filter_allowed } : null, raw: j };
    }
    case 'V2 REST': {
      const inputs = userIds ? [{ name: 'user_id', datatype: 'BYTES', shape: [userIds.length], data: userIds.map(String) }] : [];
      const r = await postJson(`${s.ts.url}/v2/models/${s.model}/infer`, { parameters: rest, inputs });
      if (r.status !== 200) return { ok: false, kind: kindOfHttp(r.status), message: r.body.error };
      const { lists } = v2Lists(r.body.outputs, (o) => o.data);
      const p = r.body.outputs[0].parameters;
      return { ok: true, lists, nothing: p?.nothing_matched ? { nothing_matched: p.nothing_matched, filter_allowed: p.filter_allowed } : null, raw: r.body };
    }
    case 'V2 gRPC': {
      const r = await tryCall(s.v2, 'ModelInfer', { model_name: s.model, parameters: params(rest), inputs: userIds ? [idInput('user_id', userIds.map(String))] : [] });
      if (!r.ok) return { ok: false, kind: kindOfGrpc(r.code), message: r.details };
      const typed = (o: any) => {
        const c = o.contents ?? {};
        if (o.datatype === 'BYTES') return (c.bytes_contents ?? []).map((b: Buffer) => b.toString('utf8'));
        if (o.datatype === 'FP32') return c.fp32_contents ?? [];
        return (c.int64_contents ?? []).map(Number);
      };
      const { lists } = v2Lists(r.response.outputs, typed);
      const p = r.response.outputs[0].parameters ?? {};
      const nothing = p.nothing_matched ? { nothing_matched: p.nothing_matched.bool_param, filter_allowed: Number(p.filter_allowed.int64_param) } : null;
      return { ok: true, lists, nothing, raw: r.response };
    }
  }
}

/** The same request on all four transports: the same answer on each (returned), or the same kind of refusal. */
export async function everywhere(s: Served, options: Json): Promise<Answer> {
  const answers = await Promise.all(TRANSPORTS.map((t) => ask(s, t, options)));
  const first = answers[0];
  answers.forEach((a, j) => {
    if (first.ok && a.ok) {
      expect(a.lists.map(({ because, ...l }) => l), TRANSPORTS[j]).toEqual(first.lists.map(({ because, ...l }) => l));
      expect(a.lists.map((l) => l.because), TRANSPORTS[j]).toEqual(first.lists.map((l) => l.because));
      expect(a.nothing, TRANSPORTS[j]).toEqual(first.nothing);
    } else {
      expect({ ok: a.ok, kind: a.ok ? null : a.kind }, `${TRANSPORTS[j]}: ${a.ok ? 'answered' : a.message}`).toEqual({ ok: first.ok, kind: first.ok ? null : first.kind });
    }
  });
  return first;
}


/** A real server on the demo model (modelDir null) or a model directory; added to `servers` for closeAll. */
export async function serve(servers: Served[], env: Record<string, string>, modelDir: string | null): Promise<Served> {
  const ts = await startTestServer(env);
  const artifact = await loadArtifact(modelDir ?? path.join(ts.dataDir, 'demo-model'));
  const address = `127.0.0.1:${ts.server.ports.grpc}`;
  const s = { ts, model: artifact.name, artifact, seldon: seldonClients(address), v2: v2Client(address) };
  servers.push(s);
  return s;
}

export async function closeAll(servers: Served[]): Promise<void> {
  for (const s of servers) {
    s.seldon.close();
    s.v2.close();
    await s.ts.stop();
  }
}

export const ok = (a: Answer) => {
  if (!a.ok) throw new Error(`refused: ${a.message}`);
  return a;
};

/** A demo-model server for one test file: started before its tests, stopped after; call at the top level. */
export function demoServer(): () => Served {
  const servers: Served[] = [];
  let demo: Served | undefined;
  beforeAll(async () => {
    demo = await serve(servers, {}, null);
  }, 60_000);
  afterAll(() => closeAll(servers));
  return () => demo!;
}
