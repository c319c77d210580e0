// Start-up state of the served model, for the transports: predictions that arrive while the model is
// still loading wait for it (bounded by RECSERVE_STARTUP_WAIT_MS) instead of failing at once — Seldon's
// executor counts a TCP connect as ready by default, so its first calls can beat the warm-up — and a
// server that has no model says why (in /ready's body and in every refusal).
import { RecserveError } from '../errors.js';
import type { ModelRegistry } from '../model/registry.js';

export class StartupGate {
  private problem: string | null = null;
  private readonly waiters = new Set<{ resolve: () => void; reject: (e: Error) => void }>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly waitMs: number,
  ) {
    registry.onActivate(() => {
      this.problem = null;
      for (const w of this.waiters) w.resolve();
      this.waiters.clear();
    });
  }

  /** Why no model serves (null while loading or once one serves). */
  get reason(): string | null {
    return this.problem;
  }

  /** Start-up gave up: no model will come (until an admin reload). Waiting requests get 503 now. */
  fail(reason: string): void {
    this.problem = reason;
    const e = this.unavailable();
    for (const w of this.waiters) w.reject(e);
    this.waiters.clear();
  }

  /** Resolves once a model serves; 503 after the wait, or at once when start-up has given up. */
  waitForModel(): Promise<void> {
    if (this.registry.current) return Promise.resolve();
    if (this.problem !== null || this.waitMs === 0) return Promise.reject(this.unavailable());
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new RecserveError('unavailable', `no model is loaded yet: still loading after ${this.waitMs} ms (RECSERVE_STARTUP_WAIT_MS)`));
      }, this.waitMs);
      this.waiters.add(waiter);
    });
  }

  private unavailable(): RecserveError {
    return new RecserveError('unavailable', this.problem ? `no model is loaded: ${this.problem}` : 'no model is loaded yet');
  }
}
