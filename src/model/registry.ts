// Holds the model version that answers requests, and the one before it. A version is a directory
// with a model.onnx; published versions live under a versions root (<root>/<version>/). Loading is
// load → warm → prepare hooks (bandit, fold-in) → one reference swap, so a request always finds a
// ready model and in-flight requests finish on the version they started with. The replaced version
// stays loaded as the rollback target, so rollback is one reference swap that cannot fail. A version
// that does not load, warm or prepare is refused with a log line naming why, and the old one keeps
// serving. Loads, reloads and rollbacks are serialised.
import { DomainError } from '../errors.js';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { loadArtifact, type Artifact } from '../model-format/artifact.js';
import { OrtScorer } from './ort-scorer.js';
import { Recommender } from './recommender.js';
import type { Scorer } from './scorer.js';

export type ScorerFactory = (artifact: Artifact) => Promise<Scorer>;

export const inProcessScorer: ScorerFactory = (a) => OrtScorer.create(a.onnx, a.signature, a.itemIds.length);

/** The subset of a pino logger the registry writes to. */
export interface RegistryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RegistryOptions {
  /** Writable directory of published versions (<root>/<version>/model.onnx) and the ACTIVE.json pointer. */
  root?: string | null;
  log?: RegistryLogger | null;
  /** How long a replaced version's scorer stays open for requests still running on it (ms). */
  graceMs?: number;
  /** Byte budget of each version's filter-mask cache (config.limits.filterCacheBytes). */
  filterCacheBytes?: number;
}

/** A version that could not be loaded, warmed or prepared; the previous one still serves. */
export class ModelRefusedError extends DomainError {
  constructor(message: string) {
    super('bad_data', message);
  }
}

