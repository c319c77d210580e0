// The published model versions on disk: a versions root holding one directory per version
// (<root>/<version>/model.onnx, with the retrain report in publish.json beside it), the ACTIVE.json
// pointer naming the version last served, and the base model directory the server was started with.
// It names new versions (r1, r2, …), publishes them with one rename, lists them, and chooses the
// directory a server starts from. It holds no loaded model: the registry (src/model/registry.ts) does.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DomainError } from '../errors.js';

/** The subset of a pino logger the repository writes to. */
export interface RepositoryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface VersionRepositoryOptions {
  /** Writable directory of published versions and the ACTIVE.json pointer. */
  root: string;
  /** The model directory the server was started with (the `base` version); null where there is none (a retrain job). */
  baseDir?: string | null;
  log?: RepositoryLogger | null;
}

/** A version other replicas serve (the shared store's record): startupDir prefers it when present. */
export interface StartupPreference {
  version: string;
  isBase: boolean;
}

export interface PublishedVersion {
  version: string;
  dir: string;
  /** What publish.json beside the model says (retrain report), when present. */
  published?: Record<string, unknown>;
}

/** No such version directory. */
export class ModelNotFoundError extends DomainError {
  constructor(message: string) {
    super('not_found', message);
  }
}

interface Pointer {
  dir: string;
  version: string;
  base: { dir: string; mtimeMs: number; size: number } | null;
  at: string;
}

export const POINTER_FILE = 'ACTIVE.json';
export const PUBLISH_FILE = 'publish.json';
const MODEL_FILE = 'model.onnx';
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export class VersionRepository {
  readonly root: string;
  readonly baseDir: string | null;
  private readonly log: RepositoryLogger | null;

  constructor(opts: VersionRepositoryOptions) {
    this.root = path.resolve(opts.root);
    this.baseDir = opts.baseDir ? path.resolve(opts.baseDir) : null;
    this.log = opts.log ?? null;
  }

  /**
   * Where to start: the version the other replicas serve when named and present; else the version
   * ACTIVE.json names when it was derived from this same base model (the server restarts on the
   * version it was serving); else the base model.
   */
  startupDir(preferred: StartupPreference | null = null): string {
    const baseDir = this.baseDir;
    if (!baseDir) throw new Error('the version repository has no base model directory to start from');
    if (preferred) {
      const { version, isBase } = preferred;
      if (isBase) {
        this.log?.info({ version }, 'starting from the base model, which the other replicas serve');
        return baseDir;
      }
      const dir = this.publishedDir(version);
      if (existsSync(path.join(dir, MODEL_FILE))) {
        this.log?.info({ version, dir }, 'starting from the version the other replicas serve (the shared store records it)');
        return dir;
      }
      this.log?.warn({ version, root: this.root }, 'the version the other replicas serve is not under the versions root: is it a shared volume?');
    }
    const file = path.join(this.root, POINTER_FILE);
    if (!existsSync(file)) return baseDir;
    try {
      const p = JSON.parse(readFileSync(file, 'utf8')) as Pointer;
      const base = modelStamp(baseDir);
      if (!p.base || p.base.dir !== baseDir || !base || p.base.mtimeMs !== base.mtimeMs || p.base.size !== base.size) {
        this.log?.info({ pointer: file, base: baseDir }, 'the base model changed since the data directory last served a version: starting from the base model');
        return baseDir;
      }
      if (p.dir !== baseDir && existsSync(path.join(p.dir, MODEL_FILE))) {
        this.log?.info({ version: p.version, dir: p.dir }, 'resuming the model version this data directory last served');
        return p.dir;
      }
    } catch (e) {
      this.log?.warn({ pointer: file, err: (e as Error).message }, 'ignoring an unreadable ACTIVE.json');
    }
    return baseDir;
  }

  /** The directory of a published version, or null when there is none; throws ModelNotFoundError for a non-name. */
  findVersion(version: string): string | null {
    if (!VERSION_NAME.test(version)) throw new ModelNotFoundError(`"${version}" is not a version name`);
    const dir = this.publishedDir(version);
    return existsSync(dir) ? dir : null;
  }

  /** Published versions, oldest first (r2 before r10), with their publish.json when readable. */
  list(): PublishedVersion[] {
    return this.names().map((version) => {
      const dir = this.publishedDir(version);
      const info: PublishedVersion = { version, dir };
      const report = path.join(dir, PUBLISH_FILE);
      if (existsSync(report)) {
        try {
          info.published = JSON.parse(readFileSync(report, 'utf8'));
        } catch {
          /* a version without a readable report is still a version */
        }
      }
      return info;
    });
  }

  /** The newest published version name (r2 after r1, r10 after r9), or null. */
  newest(): string | null {
    return this.names().at(-1) ?? null;
  }

  /** Records the serving version in ACTIVE.json, stamped with the base model it derives from. */
  recordActive(dir: string, version: string): void {
    try {
      mkdirSync(this.root, { recursive: true });
      const stamp = this.baseDir ? modelStamp(this.baseDir) : null;
      const pointer: Pointer = { dir, version, base: this.baseDir && stamp ? { dir: this.baseDir, ...stamp } : null, at: new Date().toISOString() };
      const file = path.join(this.root, POINTER_FILE);
      // Replicas may share the root (every pod's pid is 1): a unique temporary name per write.
      const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
      writeFileSync(tmp, JSON.stringify(pointer, null, 2));
      renameSync(tmp, file);
    } catch (e) {
      this.log?.warn({ err: (e as Error).message }, 'could not record the active version (ACTIVE.json); a restart will start from the base model');
    }
  }

  /** The next free r<N>: past every published version and every staging directory. */
  nextVersion(): string {
    let max = 0;
    if (existsSync(this.root)) {
      for (const name of readdirSync(this.root)) {
        const m = /^(?:\.staging-)?r(\d+)/.exec(name);
        if (m) max = Math.max(max, Number(m[1]));
      }
    }
    return `r${max + 1}`;
  }

  /** Where a version lives once published. */
  publishedDir(version: string): string {
    return path.join(this.root, version);
  }

  /** An empty staging directory for a version being written (hidden from list() by its leading dot). */
  stage(version: string): string {
    mkdirSync(this.root, { recursive: true });
    const staging = path.join(this.root, `.staging-${version}-${process.pid}`);
    rmSync(staging, { recursive: true, force: true });
    return staging;
  }

  /** Writes the report beside the staged model, then one rename: a reader sees no version or a whole one. */
  publish(staging: string, version: string, report: object): string {
    const dir = this.publishedDir(version);
    writeFileSync(path.join(staging, PUBLISH_FILE), JSON.stringify(report, null, 2));
    renameSync(staging, dir);
    return dir;
  }

  discard(staging: string): void {
    rmSync(staging, { recursive: true, force: true });
  }

  private names(): string[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .filter((n) => !n.startsWith('.') && existsSync(path.join(this.root, n, MODEL_FILE)))
      .sort(versionOrder);
  }
}

function modelStamp(dir: string): { mtimeMs: number; size: number } | null {
  try {
    const s = statSync(path.join(dir, MODEL_FILE));
    return { mtimeMs: Math.floor(s.mtimeMs), size: s.size };
  } catch {
    return null;
  }
}

/** r2 < r10; names without a number sort by name, before numbered ones with the same prefix. */
export function versionOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
