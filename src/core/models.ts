// The models this server serves, by name: what the Open Inference Protocol addresses as
// /v2/models/{name}. Each entry is a RecommenderService over its own registry (scorer stack, versions,
// bandit and fold-in state). The default model (the one the Seldon v1 routes serve) is one of them.
import { RecserveError } from '../errors.js';
import type { RecommenderService } from './service.js';

export interface ServedModel {
  /** The name clients address (Seldon Core 2 calls it `<model>_<version>`). */
  name: string;
  service: RecommenderService;
}

export class ModelHub {
  private readonly named = new Map<string, RecommenderService>();
  /** Names a repository load is working on: calls for them are UNAVAILABLE (retry), not NOT_FOUND. */
  private readonly loading = new Set<string>();

  /**
   * `defaultModel`: the service the Seldon v1 routes use, addressed by `defaultName` (the --model-name
   * flag) or, without one, by its serving model's own name.
   */
  constructor(
    private readonly defaultModel: RecommenderService | null,
    private readonly defaultName: string | null = null,
  ) {}

  /** The name the default model answers to now (null without a default model or before it loads). */
  get defaultModelName(): string | null {
    if (!this.defaultModel) return null;
    return this.defaultName ?? this.defaultModel.current?.name ?? null;
  }

  get default(): RecommenderService | null {
    return this.defaultModel;
  }

  add(name: string, service: RecommenderService): void {
    this.named.set(name, service);
  }

  /** A repository load of `name` started (true) or ended (false). */
  setLoading(name: string, on: boolean): void {
    if (on) this.loading.add(name);
    else this.loading.delete(name);
  }

  remove(name: string): RecommenderService | undefined {
    const s = this.named.get(name);
    this.named.delete(name);
    return s;
  }

  /** Every model by name, the default first. */
  list(): ServedModel[] {
    const out: ServedModel[] = [];
    const d = this.defaultModelName;
    if (d !== null && this.defaultModel && !this.named.has(d)) out.push({ name: d, service: this.defaultModel });
    for (const [name, service] of this.named) out.push({ name, service });
    return out;
  }

  find(name: string): RecommenderService | undefined {
    const s = this.named.get(name);
    if (s) return s;
    return name === this.defaultModelName && this.defaultModel ? this.defaultModel : undefined;
  }

  /**
   * The model by name; UNAVAILABLE while it loads, else NOT_FOUND. The answer names no other model: on a
   * shared server (Seldon Core 2) those are other tenants' (the repository index lists them to operators).
   */
  resolve(name: string): RecommenderService {
    const s = this.find(name);
    if (s) return s;
    const shown = JSON.stringify(name.slice(0, 200));
    if (this.loading.has(name)) throw new RecserveError('unavailable', `model ${shown} is loading`);
    throw new RecserveError('not_found', `model ${shown} is not served here`);
  }
}
