// While predict keeps every inference worker busy, liveness, readiness, status and metrics still
// answer (issue 6): scoring runs on worker threads, so the event loop is free for them. This asserts
// that they answer at all within a generous bound, never how fast — timing belongs to `npm run bench`.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSyntheticModel, userId, type SyntheticSpec } from '../fixtures/synthetic.js';
import { MicroBatcher } from '../../src/model/batcher.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Big enough that a run takes milliseconds, so 32 clients keep both workers saturated.
const SPEC: SyntheticSpec = { users: 500, items: 40_000, factors: 32, seed: 3, seenPerUser: 10, genres: 4 };
/** Not a latency target: only "it answered at all while predict was saturated". */
const ANSWER_WITHIN_MS = 1000;
const CLIENTS = 32;

describe('health, readiness and metrics while predict is saturated', () => {
  let modelDir: string;
  let t: TestServer;

  beforeAll(async () => {
    modelDir = mkdtempSync(path.join(os.tmpdir(), 'recserve-saturated-'));
    await ensureSyntheticModel(modelDir, SPEC);
    t = await startTestServer({ MODEL_PATH: modelDir, RECSERVE_WORKERS: '2' });
  });

  afterAll(async () => {
    await t?.stop();
    if (modelDir) rmSync(modelDir, { recursive: true, force: true });
  });

  it('answers /health/ping, /ready, /live, /health/status and /prometheus while predict is saturated', async () => {
    const scorer = t.server.registry.current!.scorer;
    expect(scorer).toBeInstanceOf(MicroBatcher);
    const batcher = scorer as MicroBatcher;

    let stop = false;
    let predicted = 0;
    let failed = 0;
    const client = async (c: number) => {
      for (let i = 0; !stop; i++) {
        const r = await fetch(`${t.url}/api/v1.0/predictions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonData: { user_id: userId((c * 131 + i * 7) % SPEC.users), k: 10 } }),
        });
        await r.arrayBuffer();
        if (r.status === 200) predicted++;
        else failed++;
      }
    };
    const load = Array.from({ length: CLIENTS }, (_, c) => client(c));

    // Wait until the load has really started: a run going and requests queued behind it.
    const deadline = Date.now() + 30_000;
    while (!(batcher.state.inFlight >= 1 && batcher.state.queued > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));

    const probes = [
      `${t.url}/health/ping`,
      `${t.url}/ready`,
      `${t.url}/live`,
      `${t.url}/health/status`,
      `${t.metricsUrl}/prometheus`,
    ];
    const seenBusy: boolean[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        for (const url of probes) {
          seenBusy.push(batcher.state.inFlight >= 1);
          const r = await fetch(url, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
          await r.arrayBuffer();
          expect(r.status, url).toBe(200);
        }
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }
    // The probes really ran against a saturated predict path.
    expect(seenBusy.filter(Boolean).length).toBeGreaterThan(seenBusy.length / 2);
    expect(predicted).toBeGreaterThan(CLIENTS);
    expect(failed).toBe(0);
  });
});
