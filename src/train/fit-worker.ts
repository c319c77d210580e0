// Worker thread body for runFitJobs: receives a FitJob, trains and evaluates, posts the result.
import { parentPort } from 'node:worker_threads';
import { runFitJob, type FitJob } from './jobs.js';

parentPort?.on('message', (job: FitJob) => {
  try {
    parentPort!.postMessage({ ok: true, result: runFitJob(job) });
  } catch (e) {
    parentPort!.postMessage({ ok: false, error: (e as Error).stack ?? String(e) });
  }
});