/** No such version directory. */
export class ModelNotFoundError extends DomainError {
  constructor(message: string) {
    super('not_found', message);
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

interface Pointer {
  dir: string;
  version: string;
  base: { dir: string; mtimeMs: number; size: number } | null;
  at: string;
}

export const POINTER_FILE = 'ACTIVE.json';

export class ModelRegistry {
  private active: Slot | null = null;
  private previous: Slot | null = null;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly prepareHooks: ((rec: Recommender) => Promise<void> | void)[] = [];
  private readonly activateListeners: ((rec: Recommender, replaced: Recommender | null) => void)[] = [];
  private readonly pendingCloses = new Map<NodeJS.Timeout, Recommender>();
  private root: string | null = null;
  private log: RegistryLogger | null = null;
  private graceMs = 5_000;
  private filterCacheBytes: number | undefined;
  private baseDir: string | null = null;
  /** A version other replicas serve (the shared store's record): startupDir prefers it when present. */
  private preferred: { version: string; isBase: boolean } | null = null;
  /** Completed swaps (loads and rollbacks) since start. */
  swaps = 0;

  constructor(
    private readonly makeScorer: ScorerFactory = inProcessScorer,
    opts: RegistryOptions = {},
  ) {
    this.configure(opts);
  }

  configure(opts: RegistryOptions): void {
    if (opts.root !== undefined) this.root = opts.root ? path.resolve(opts.root) : null;
    if (opts.log !== undefined) this.log = opts.log;
    if (opts.graceMs !== undefined) this.graceMs = opts.graceMs;
    if (opts.filterCacheBytes !== undefined) this.filterCacheBytes = opts.filterCacheBytes;
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
    return this.root;
  }

  /** Resolved directory of the serving version, of the rollback target, and of the base model. */
  get activeDir(): string | null {
    return this.active?.dir ?? null;
  }

  get previousDir(): string | null {
    return this.previous?.dir ?? null;
  }

  get baseModelDir(): string | null {
    return this.baseDir;
  }

  /** Names the version startupDir should start from when it is present (replicas: the shared record wins over ACTIVE.json). */
  preferStartupVersion(v: { version: string; isBase: boolean } | null): void {
    this.preferred = v;
  }

  /** Runs on every new version after its warm-up and before it is swapped in; a throw refuses it. */
  onPrepare(hook: (rec: Recommender) => Promise<void> | void): void {
    this.prepareHooks.push(hook);
  }

  /** Runs after every swap (load or rollback). */
  onActivate(listener: (rec: Recommender, replaced: Recommender | null) => void): void {
    this.activateListeners.push(listener);
  }

  /**
   * Where to start: the version ACTIVE.json names when it was derived from this same base model
   * (the server restarts on the version it was serving), else baseDir.
   */
  startupDir(baseDir: string): string {
    this.baseDir = path.resolve(baseDir);
    if (this.preferred) {
      const { version, isBase } = this.preferred;
      if (isBase) {
        this.log?.info({ version }, 'starting from the base model, which the other replicas serve');
        return baseDir;
      }
      const dir = this.root ? path.join(this.root, version) : null;
      if (dir && existsSync(path.join(dir, 'model.onnx'))) {
        this.log?.info({ version, dir }, 'starting from the version the other replicas serve (the shared store records it)');
        return dir;
      }
      this.log?.warn({ version, root: this.root }, 'the version the other replicas serve is not under the versions root: is it a shared volume?');
    }
    if (!this.root) return baseDir;
    const file = path.join(this.root, POINTER_FILE);
    if (!existsSync(file)) return baseDir;
    try {
      const p = JSON.parse(readFileSync(file, 'utf8')) as Pointer;
      const base = baseStamp(this.baseDir);
      if (!p.base || p.base.dir !== this.baseDir || !base || p.base.mtimeMs !== base.mtimeMs || p.base.size !== base.size) {
        this.log?.info({ pointer: file, base: this.baseDir }, 'the base model changed since the data directory last served a version: starting from the base model');
        return baseDir;
      }
      if (p.dir !== this.baseDir && existsSync(path.join(p.dir, 'model.onnx'))) {
        this.log?.info({ version: p.version, dir: p.dir }, 'resuming the model version this data directory last served');
        return p.dir;
      }
    } catch (e) {
      this.log?.warn({ pointer: file, err: (e as Error).message }, 'ignoring an unreadable ACTIVE.json');
    }
    return baseDir;
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

  /** The directory of a published version; throws ModelNotFoundError when there is none. */
  versionDir(version: string): string {
    if (this.baseDir && (version === 'base' || version === this.baseVersion())) return this.baseDir;
    if (!this.root) throw new ModelNotFoundError('no versions root is configured');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(version)) throw new ModelNotFoundError(`"${version}" is not a version name`);
    const dir = path.join(this.root, version);
    if (!existsSync(dir)) {
      this.log?.error({ version, dir, serving: this.current?.version ?? null }, `model version refused: ${version} does not exist; still serving ${this.current?.version ?? 'nothing'}`);
      throw new ModelNotFoundError(`no model version "${version}" under ${this.root}`);
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
      this.writePointer();
      this.log?.info({ version: back.rec.version, replaced: replaced.rec.version }, 'rolled back');
      for (const l of this.activateListeners) l(back.rec, replaced.rec);
      return back.rec;
    });
  }

  /** Published versions under the root, plus the base model and whatever is loaded. */
  listVersions(): VersionInfo[] {
    const out = new Map<string, VersionInfo>();
    const stateOf = (dir: string): VersionInfo['state'] =>
      this.active?.dir === dir ? 'active' : this.previous?.dir === dir ? 'previous' : 'available';
    for (const slot of [this.active, this.previous]) {
      if (slot) out.set(slot.dir, { version: slot.rec.version, dir: slot.dir, state: stateOf(slot.dir) });
    }
    if (this.root && existsSync(this.root)) {
      for (const name of readdirSync(this.root).sort(versionOrder)) {
        const dir = path.join(this.root, name);
        if (name.startsWith('.') || !existsSync(path.join(dir, 'model.onnx'))) continue;
        const info: VersionInfo = out.get(dir) ?? { version: name, dir, state: stateOf(dir) };
        const pub = path.join(dir, 'publish.json');
        if (existsSync(pub)) {
          try {
            info.published = JSON.parse(readFileSync(pub, 'utf8'));
          } catch {
            /* a version without a readable report is still a version */
          }
        }
        out.set(dir, info);
      }
    }
    return [...out.values()];
  }

  /** The newest published version name under the root (r2 after r1, r10 after r9), or null. */
  newestVersion(): string | null {
    if (!this.root || !existsSync(this.root)) return null;
    const names = readdirSync(this.root).filter((n) => !n.startsWith('.') && existsSync(path.join(this.root!, n, 'model.onnx')));
    return names.sort(versionOrder).at(-1) ?? null;
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
    const slot = [this.active, this.previous].find((s) => s?.dir === this.baseDir);
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
    let scorer: Scorer;
    try {
      scorer = await this.makeScorer(artifact);
    } catch (e) {
      return refuse('inference session', e);
    }
    const rec = new Recommender(artifact, scorer, { filterCacheBytes: this.filterCacheBytes });
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
    this.writePointer();
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

  private writePointer(): void {
    if (!this.root || !this.active) return;
    try {
      mkdirSync(this.root, { recursive: true });
      const pointer: Pointer = {
        dir: this.active.dir,
        version: this.active.rec.version,
        base: this.baseDir ? (baseStamp(this.baseDir) ? { dir: this.baseDir, ...baseStamp(this.baseDir)! } : null) : null,
        at: new Date().toISOString(),
      };
      const file = path.join(this.root, POINTER_FILE);
      // Replicas may share the root (every pod's pid is 1): a unique temporary name per write.
      const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
      writeFileSync(tmp, JSON.stringify(pointer, null, 2));
      renameSync(tmp, file);
    } catch (e) {
      this.log?.warn({ err: (e as Error).message }, 'could not record the active version (ACTIVE.json); a restart will start from the base model');
    }
  }
}

function baseStamp(dir: string): { mtimeMs: number; size: number } | null {
  try {
    const s = statSync(path.join(dir, 'model.onnx'));
    return { mtimeMs: Math.floor(s.mtimeMs), size: s.size };
  } catch {
    return null;
  }
}

/** r2 < r10; names without a number sort by name, before numbered ones with the same prefix. */
export function versionOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
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
