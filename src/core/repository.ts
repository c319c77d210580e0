// The model repository: models loaded and unloaded by name from a models root, as the Open Inference
// Protocol's repository extension (and Seldon Core 2's agent) drives them. A model is a folder
// `<root>/<name>/` holding a model.onnx, or numbered version folders `<root>/<name>/<n>/` (the highest
// wins; Seldon Core 2 writes `<root>/<model>_<version>/1/`). A load returns only once the model is warm
// and serving; a model that does not load is refused and every other model keeps serving.
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { badData, RecserveError } from '../errors.js';
import type { ModelHub } from './models.js';
import type { RecommenderService } from './service.js';
import { KeyedQueue } from '../util/keyed-queue.js';

/** The states the repository index reports (Triton's and MLServer's names). */
export type ModelState = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE';

export interface IndexEntry {
  name: string;
  version?: string;
  state: ModelState;
  reason: string;
}

/** A model built and warm: its service, and how to release it. */
export interface LoadedModel {
  service: RecommenderService;
  close(): Promise<void>;
}

/** Builds one model from its folder (scorer stack, registry, learner); throws when it cannot serve. */
export type ModelBuilder = (name: string, dir: string) => Promise<LoadedModel>;

/** Names a client may load: what the agent's REST rewrite accepts ([\w-]+), so never a path. */
const MODEL_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * The name feedback state is kept under: Seldon Core 2 serves `<model>_<version>` and the version rises
 * on every edit of the Model, so `iris_1` and `iris_2` share the state of `iris`.
 */
export function baseNameOf(name: string): string {
  const m = /^(.+)_\d+$/.exec(name);
  return m ? m[1] : name;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class ModelRepository {
  private readonly loaded = new Map<string, LoadedModel>();
  /** Models loading or unloading now, and the last failure of a load, by name. */
  private readonly transient = new Map<string, { state: ModelState; reason: string }>();
  /** One load or unload at a time per name; different names load side by side. */
  private readonly queue = new KeyedQueue();

  constructor(
    private readonly deps: {
      /** The models root; null when the server has none (the repository then lists only what it serves). */
      root: string | null;
      hub: ModelHub;
      build: ModelBuilder;
      log: Logger;
    },
  ) {}

  get root(): string | null {
    return this.deps.root;
  }

  /** What is served, what is loading, and (with a root) what could be loaded; `readyOnly` keeps the READY ones. */
  index(readyOnly = false): IndexEntry[] {
    const out = new Map<string, IndexEntry>();
    for (const { name, service } of this.deps.hub.list()) {
      const m = service.current;
      out.set(name, { name, ...(m ? { version: m.version } : {}), state: service.isReady() ? 'READY' : 'UNAVAILABLE', reason: service.isReady() ? '' : (service.readiness().reason ?? '') });
    }
    for (const [name, t] of this.transient) out.set(name, { name, state: t.state, reason: t.reason });
    for (const name of this.onDisk()) if (!out.has(name)) out.set(name, { name, state: 'UNAVAILABLE', reason: 'not loaded' });
    const all = [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
    return readyOnly ? all.filter((e) => e.state === 'READY') : all;
  }

  /** Loads (or reloads) `name` from the root; resolves once it serves. 404 when there is no such folder. */
  load(name: string): Promise<void> {
    this.checkName(name);
    return this.serialised(name, async () => {
      const dir = this.modelDir(name);
      this.transient.set(name, { state: 'LOADING', reason: '' });
      this.deps.hub.setLoading(name, true);
      let built: LoadedModel;
      const t0 = Date.now();
      try {
        built = await this.deps.build(name, dir);
      } catch (e) {
        const reason = (e as Error).message;
        // The client sees the cause without the server's paths (the log has them).
        const shown = this.deps.root ? reason.split(path.join(this.deps.root, name)).join(name).split(this.deps.root).join('<models root>') : reason;
        this.transient.set(name, { state: 'UNAVAILABLE', reason: `load failed: ${shown}` });
        this.deps.log.warn({ model: name, dir, err: reason }, 'model load refused; the other models keep serving');
        const kind = e instanceof RecserveError ? e.kind : 'bad_data';
        throw new RecserveError(kind === 'internal' ? 'bad_data' : kind, `model ${name} could not be loaded: ${shown}`);
      } finally {
        this.deps.hub.setLoading(name, false);
      }
      this.transient.delete(name);
      const replaced = this.loaded.get(name);
      this.loaded.set(name, built);
      this.deps.hub.add(name, built.service);
      this.deps.log.info({ model: name, dir, version: built.service.current?.version, ms: Date.now() - t0, replaced: replaced !== undefined }, 'model loaded and warm');
      await replaced?.close();
    });
  }

  /** Unloads `name`; 404 when it is not loaded. */
  unload(name: string): Promise<void> {
    this.checkName(name);
    return this.serialised(name, async () => {
      const m = this.loaded.get(name);
      if (!m) {
        const isDefault = name === this.deps.hub.defaultModelName;
        throw new RecserveError('not_found', isDefault ? `model ${name} is the server's default model (started with it); the repository does not unload it` : `model ${name} is not loaded`);
      }
      this.transient.set(name, { state: 'UNLOADING', reason: '' });
      this.deps.hub.remove(name);
      this.loaded.delete(name);
      try {
        m.service.startDraining();
        await m.close();
      } finally {
        this.transient.delete(name);
      }
      this.deps.log.info({ model: name }, 'model unloaded');
    });
  }

  async close(): Promise<void> {
    const all = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.all(all.map((m) => m.close()));
  }

  /** The folder a name loads from: `<root>/<name>/` with a model.onnx, else its highest numbered version folder. */
  private modelDir(name: string): string {
    const root = this.deps.root;
    if (!root) throw new RecserveError('not_found', `model ${name}: this server has no models root to load from (start it with --models-root)`);
    const top = path.join(root, name);
    if (!isDir(top)) throw new RecserveError('not_found', `model ${name} not found: no folder ${name} in the models root`);
    if (existsSync(path.join(top, 'model.onnx'))) return inside(root, top, name);
    const versions = readdirSync(top)
      .filter((v) => /^\d+$/.test(v) && existsSync(path.join(top, v, 'model.onnx')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length === 0) throw new RecserveError('not_found', `model ${name} not found: its folder holds no model.onnx, at the top or in a numbered version folder`);
    return inside(root, path.join(top, versions[0]), name);
  }

  /** Model folders under the root (names a load would accept). */
  private onDisk(): string[] {
    const root = this.deps.root;
    if (!root || !isDir(root)) return [];
    return readdirSync(root).filter((n) => MODEL_NAME.test(n) && isDir(path.join(root, n)));
  }

  private checkName(name: string): void {
    if (!MODEL_NAME.test(name)) throw badData(`model name ${JSON.stringify(name.slice(0, 200))} is not valid: use 1–128 letters, digits, '_' or '-'`);
  }

  private serialised(name: string, fn: () => Promise<void>): Promise<void> {
    return this.queue.run(name, fn);
  }
}

/** `dir`, unless a link leads it out of the models root. */
function inside(root: string, dir: string, name: string): string {
  const realRoot = realpathSync(root);
  if (!realpathSync(dir).startsWith(`${realRoot}${path.sep}`)) throw badData(`model ${name}: its folder leads outside the models root`);
  return dir;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
