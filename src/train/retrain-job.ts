// Child-process entry for a server-triggered retrain (admin endpoint or schedule), so training never
// blocks the serving event loop. The JSON RetrainJob arrives in the environment (RECSERVE_RETRAIN_JOB),
// not on the command line, where any local user could read the store URL and its password with ps.
// The last stdout line is the JSON report (or {"error": "..."}). Never imported.
import { openStore } from '../feedback/store/index.js';
import { retrain } from './retrain.js';

export interface RetrainJob {
  storeUrl: string | null;
  dataDir: string;
  currentDir: string;
  root: string;
  base: string | null;
  minHoldout: number;
}

const RETRAIN_JOB_ENV = 'RECSERVE_RETRAIN_JOB';

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
