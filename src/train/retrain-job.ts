// Child-process entry for a server-triggered retrain (admin endpoint or schedule), so training never
// blocks the serving event loop. The job and the report follow src/model-format/retrain-contract.ts:
// the JSON RetrainJob arrives in the environment, the last stdout line is the JSON report (or
// {"error": "..."}). Never imported.
import { openStore } from '../feedback/store/index.js';
import { RETRAIN_JOB_ENV, type RetrainJob } from '../model-format/retrain-contract.js';
import { retrain } from './retrain.js';

const job = JSON.parse(process.env[RETRAIN_JOB_ENV] ?? '{}') as RetrainJob;
delete process.env[RETRAIN_JOB_ENV];
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
