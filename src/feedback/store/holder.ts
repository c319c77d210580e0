// Holds the interaction store for the data plane: opened lazily, reopened after a failure, and 503
// ("interaction store unavailable") while it is not available. This is the boundary between the
// store and every answer: a store failure reaches a client only as STORE_UNAVAILABLE plus a request
// id; the details (credentials already redacted by the store) go to the log under the same id.
import { randomBytes } from 'node:crypto';
import { RecserveError } from '../../errors.js';
import type { Logger } from '../../telemetry/logger.js';
import { STORE_SAFETY_DEFAULTS, STORE_UNAVAILABLE, StoreSchemaError, StoreUnavailableError, type InteractionStore } from './contract.js';

/** What a store operation throws to its caller: safe to answer with; `requestId` finds the details in the log. */
export class PublicStoreError extends StoreUnavailableError {
  constructor(readonly requestId: string) {
    super(`${STORE_UNAVAILABLE} (request id ${requestId})`);
    this.name = 'PublicStoreError';
  }
}

/** Store methods whose failures are translated (everything a caller awaits). */
const OPERATIONS = new Set<PropertyKey>(['record', 'userInteractions', 'usersSince', 'scan', 'arms', 'stats', 'schemaVersion']);

/** Opens the store lazily and reopens it after a failure, so feedback answers 503 until it is back. */
export class StoreHolder {
  private store: InteractionStore | null = null;
  private guarded: InteractionStore | null = null;
  private opening: Promise<InteractionStore> | null = null;
  private lastFailure = 0;
  private lastError: Error | null = null;
  private readonly listeners: ((s: InteractionStore) => Promise<void> | void)[] = [];

  constructor(
    private readonly open: () => Promise<InteractionStore>,
    private readonly retryMs: number,
    private readonly log: Logger,
    /** Longest a caller waits for the store to open (RECSERVE_STORE_TIMEOUT_MS); the opening goes on in the background. */
    private readonly waitMs: number = STORE_SAFETY_DEFAULTS.timeoutMs,
  ) {}

  /** Runs on every (re)open, e.g. to load the bandit's counts. */
  onOpen(fn: (s: InteractionStore) => Promise<void> | void): void {
    this.listeners.push(fn);
  }

  peek(): InteractionStore | null {
    return this.guarded;
  }

  /** The open store, or a 503 with a request id (the reason is logged under it). */
  async get(): Promise<InteractionStore> {
    if (this.guarded) return this.guarded;
    if (this.lastError && Date.now() - this.lastFailure < this.retryMs) throw this.refuse(this.lastError.message);
    this.opening ??= (async () => {
      try {
        const s = await this.open();
        for (const fn of this.listeners) await fn(s);
        this.store = s;
        this.guarded = this.guard(s);
        if (this.lastError) this.log.info({ store: s.location }, 'interaction store available again');
        this.lastError = null;
        return this.guarded;
      } catch (e) {
        this.lastError = e as Error;
        this.lastFailure = Date.now();
        this.log.error({ err: (e as Error).message }, 'interaction store unavailable: feedback will be refused with 503 until it opens');
        throw e;
      } finally {
        this.opening = null;
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the store is still opening after ${this.waitMs} ms (RECSERVE_STORE_TIMEOUT_MS)`)), this.waitMs);
    });
    try {
      return await Promise.race([this.opening, late]);
    } catch (e) {
      throw this.refuse((e as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const s = this.store;
    this.store = null;
    this.guarded = null;
    await s?.close();
  }

  /** A 503 for a caller that could not get the store; the reason goes to the log only. */
  private refuse(detail: string): RecserveError {
    const requestId = newRequestId();
    this.log.warn({ requestId, err: detail }, 'interaction store unavailable: request refused');
    return new RecserveError('unavailable', `${STORE_UNAVAILABLE} (request id ${requestId}); feedback was not stored`);
  }

  /** The store as callers see it: same object and methods, but failures carry only a request id. */
  private guard(store: InteractionStore): InteractionStore {
    const log = this.log;
    const wrapped = new Map<PropertyKey, unknown>();
    return new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (!OPERATIONS.has(prop) || typeof value !== 'function') return value;
        if (!wrapped.has(prop)) {
          wrapped.set(prop, async (...args: unknown[]) => {
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            } catch (e) {
              if (!(e instanceof StoreUnavailableError || e instanceof StoreSchemaError)) throw e;
              const requestId = newRequestId();
              log.error({ requestId, op: String(prop), backend: target.backend, err: e.message }, 'interaction store operation failed');
              throw new PublicStoreError(requestId);
            }
          });
        }
        return wrapped.get(prop);
      },
    });
  }
}

function newRequestId(): string {
  return randomBytes(6).toString('hex');
}
