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

  /** The model by name; NOT_FOUND (404) naming what is served when there is none. */
  resolve(name: string): RecommenderService {
    const s = this.find(name);
    if (s) return s;
    const names = this.list().map((m) => m.name);
    throw new RecserveError('not_found', `model ${JSON.stringify(name.slice(0, 200))} is not served here${names.length ? `; served: ${names.slice(0, 10).join(', ')}` : ' (no model is loaded)'}`);
  }
}
