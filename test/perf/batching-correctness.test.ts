// Micro-batching must not change any answer (issue 6). A real server (worker pool + batcher) gets a
// mix of requests — different users, k, filters, exclude_seen, several users at once, cold-start
// users, pair scores, every payload form — first one at a time (each runs alone), then all at once
// (they share runs); every concurrent answer must equal its one-at-a-time answer. The batch-size
// histogram proves the second phase really batched.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSyntheticModel, itemId, userId, type SyntheticSpec } from '../fixtures/synthetic.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';

const SPEC: SyntheticSpec = { users: 300, items: 4000, factors: 16, seed: 11, seenPerUser: 40, genres: 5 };

/** A deterministic mix of request bodies covering every option that could be mixed up in a batch. */
function mixedRequests(): unknown[] {
  const out: unknown[] = [];
  for (let j = 0; j < 150; j++) {
    const u = userId((j * 37) % SPEC.users);
    const k = 1 + ((j * 7) % 40);
    switch (j % 10) {
      case 0:
        out.push({ jsonData: { user_id: u, k } });
        break;
      case 1:
        out.push({ jsonData: { user_id: u, k, exclude_seen: false } });
        break;
      case 2:
        out.push({ jsonData: { user_id: u, k, filter: { genre: `g${j % SPEC.genres}` } } });
        break;
      case 3:
        out.push({ jsonData: { users: [u, userId((j * 11) % SPEC.users), 'nobody-' + j], k, filter: { genre: ['g1', 'g3'] }, exclude_seen: j % 4 === 3 } });
        break;
      case 4:
        out.push({ jsonData: { pairs: [[u, itemId(j % SPEC.items)], [userId(j % SPEC.users), itemId((j * 13) % SPEC.items)]] } });
        break;
      case 5:
        out.push({ data: { ndarray: [[u], [userId((j + 1) % SPEC.users)]] }, meta: { tags: { k } } });
        break;
      case 6:
        out.push({ data: { names: ['user_id', 'item_id'], ndarray: [[u, itemId((j * 3) % SPEC.items)]] } });
        break;
      case 7:
        out.push({ strData: u });
        break;
      case 8:
        out.push({ data: { ndarray: [u] }, meta: { tags: { k, exclude_seen: false, filter: { genre: 'g2' } } } });
        break;
      case 9:
        out.push({ jsonData: { users: Array.from({ length: 5 }, (_, i) => userId((j + i * 17) % SPEC.users)), k: 3 + (j % 5) } });
        break;
    }
  }
  return out;
}

/** The answer without what legitimately differs between two calls (the generated puid). */
function comparable(body: any): unknown {
  const { meta, ...rest } = body;
  const { puid: _puid, ...metaRest } = meta ?? {};
  return { ...rest, meta: metaRest };
}

async function batchObservations(metricsUrl: string): Promise<{ count: number; sum: number }> {
  const text = await (await fetch(`${metricsUrl}/prometheus`)).text();
  const read = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    count: read(/^recserve_batch_size_count\{[^}]*op="topk"[^}]*\} (\S+)$/m),
    sum: read(/^recserve_batch_size_sum\{[^}]*op="topk"[^}]*\} (\S+)$/m),
  };
}

describe('micro-batching keeps every answer exact', () => {
  let modelDir: string;
  let t: TestServer;

  beforeAll(async () => {
    modelDir = mkdtempSync(path.join(os.tmpdir(), 'recserve-batching-'));
    await ensureSyntheticModel(modelDir, SPEC);
    // A generous delay makes the concurrent phase batch heavily even on a fast machine.
    t = await startTestServer({ MODEL_PATH: modelDir, RECSERVE_WORKERS: '2', RECSERVE_MAX_BATCH_SIZE: '16', RECSERVE_MAX_BATCH_DELAY_MS: '20' });
  });

  afterAll(async () => {
    await t?.stop();
    if (modelDir) rmSync(modelDir, { recursive: true, force: true });
  });

  it('answers concurrent mixed requests exactly as it answers each alone', async () => {
    const url = `${t.url}/api/v1.0/predictions`;
    const requests = mixedRequests();

    const start = await batchObservations(t.metricsUrl);
    const alone: unknown[] = [];
    for (const body of requests) {
      const r = await postJson(url, body);
      expect(r.status, JSON.stringify({ body, answer: r.body })).toBe(200);
      alone.push(comparable(r.body));
    }
    const mid = await batchObservations(t.metricsUrl);

    // Shuffle deterministically so neighbours in a batch differ from the sequential order.
    const order = requests.map((_, i) => i).sort((a, b) => ((a * 7919) % 151) - ((b * 7919) % 151));
    const together = await Promise.all(order.map((i) => postJson(url, requests[i])));
    together.forEach((r, j) => {
      const i = order[j];
      expect(r.status).toBe(200);
      expect(comparable(r.body), `request ${i}: ${JSON.stringify(requests[i])}`).toEqual(alone[i]);
    });
    const end = await batchObservations(t.metricsUrl);

    // Both phases scored the same users; the concurrent one did it in fewer, larger runs.
    const seq = { runs: mid.count - start.count, users: mid.sum - start.sum };
    const conc = { runs: end.count - mid.count, users: end.sum - mid.sum };
    expect(conc.users).toBe(seq.users);
    expect(conc.runs).toBeLessThan(seq.runs);
  });
});
