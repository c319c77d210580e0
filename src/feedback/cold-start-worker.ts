// The draw worker: computes pools of Thompson draw vectors (posterior-draws.ts) off the event loop.
// One job at a time; answers carry their buffers by transfer.
import { parentPort } from 'node:worker_threads';
import { drawVectors, type DrawJob } from './posterior-draws.js';

if (!parentPort) throw new Error('feedback/cold-start-worker.js runs as a worker thread of the bandit');
const port = parentPort;

port.on('message', (msg: { id: number; job: DrawJob }) => {
  try {
    const out = drawVectors(msg.job);
    port.postMessage({ id: msg.id, items: out.items, scores: out.scores }, [out.items.buffer as ArrayBuffer, out.scores.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: msg.id, error: (e as Error)?.message ?? String(e) });
  }
});
