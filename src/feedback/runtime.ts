// Wires the feedback loop into a server: the interaction store (opened lazily, 503 while it is not
// available), the bandit (counts loaded from the store), the FeedbackHandler on the data plane, the
// registry hooks that give every model version its bandit and fold-in before it serves, and retraining
// (admin endpoint and optional schedule) in a child process followed by a hot swap.
import { DomainError } from '../errors.js';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import client from 'prom-client';
import type { Config } from '../config/index.js';
import type { ModelRegistry } from '../model/registry.js';
import type { DataPlane } from '../protocols/seldon-v1/dataplane.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { workerUrl } from '../util/worker-url.js';
import { ThompsonBandit } from './bandit.js';
import { FeedbackService } from './handler.js';
import { feedbackWatermark, Propagation } from './propagation.js';
import { retrain, type RetrainReport } from '../train/retrain.js';
import { RetrainCoordination, type RetrainLease } from './retrain-coordination.js';
import type { RetrainJob } from '../train/retrain-job.js';
import type { FeedbackSettings } from '../config/feedback.js';
import { describeStoreUrl, openStore, type StoreSafetySettings } from './store/index.js';
import { StoreHolder } from './store/holder.js';

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

/** Runs the retrain in a child process (compiled entry); in-process when no compiled entry exists. */
async function runJob(job: RetrainJob, log: Logger): Promise<RetrainReport> {
  const entry = fileURLToPath(workerUrl(import.meta.url, '../train/retrain-job.js'));
  if (!existsSync(entry)) {
    log.warn({ entry }, 'no compiled retrain entry (run npm run build): retraining in-process');
    const store = await openStore({ url: job.storeUrl, dataDir: job.dataDir });
    try {
      return await retrain({ store, currentDir: job.currentDir, root: job.root, base: job.base, minHoldout: job.minHoldout });
    } finally {
      await store.close();
    }
  }
  return new Promise((resolve, reject) => {
    // The job (with the store URL) travels in the environment: a command line is readable by every local user.
    const child = spawn(process.execPath, [entry], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RECSERVE_RETRAIN_JOB: JSON.stringify(job) } });
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

export interface FeedbackRuntime {
  service: FeedbackService;
  stores: StoreHolder;
  bandit: ThompsonBandit;
  settings: FeedbackSettings;
  retrainer: Retrainer;
  /** Live propagation from the other replicas (PostgreSQL store only; null with SQLite). */
  propagation: Propagation | null;
  /** One retrain at a time and one serving version across replicas (PostgreSQL store only; null with SQLite). */
  coordination: RetrainCoordination | null;
  close(): Promise<void>;
}

export interface FeedbackDeps {
  config: Config;
  registry: ModelRegistry;
  dataplane: DataPlane;
  log: Logger;
  metrics: Metrics;
  settings?: FeedbackSettings;
}

/** RECSERVE_STORE_TIMEOUT_MS / RECSERVE_STORE_MAX_WAITING, from the feedback settings. */
function storeSafety(settings: FeedbackSettings): StoreSafetySettings {
  return { timeoutMs: settings.storeTimeoutMs, maxWaiting: settings.storeMaxWaiting };
}

/** Installs the feedback loop; call before the first model load so that version gets it too. */
export async function startFeedback(deps: FeedbackDeps): Promise<FeedbackRuntime> {
  const { config, registry, dataplane, log, metrics } = deps;
  const settings = deps.settings ?? config.feedback;
  const reg = metrics.registry;
  const stored = new client.Counter({ name: 'recserve_feedback_interactions_total', help: 'Interaction rows stored from feedback', registers: [reg] });
  const storeErrors = new client.Counter({ name: 'recserve_feedback_store_errors_total', help: 'Feedback refused because the interaction store could not take it (503)', registers: [reg] });
  const swaps = new client.Counter({ name: 'recserve_model_swaps_total', help: 'Model versions swapped in (loads and rollbacks)', registers: [reg] });
  const retrains = new client.Counter({ name: 'recserve_retrains_total', help: 'Server-run retrains by outcome', labelNames: ['outcome'] as const, registers: [reg] });

  registry.configure({ root: path.join(config.dataDir, 'models'), log, filterCacheBytes: config.limits.filterCacheBytes });
  const safety = storeSafety(settings);
  const stores = new StoreHolder(() => openStore({ url: config.storeUrl, dataDir: config.dataDir, safety }), settings.storeRetryMs, log, safety.timeoutMs);
  const bandit = new ThompsonBandit(settings.bandit);
  bandit.log = log;
  const liveModels = () => [registry.current, registry.previousModel].filter((m): m is NonNullable<typeof m> => m !== null);
  // Replicas sharing PostgreSQL hear each other's feedback (src/feedback/propagation.ts); the service is set below.
  let service: FeedbackService | null = null;
  const shared = config.storeUrl !== null && describeStoreUrl({ url: config.storeUrl, dataDir: config.dataDir }).backend === 'postgres';
  const propagation =
    shared && config.storeUrl
      ? new Propagation({
          url: config.storeUrl,
          bandit,
          openStore: () => stores.get(),
          liveModels,
          foldInOf: (m) => service?.foldInOf(m) ?? null,
          log,
          registry: reg,
        })
      : null;
  stores.onOpen(async (s) => {
    // Read before the arms: a feedback committed in between is then read again by propagation, never missed.
    const mark = propagation ? await feedbackWatermark(s) : null;
    const arms = await s.arms();
    // Arms for ids no loaded catalog lists (e.g. written before ids were checked) are not kept.
    const { kept, ignored, deferred } = bandit.load(arms);
    log.info({ store: s.location, backend: s.backend, schema: await s.schemaVersion(), arms: arms.length, kept, ignored, deferred }, 'interaction store open; bandit posterior loaded');
    propagation?.loaded(mark);
  });
  await stores.get().catch(() => undefined); // logged; feedback answers 503 until it opens

  // Replicas on PostgreSQL serve the version the store records (src/feedback/retrain-coordination.ts).
  const coordination = shared && config.storeUrl ? new RetrainCoordination({ url: config.storeUrl, registry, log, settings: { queryTimeoutMs: Math.max(2000, settings.storeTimeoutMs) } }) : null;
  if (coordination) {
    const row = await coordination.serving().catch((e) => {
      log.warn({ err: (e as Error).message }, 'could not read the serving version from the shared store at start-up; following it once it answers');
      return null;
    });
    if (row) registry.preferStartupVersion({ version: row.version, isBase: row.isBase });
  }

  service = new FeedbackService({
    stores,
    bandit,
    settings,
    params: config.params,
    limits: config.limits,
    log,
    liveModels,
    observer: { stored: (n) => stored.inc(n), storeError: () => storeErrors.inc() },
    // With PostgreSQL, predictions are also remembered in the store, so feedback by puid works on any replica.
    sharedPredictions: { backend: describeStoreUrl({ url: config.storeUrl, dataDir: config.dataDir }).backend },
  });
  service.registerMetrics(reg);
  dataplane.feedbackHandler = service;
  registry.onPrepare((rec) => service.prepare(rec));
  registry.onActivate((rec) => {
    swaps.inc();
    metrics.setModel(rec.name, rec.version, rec.artifact.signature.kind);
  });

  const retrainer = new Retrainer({ config, registry, stores, settings, log, count: (outcome) => retrains.inc({ outcome }), coordination });
  let timer: NodeJS.Timeout | null = null;
  if (settings.retrainIntervalS > 0) {
    timer = setInterval(() => {
      // Another replica's retrain (or this one's) holds the lock: this tick simply skips.
      if (!retrainer.busy)
        retrainer.start('schedule').catch((e) => {
          if (e instanceof RetrainBusyError) log.info({ reason: e.message }, 'scheduled retrain skipped');
          else log.error({ err: (e as Error).message }, 'scheduled retrain could not start');
        });
    }, settings.retrainIntervalS * 1000);
    timer.unref();
    log.info({ every_s: settings.retrainIntervalS }, 'scheduled retraining on');
  }

  propagation?.start();
  coordination?.start();

  return {
    service,
    stores,
    bandit,
    settings,
    retrainer,
    propagation,
    coordination,
    async close() {
      if (timer) clearInterval(timer);
      await propagation?.stop();
      await retrainer.current?.catch(() => undefined);
      await coordination?.stop();
      await service.close(); // writes the shared prediction rows still buffered
      await stores.close();
      await bandit.close();
    },
  };
}
