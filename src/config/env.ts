// Typed readers for environment values: each names the variable and the expected form when it fails.
import { DomainError } from '../errors.js';

/** A setting (environment variable, flag, settings file) that cannot be read. */
export class ConfigError extends DomainError {
  constructor(message: string) {
    super('bad_data', message);
  }
}

export function parseBool(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (['true', '1', 'yes', 'y', 'on', 't'].includes(v)) return true;
  if (['false', '0', 'no', 'n', 'off', 'f'].includes(v)) return false;
  return undefined;
}

export function bool(v: string | undefined, dflt: boolean, name: string): boolean {
  if (v === undefined || v === '') return dflt;
  const b = parseBool(v);
  if (b === undefined) throw new ConfigError(`${name}=${JSON.stringify(v)} is not a boolean (true/false)`);
  return b;
}

/** A non-negative number. */
export function num(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`${name}=${JSON.stringify(v)} is not a non-negative number`);
  return n;
}

/** A whole number ≥ min. */
export function int(v: string | undefined, dflt: number, name: string, min = 0): number {
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v.trim())) throw new ConfigError(`${name}=${JSON.stringify(v)} is not a whole number`);
  const n = Number(v);
  if (n < min) throw new ConfigError(`${name}=${n} must be ≥ ${min}`);
  return n;
}

/** A number strictly between 0 and 1. */
export function frac(v: string | undefined, dflt: number, name: string): number {
  const n = num(v, dflt, name);
  if (!(n > 0 && n < 1)) throw new ConfigError(`${name}=${JSON.stringify(v)} must be strictly between 0 and 1`);
  return n;
}
