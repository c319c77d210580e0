// Child-process entry for a server-triggered retrain (admin endpoint or schedule), so training never
// blocks the serving event loop. argv[2] is a JSON RetrainJob; the last stdout line is the JSON report
// (or {"error": "..."}). Never imported.
import { openStore } from './store.js';
import { retrain } from './retrain.js';

export interface RetrainJob {
  storeUrl: string | null;
  dataDir: string;
  currentDir: string;
  root: string;
  base: string | null;
  minHoldout: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as RetrainJob;
try {
  const store = await openStore({ url: job.storeUrl, dataDir: job.dataDir });
  try {
    const report = await retrain({ store, currentDir: job.currentDir, root: job.root, base: job.base, minHoldout: job.minHoldout });
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await store.close();
  }
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
  process.exitCode = 1;
}
