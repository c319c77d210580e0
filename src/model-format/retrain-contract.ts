// What passes between the server and its retrain child process (src/train/retrain-job.ts): the job
// in the environment (not on the command line, where any local user could read the store URL with ps),
// and the report as the last line of stdout. Both sides import it, so neither imports the other.

/** The environment variable that carries the JSON job. */
export const RETRAIN_JOB_ENV = 'RECSERVE_RETRAIN_JOB';

export interface RetrainJob {
  storeUrl: string | null;
  dataDir: string;
  currentDir: string;
  root: string;
  base: string | null;
  minHoldout: number;
}

/** What the server reads of the trainer's report (the full report is passed on to the admin answer as is). */
export interface RetrainSummary {
  published: boolean;
  version: string | null;
  reason: string;
  seconds: number;
}
