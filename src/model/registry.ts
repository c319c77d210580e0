// Holds the model version that answers requests, and the one before it. Loading is load → warm →
// prepare hooks (bandit, fold-in) → one reference swap, so a request always finds a ready model and
// in-flight requests finish on the version they started with. The replaced version stays loaded as
// the rollback target, so rollback is one reference swap that cannot fail. A version that does not
// load, warm or prepare is refused with a log line naming why, and the old one keeps serving. Loads,
// reloads and rollbacks are serialised. Published versions on disk (names, ACTIVE.json, publish.json)
// are the VersionRepository's (src/model-format/version-repository.ts); the registry records each swap there.
import { DomainError } from '../errors.js';
import path from 'node:path';
import { INFERENCE_DEFAULTS } from '../config/inference.js';
import { loadArtifact, type Artifact } from '../model-format/artifact.js';
import { ModelNotFoundError, type RepositoryLogger, type VersionRepository } from '../model-format/version-repository.js';
import { Recommender, type RecommenderOptions } from './recommender.js';
import type { Scorer } from './scorer.js';

export { ModelNotFoundError } from '../model-format/version-repository.js';

export type ScorerFactory = (artifact: Artifact) => Promise<Scorer>;

/** The subset of a pino logger the registry writes to. */
export interface RegistryLogger extends RepositoryLogger {
  error(obj: object, msg: string): void;
}

export interface RegistryOptions {
  /** Published versions on disk, where every swap is recorded; null serves only the directories it is given. */
  repository?: VersionRepository | null;
  log?: RegistryLogger | null;
  /** How long a replaced version's scorer stays open for requests still running on it (ms). */
  graceMs?: number;
  /** Byte budget of each version's filter-mask cache (config.limits.filterCacheBytes). */
  filterCacheBytes?: number;
  /** The feedback loop's part of every version (bandit policy, fold-in), given at construction. */
  learning?: RecommenderOptions['learning'];
}

/** A version that could not be loaded, warmed or prepared; the previous one still serves. */
export class ModelRefusedError extends DomainError {
  constructor(message: string) {
    super('bad_data', message);
  }
}

/** Rollback asked for with no previous version loaded. */
export class NoPreviousVersionError extends DomainError {
  constructor(message: string) {
    super('conflict', message);
  }
}

export interface VersionInfo {
  version: string;
  dir: string;
  state: 'active' | 'previous' | 'available';
  /** What publish.json beside the model says (retrain report), when present. */
  published?: Record<string, unknown>;
}

interface Slot {
  rec: Recommender;
  dir: string;
  since: number;
}

/** One model directory as a Recommender (artifact + scorer), without warm-up or a registry. */
export async function loadModel(dir: string, makeScorer: ScorerFactory, opts: RecommenderOptions = {}): Promise<Recommender> {
  const artifact = await loadArtifact(dir);
  return new Recommender(artifact, await makeScorer(artifact), opts);
}

export class ModelRegistry {
  private active: Slot | null = null;
  private previous: Slot | null = null;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly prepareHooks: ((rec: Recommender) => Promise<void> | void)[] = [];
  private readonly activateListeners: ((rec: Recommender, replaced: Recommender | null) => void)[] = [];
  private readonly pendingCloses = new Map<NodeJS.Timeout, Recommender>();
  private readonly repository: VersionRepository | null;
  private readonly log: RegistryLogger | null;
  private readonly graceMs: number;
  private readonly filterCacheBytes: number | undefined;
  private readonly learning: RecommenderOptions['learning'];
  /** Completed swaps (loads and rollbacks) since start. */
  swaps = 0;

  constructor(
    private readonly makeScorer: ScorerFactory,
    opts: RegistryOptions = {},
  ) {
    this.repository = opts.repository ?? null;
    this.log = opts.log ?? null;
    this.graceMs = opts.graceMs ?? INFERENCE_DEFAULTS.swapGraceMs;
    this.filterCacheBytes = opts.filterCacheBytes;
    this.learning = opts.learning;
  }

