// Control of the served versions, for every protocol: list, reload, rollback and retrain. A retrain
// runs in a child process (src/train/retrain-job.ts) and what it publishes is swapped in; with a shared
// PostgreSQL store every swap is also recorded for the other replicas to follow, and one retrain runs at
// a time across all of them.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';
import type { FeedbackSettings } from '../config/feedback.js';
import { badData, DomainError, RecserveError } from '../errors.js';
import type { RetrainCoordination, RetrainLease } from '../feedback/retrain-coordination.js';
import type { StoreHolder } from '../feedback/store/holder.js';
import { ModelRefusedError, type ModelRegistry } from '../model/registry.js';
import type { Recommender } from '../model/recommender.js';
import type { Logger } from '../telemetry/logger.js';
import { RETRAIN_JOB_ENV, type RetrainJob, type RetrainSummary as RetrainReport } from '../model-format/retrain-contract.js';
import { workerUrl } from '../util/worker-url.js';

export interface RetrainOutcome {
  trigger: 'admin' | 'schedule' | 'cli';
  startedAt: string;
  finishedAt: string | null;
  report: RetrainReport | null;
  /** The version swapped in after publishing (null when nothing was published or the swap was refused). */
  activated: string | null;
  /** Why nothing was trained (e.g. no feedback yet), when the retrain did not start. */
  skipped: string | null;
  error: string | null;
}

export class RetrainBusyError extends DomainError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** What GET /admin/retrain reports: on PostgreSQL the shared record (any replica answers the same). */
export interface RetrainStatus {
  running: boolean;
  /** Where the running retrain runs (PostgreSQL only). */
  running_on: { replica: string; trigger: string; started_at: string } | null;
  last: (RetrainOutcome & { replica?: string }) | null;
  /** This replica's id (PostgreSQL only). */
  replica?: string;
  /** 'store' when read from the shared record, 'local' otherwise (SQLite, or the store unreachable). */
  source: 'store' | 'local';
}

/**
 * One retrain at a time, in a child process; a published version is loaded and swapped in. With a
 * shared PostgreSQL store (`coordination`), one at a time across every replica: the retrain holds the
 * store's retrain lock, and what it publishes is recorded as the serving version that all replicas follow.
 */
export class Retrainer {
  private running: Promise<RetrainOutcome> | null = null;
  private starting = false;
  last: RetrainOutcome | null = null;

  constructor(
    private readonly deps: {
      config: Config;
      registry: ModelRegistry;
      stores: StoreHolder;
      settings: FeedbackSettings;
      log: Logger;
      count: (outcome: string) => void;
      coordination?: RetrainCoordination | null;
    },
  ) {}

  get busy(): boolean {
    return this.running !== null || this.starting;
  }

  get current(): Promise<RetrainOutcome> | null {
    return this.running;
  }

  /**
   * Starts a retrain; `done` settles with its outcome. Throws RetrainBusyError when one runs here, or (shared
   * store) on another replica.
   */
  async start(trigger: RetrainOutcome['trigger']): Promise<{ done: Promise<RetrainOutcome>; startedAt: string }> {
    if (this.busy) throw new RetrainBusyError('a retrain is already running');
    const coordination = this.deps.coordination ?? null;
    let lease: RetrainLease | null = null;
    if (coordination) {
      this.starting = true;
      try {
        lease = await coordination.tryLock(trigger);
        if (!lease) {
          const { running } = await coordination.runs().catch(() => ({ running: null }));
          throw new RetrainBusyError(
            `a retrain is running on another replica${running ? ` (${running.replica}, ${running.trigger}, started ${running.startedAt})` : ''}`,
          );
        }
      } finally {
        this.starting = false;
      }
    }
    const outcome: RetrainOutcome = { trigger, startedAt: new Date().toISOString(), finishedAt: null, report: null, activated: null, skipped: null, error: null };
    this.last = outcome;
    this.running = this.run(outcome)
      .then(async (o) => {
        await lease?.finish(o.error ? 'failed' : o.activated ? 'published' : o.skipped ? 'skipped' : 'not_published', o.activated, o).catch((e) => {
          this.deps.log.error({ err: (e as Error).message }, 'retrain: could not record the outcome in the shared store');
        });
        return o;
      })
      .finally(() => {
        this.running = null;
      });
    return { done: this.running, startedAt: outcome.startedAt };
  }

