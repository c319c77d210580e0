// An inference worker: one model scorer (ONNX session, float32 or int8) on its own thread, so session.run() blocks this thread
// and never the server's event loop. It answers one request at a time (the pool sends one at a time),
// rebuilds queries from the packed message (seen lists from the shared cache, masks from shared
// memory), and sends answers back packed, transferring their buffers.
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Int8ExactScorer, OrtScorer } from '../ort-scorer.js';
import type { TopKQuery } from '../scorer.js';
import { ExcludeKind, type LogMessage, type PairsRequest, type TopKRequest, type WorkerInit, type WorkerReply, type WorkerRequest } from './messages.js';

if (!parentPort) throw new Error('model/pool/worker.js runs as a worker thread of the inference pool');
const port = parentPort;
const init = workerData as WorkerInit;

const post = (msg: WorkerReply, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer);
const log = (level: LogMessage['level'], msg: string, fields?: Record<string, unknown>) => post({ type: 'log', level, msg, fields: { worker: init.index, ...fields } });

process.on('unhandledRejection', (e) => {
  log('error', 'unhandled rejection in inference worker', { err: (e as Error)?.message ?? String(e) });
  throw e;
});

if (init.niceness > 0) {
  try {
    // pid 0 = the calling thread on Linux: only this worker is deprioritised, not the process.
    os.setPriority(0, Math.min(19, os.getPriority(0) + init.niceness));
  } catch (e) {
    log('warn', 'could not lower the inference worker thread priority', { err: (e as Error).message });
  }
}

const t0 = performance.now();
// The binding takes an ArrayBuffer, not the shared one: copy once; ORT keeps its own weights anyway.
// int8 data comes checked (pool/factory.ts), so no float32 session is built for it.
const scorer = init.int8
  ? await Int8ExactScorer.create(init.int8, init.intraOpNumThreads)
  : await OrtScorer.create(new Uint8Array(init.onnx), init.signature, init.nItems, { intraOpNumThreads: init.intraOpNumThreads });
post({ type: 'ready', loadMs: performance.now() - t0 });

port.on('message', (req: WorkerRequest) => {
  const started = performance.now();
  const work = req.type === 'topk' ? topK(req, started) : pairs(req, started);
  work.catch((e: Error) => post({ type: 'error', id: req.id, name: e?.name ?? 'Error', message: e?.message ?? String(e) }));
});

async function topK(req: TopKRequest, started: number): Promise<void> {
  const n = req.users.length;
  const queries: TopKQuery[] = new Array(n);
  for (let i = 0; i < n; i++) {
    let exclude: Int32Array | null = null;
    const kind = req.excludeKind[i];
    if (kind === ExcludeKind.Seen) {
      const u = req.users[i];
      exclude = init.seenItems!.subarray(init.seenOffsets![u], init.seenOffsets![u + 1]);
    } else if (kind === ExcludeKind.Inline) {
      exclude = req.excludeItems.subarray(req.excludeOffsets[i], req.excludeOffsets[i + 1]);
    }
    const m = req.maskOf[i];
    queries[i] = { user: req.users[i], k: req.ks[i], exclude, allow: m < 0 ? null : req.masks[m] };
  }
  const ranked = await scorer.topK(queries);
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + ranked[i].items.length;
  const items = new Int32Array(offsets[n]);
  const scores = new Float32Array(offsets[n]);
  for (let i = 0; i < n; i++) {
    items.set(ranked[i].items, offsets[i]);
    scores.set(ranked[i].scores, offsets[i]);
  }
  post({ type: 'topk', id: req.id, offsets, items, scores, busyMs: performance.now() - started }, [offsets.buffer, items.buffer, scores.buffer]);
}

async function pairs(req: PairsRequest, started: number): Promise<void> {
  let scores = await scorer.scorePairs(req.users, req.items);
  // Only a buffer of our own may be transferred (ORT's output may be a view of a larger one).
  if (scores.byteOffset !== 0 || scores.byteLength !== scores.buffer.byteLength) scores = scores.slice();
  post({ type: 'pairs', id: req.id, scores, busyMs: performance.now() - started }, [scores.buffer as ArrayBuffer]);
}