  /** The serving recommender, or null before the first load has been warmed. */
  get current(): Recommender | null {
    return this.active?.rec ?? null;
  }

  /** The version a rollback would return to. */
  get previousModel(): Recommender | null {
    return this.previous?.rec ?? null;
  }

  get versionsRoot(): string | null {
    return this.repository?.root ?? null;
  }

  /** Resolved directory of the serving version, of the rollback target, and of the base model. */
  get activeDir(): string | null {
    return this.active?.dir ?? null;
  }

  get previousDir(): string | null {
    return this.previous?.dir ?? null;
  }

  get baseModelDir(): string | null {
    return this.repository?.baseDir ?? null;
  }

  /** Runs on every new version after its warm-up and before it is swapped in; a throw refuses it. */
  onPrepare(hook: (rec: Recommender) => Promise<void> | void): void {
    this.prepareHooks.push(hook);
  }

  /** Runs after every swap (load or rollback). */
  onActivate(listener: (rec: Recommender, replaced: Recommender | null) => void): void {
    this.activateListeners.push(listener);
  }

  /** Loads dir beside the current version, warms and prepares it, then swaps it in. */
  load(dir: string): Promise<Recommender> {
    return this.exclusive(async () => {
      const rec = await this.open(dir);
      this.swapIn({ rec, dir: path.resolve(dir), since: Date.now() });
      return rec;
    });
  }

  /** Loads a published version by name (<root>/<version>). */
  loadVersion(version: string): Promise<Recommender> {
    return this.load(this.versionDir(version));
  }

  /** The directory of a version ('base' or the base model's own version name included); throws ModelNotFoundError when there is none. */
  versionDir(version: string): string {
    const repository = this.repository;
    if (!repository) throw new ModelNotFoundError('no versions root is configured');
    if (repository.baseDir && (version === 'base' || version === this.baseVersion())) return repository.baseDir;
    const dir = repository.findVersion(version);
    if (!dir) {
      const serving = this.current?.version ?? null;
      this.log?.error({ version, dir: repository.publishedDir(version), serving }, `model version refused: ${version} does not exist; still serving ${serving ?? 'nothing'}`);
      throw new ModelNotFoundError(`no model version "${version}" under ${repository.root}`);
    }
    return dir;
  }

  /** Swaps the previous version back in (it is still loaded and warm). */
  rollback(): Promise<Recommender> {
    return this.exclusive(async () => {
      if (!this.previous || !this.active) throw new NoPreviousVersionError('there is no previous version to roll back to');
      const back = this.previous;
      const replaced = this.active;
      this.active = { ...back, since: Date.now() };
      this.previous = replaced;
      this.swaps++;
      this.repository?.recordActive(back.dir, back.rec.version);
      this.log?.info({ version: back.rec.version, replaced: replaced.rec.version }, 'rolled back');
      for (const l of this.activateListeners) l(back.rec, replaced.rec);
      return back.rec;
    });
  }

  /** Whatever is loaded, plus the published versions and what their publish.json says. */
  listVersions(): VersionInfo[] {
    const out = new Map<string, VersionInfo>();
    const stateOf = (dir: string): VersionInfo['state'] =>
      this.active?.dir === dir ? 'active' : this.previous?.dir === dir ? 'previous' : 'available';
    for (const slot of [this.active, this.previous]) {
      if (slot) out.set(slot.dir, { version: slot.rec.version, dir: slot.dir, state: stateOf(slot.dir) });
    }
    for (const { version, dir, published } of this.repository?.list() ?? []) {
      const info: VersionInfo = out.get(dir) ?? { version, dir, state: stateOf(dir) };
      if (published) info.published = published;
      out.set(dir, info);
    }
    return [...out.values()];
  }

  /** The newest published version name (r2 after r1, r10 after r9), or null. */
  newestVersion(): string | null {
    return this.repository?.newest() ?? null;
  }