  /** Whether a retrain runs and the last outcome: the shared record on PostgreSQL, this process otherwise. */
  async status(): Promise<RetrainStatus> {
    const local: RetrainStatus = { running: this.busy, running_on: null, last: this.last, source: 'local' };
    const coordination = this.deps.coordination;
    if (!coordination) return local;
    try {
      const { running, last } = await coordination.runs();
      return {
        running: running !== null,
        running_on: running ? { replica: running.replica, trigger: running.trigger, started_at: running.startedAt } : null,
        last: last?.detail ? { ...(last.detail as unknown as RetrainOutcome), replica: last.replica } : null,
        replica: coordination.replica,
        source: 'store',
      };
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message }, 'retrain status: the shared store is unreachable; answering from this replica');
      return { ...local, replica: coordination.replica };
    }
  }

  private async run(outcome: RetrainOutcome): Promise<RetrainOutcome> {
    const { config, registry, stores, settings, log } = this.deps;
    try {
      const current = registry.current;
      if (!current) throw new Error('no model is serving yet');
      const root = registry.versionsRoot ?? path.join(config.dataDir, 'models');
      const store = await stores.get();
      if ((await store.stats()).interactions === 0) {
        // Nothing to learn from: answer at once instead of starting a trainer.
        outcome.skipped = 'nothing to learn from: the interaction store holds no feedback yet';
        return outcome;
      }
      const job: RetrainJob = { storeUrl: config.storeUrl, dataDir: config.dataDir, currentDir: current.artifact.dir, root, base: settings.retrainBase, minHoldout: settings.retrainMinHoldout };
      log.info({ trigger: outcome.trigger, parent: current.version }, 'retrain started');
      const report = await runJob(job, log);
      outcome.report = report;
      if (report.published && report.version) {
        const version = report.version;
        const coordination = this.deps.coordination;
        const rec = coordination
          ? await coordination.swapAndRecord(`retrain (${outcome.trigger})`, () => registry.loadVersion(version))
          : await registry.loadVersion(version);
        outcome.activated = rec.version;
      }
      log.info({ published: report.published, version: report.version, reason: report.reason, seconds: report.seconds }, 'retrain finished');
    } catch (e) {
      // The cause (store URLs, paths, a child's stderr) goes to the log; the admin answer names the log entry.
      const requestId = randomUUID().slice(0, 8);
      outcome.error = `retrain failed (request id ${requestId}); the server log has the cause`;
      log.error({ err: (e as Error).message, trigger: outcome.trigger, requestId }, 'retrain failed');
    } finally {
      outcome.finishedAt = new Date().toISOString();
      this.deps.count(outcome.error ? 'failed' : outcome.activated ? 'published' : 'not_published');
    }
    return outcome;
  }
}

/** Runs the retrain in a child process (the compiled src/train/retrain-job.js). */
async function runJob(job: RetrainJob, log: Logger): Promise<RetrainReport> {
  const entry = fileURLToPath(workerUrl(import.meta.url, '../train/retrain-job.js'));
  // The trainer is a separate program (serving never loads training code): it must be compiled.
  if (!existsSync(entry)) throw new Error(`no compiled retrain entry at ${entry}: run npm run build`);
  return new Promise((resolve, reject) => {
    // The job (with the store URL) travels in the environment: a command line is readable by every local user.
    const child = spawn(process.execPath, [entry], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [RETRAIN_JOB_ENV]: JSON.stringify(job) } });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      let parsed: (RetrainReport & { error?: undefined }) | { error: string } | null = null;
      try {
        parsed = JSON.parse(last);
      } catch {
        /* reported below */
      }
      if (parsed && !('error' in parsed && parsed.error)) return resolve(parsed as RetrainReport);
      reject(new Error(parsed && 'error' in parsed ? parsed.error : `retrain process exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ') || 'no output'}`));
    });
  });
}


export interface VersionState {
  active: { name: string; version: string; dir: string } | null;
  previous: { name: string; version: string; dir: string } | null;
  swaps: number;
}

