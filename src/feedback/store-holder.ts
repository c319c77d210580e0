// Holds the interaction store for the data plane: opened lazily, reopened after a failure, and 503
// ("interaction store unavailable") while it is not available.
import { RecserveError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { InteractionStore } from './store.js';

/** Opens the store lazily and reopens it after a failure, so feedback answers 503 until it is back. */
export class StoreHolder {
  private store: InteractionStore | null = null;
  private opening: Promise<InteractionStore> | null = null;
  private lastFailure = 0;
  private lastError: Error | null = null;
  private readonly listeners: ((s: InteractionStore) => Promise<void> | void)[] = [];

  constructor(
    private readonly open: () => Promise<InteractionStore>,
    private readonly retryMs: number,
    private readonly log: Logger,
  ) {}

  /** Runs on every (re)open, e.g. to load the bandit's counts. */
  onOpen(fn: (s: InteractionStore) => Promise<void> | void): void {
    this.listeners.push(fn);
  }

  peek(): InteractionStore | null {
    return this.store;
  }

  /** The open store, or a 503 naming why it is not available. */
  async get(): Promise<InteractionStore> {
    if (this.store) return this.store;
    if (this.lastError && Date.now() - this.lastFailure < this.retryMs) throw this.unavailable(this.lastError);
    this.opening ??= (async () => {
      try {
        const s = await this.open();
        for (const fn of this.listeners) await fn(s);
        this.store = s;
        if (this.lastError) this.log.info({ store: s.location }, 'interaction store available again');
        this.lastError = null;
        return s;
      } catch (e) {
        this.lastError = e as Error;
        this.lastFailure = Date.now();
        this.log.error({ err: (e as Error).message }, 'interaction store unavailable: feedback will be refused with 503 until it opens');
        throw this.unavailable(e as Error);
      } finally {
        this.opening = null;
      }
    })();
    return this.opening;
  }

  async close(): Promise<void> {
    const s = this.store;
    this.store = null;
    await s?.close();
  }

  private unavailable(e: Error): RecserveError {
    return new RecserveError('unavailable', `the interaction store is unavailable, feedback was not stored: ${e.message}`);
  }
}