  async close(): Promise<void> {
    await this.lock.catch(() => undefined);
    const closing: Promise<void>[] = [];
    for (const [timer, rec] of this.pendingCloses) {
      clearTimeout(timer);
      closing.push(rec.scorer.close().catch(() => undefined));
    }
    this.pendingCloses.clear();
    for (const slot of [this.active, this.previous]) if (slot) closing.push(slot.rec.scorer.close().catch(() => undefined));
    this.active = null;
    this.previous = null;
    await Promise.all(closing);
  }

  private baseVersion(): string | null {
    const baseDir = this.repository?.baseDir;
    const slot = [this.active, this.previous].find((s) => s?.dir === baseDir);
    return slot?.rec.version ?? null;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Load, warm and prepare without touching what serves; refuse with a log line on any failure. */
  private async open(dir: string): Promise<Recommender> {
    const serving = this.current?.version ?? null;
    const refuse = (stage: string, e: unknown): never => {
      const reason = `${stage}: ${(e as Error).message}`;
      this.log?.error({ dir, stage, err: (e as Error).message, serving }, `model version refused (${reason}); ${serving ? `still serving ${serving}` : 'nothing is serving'}`);
      throw new ModelRefusedError(`model in ${dir} refused — ${reason}`);
    };
    let artifact: Artifact;
    try {
      artifact = await loadArtifact(dir);
    } catch (e) {
      return refuse('load', e);
    }
    for (const warning of artifact.settings.warnings) this.log?.warn({ dir }, warning);
    let scorer: Scorer;
    try {
      scorer = await this.makeScorer(artifact);
    } catch (e) {
      return refuse('inference session', e);
    }
    const rec = new Recommender(artifact, scorer, { filterCacheBytes: this.filterCacheBytes, learning: this.learning });
    try {
      await warmUp(rec);
    } catch (e) {
      await scorer.close().catch(() => undefined);
      return refuse(`warm-up inference of ${artifact.name} ${artifact.version}`, e);
    }
    try {
      for (const hook of this.prepareHooks) await hook(rec);
      await rec.ready(); // e.g. the bandit's first draw pool, so the version never serves by blocking
    } catch (e) {
      await scorer.close().catch(() => undefined);
      return refuse('prepare', e);
    }
    return rec;
  }

  private swapIn(slot: Slot): void {
    const replaced = this.active;
    const evicted = this.previous;
    this.active = slot; // the swap: requests from here on get the new version
    this.previous = replaced;
    this.swaps++;
    if (evicted && evicted.rec !== slot.rec && evicted.rec !== replaced?.rec) this.closeLater(evicted.rec);
    this.repository?.recordActive(slot.dir, slot.rec.version);
    if (replaced) this.log?.info({ version: slot.rec.version, dir: slot.dir, replaced: replaced.rec.version }, 'model version swapped in');
    for (const l of this.activateListeners) l(slot.rec, replaced?.rec ?? null);
  }

  /** In-flight requests hold their own reference; give them time before releasing the session. */
  private closeLater(rec: Recommender): void {
    const timer = setTimeout(() => {
      this.pendingCloses.delete(timer);
      void rec.scorer.close().catch(() => undefined);
    }, this.graceMs);
    timer.unref();
    this.pendingCloses.set(timer, rec);
  }
}

/** One real inference; a version whose answer is empty or not finite is refused. */
async function warmUp(rec: Recommender): Promise<void> {
  const user = rec.artifact.userIds[0];
  if (user === undefined || rec.nItems === 0) return;
  const [r] = await rec.recommend({ users: [user], k: 1, excludeSeen: false, filter: null });
  if (!r || r.items.length === 0 || !Number.isFinite(r.items[0].score)) {
    throw new Error(`warm-up for user ${user} returned ${r?.items.length ? `a score of ${r.items[0].score}` : 'no items'}: the model's outputs are not usable`);
  }
}