/** Versions of the served model: what the admin routes (and any other protocol's control calls) do. */
export class VersionControl {
  constructor(
    private readonly deps: {
      registry: ModelRegistry;
      retrainer: Retrainer;
      coordination: RetrainCoordination | null;
      log: Logger;
    },
  ) {}

  get retrainer(): Retrainer {
    return this.deps.retrainer;
  }

  /** This replica's id in the shared store (PostgreSQL), else null. */
  get replica(): string | null {
    return this.deps.coordination?.replica ?? null;
  }

  state(): VersionState {
    const { registry } = this.deps;
    return { active: describe(registry.current), previous: describe(registry.previousModel), swaps: registry.swaps };
  }

  /** The shared record of the serving version (PostgreSQL), so every replica answers the same. */
  async shared(): Promise<{ replica?: string; serving?: unknown }> {
    const { coordination, log } = this.deps;
    if (!coordination) return {};
    const serving = await coordination.serving().catch((e) => {
      log.warn({ err: (e as Error).message }, 'admin: the shared store is unreachable; the serving version is this replica’s');
      return undefined;
    });
    return { replica: coordination.replica, serving: serving === undefined ? 'unavailable' : serving };
  }

  versions() {
    return this.deps.registry.listVersions();
  }

  /** Loads a version (default: the newest published, else the base model), warms it and swaps it in. */
  async reload(version?: string): Promise<void> {
    const { registry } = this.deps;
    const target = version ?? registry.newestVersion() ?? 'base';
    const dir = registry.versionDir(target); // ModelNotFoundError (404) for an unknown version
    try {
      await this.swap(`reload ${target}`, () => registry.load(dir));
    } catch (e) {
      if (e instanceof ModelRefusedError) throw badData(`${e.message}; still serving ${registry.current?.version ?? 'nothing'}`);
      throw e;
    }
  }

  /** Swaps the previous version back (409 when there is none). */
  async rollback(): Promise<void> {
    const { registry } = this.deps;
    try {
      await this.swap('rollback', () => registry.rollback());
    } catch (e) {
      if (e instanceof DomainError && e.kind === 'conflict') throw new RecserveError('conflict', `${e.message}; serving ${registry.current?.version ?? 'nothing'}`);
      throw e;
    }
  }

  /** Starts a retrain: 409 when one runs (here or on another replica), 503 when the lock cannot be asked for. */
  async retrain(trigger: RetrainOutcome['trigger']): Promise<{ done: Promise<RetrainOutcome>; startedAt: string }> {
    try {
      return await this.deps.retrainer.start(trigger);
    } catch (e) {
      if (e instanceof RetrainBusyError) throw new RecserveError('conflict', `${e.message}; GET /admin/retrain shows its progress`);
      // The shared store could not be asked for the retrain lock: nothing started.
      this.deps.log.error({ err: (e as Error).message }, 'retrain: could not take the retrain lock');
      throw new RecserveError('unavailable', 'the shared store did not answer for the retrain lock; no retrain started');
    }
  }

  /**
   * A swap, on PostgreSQL also recorded for every replica to follow. When the swap stands here but the
   * record failed, RecordError (503) says so (the record is retried in the background).
   */
  private async swap(reason: string, fn: () => Promise<Recommender>): Promise<void> {
    const { coordination } = this.deps;
    if (!coordination) {
      await fn();
      return;
    }
    await coordination.swapAndRecord(reason, fn);
  }
}

function describe(rec: Recommender | null) {
  return rec ? { name: rec.name, version: rec.version, dir: rec.artifact.dir } : null;
}


/** Retrains every `intervalS` seconds (RECSERVE_RETRAIN_INTERVAL_S); a tick while one runs anywhere skips. Returns the stop. */
export function scheduleRetrains(retrainer: Retrainer, intervalS: number, log: Logger): () => void {
  if (intervalS <= 0) return () => undefined;
  const timer = setInterval(() => {
    if (!retrainer.busy)
      retrainer.start('schedule').catch((e) => {
        if (e instanceof RetrainBusyError) log.info({ reason: e.message }, 'scheduled retrain skipped');
        else log.error({ err: (e as Error).message }, 'scheduled retrain could not start');
      });
  }, intervalS * 1000);
  timer.unref();
  log.info({ every_s: intervalS }, 'scheduled retraining on');
  return () => clearInterval(timer);
}
