// How a setting is declared: one Field per value, naming its environment variable, its default and how
// the variable is read. A Section is the Fields of one typed settings object; its defaults and its
// reader are derived from it, so a variable, its default and its parsing are written once, and the
// configuration-table test (docs/configuration.md) and the unknown-variable check see every variable the server reads.
import { bool, ConfigError, frac, int, num } from './env.js';

export interface Field<T> {
  /** The environment variable that sets it; null for a named constant no variable changes. */
  readonly env: string | null;
  /** Value when the variable is unset or empty. */
  readonly default: T;
  /** Reads a non-empty value of the variable (throws ConfigError naming it when malformed). */
  readonly parse: (raw: string, name: string) => T;
  /** The default as an operator would write it (docs/configuration.md), when String(default) is not that. */
  readonly shown?: string;
}

/** One Field per key of a settings object. */
export type Section<C> = { readonly [K in keyof C]-?: Field<C[K]> };

export function defaultsOf<C>(section: Section<C>): C {
  const out = {} as C;
  for (const key of Object.keys(section) as (keyof C)[]) out[key] = section[key].default;
  return out;
}

export function readField<T>(field: Field<T>, env: NodeJS.ProcessEnv): T {
  const raw = field.env === null ? undefined : env[field.env];
  return raw === undefined || raw === '' ? field.default : field.parse(raw, field.env as string);
}

export function readSection<C>(section: Section<C>, env: NodeJS.ProcessEnv): C {
  const out = {} as C;
  for (const key of Object.keys(section) as (keyof C)[]) out[key] = readField(section[key], env);
  return out;
}

/** A whole number ≥ min. */
export function intField(env: string | null, dflt: number, min = 0, shown?: string): Field<number> {
  return { env, default: dflt, parse: (raw, name) => int(raw, dflt, name, min), shown };
}

/** A non-negative number. */
export function numField(env: string, dflt: number): Field<number> {
  return { env, default: dflt, parse: (raw, name) => num(raw, dflt, name) };
}

/** A number strictly between 0 and 1. */
export function fracField(env: string, dflt: number): Field<number> {
  return { env, default: dflt, parse: (raw, name) => frac(raw, dflt, name) };
}

export function boolField(env: string, dflt: boolean): Field<boolean> {
  return { env, default: dflt, parse: (raw, name) => bool(raw, dflt, name) };
}

export function textField(env: string, dflt: string): Field<string> {
  return { env, default: dflt, parse: (raw) => raw };
}

/** Free text, null when unset; `shown` says what unset means. */
export function optionalTextField(env: string, shown = 'none'): Field<string | null> {
  return { env, default: null, parse: (raw) => raw, shown };
}

/** A size in bytes, written as bytes or with a kb/mb/gb suffix; the default is given as written. */
export function bytesField(env: string, shown: string): Field<number> {
  return { env, default: parseBytes(shown, env), parse: parseBytes, shown };
}

export function parseBytes(v: string, name: string): number {
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(v.trim());
  if (!m) throw new ConfigError(`${name}=${JSON.stringify(v)} is not a size (e.g. 5mb)`);
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Number(m[1]) * mult;
}

/** A duration set in seconds and kept in milliseconds. */
export function secondsAsMsField(env: string, dfltMs: number): Field<number> {
  return { env, default: dfltMs, parse: (raw, name) => 1000 * num(raw, 0, name), shown: String(dfltMs / 1000) };
}

/** The default of a field as docs/configuration.md writes it. */
export function shownDefault(field: Field<unknown>): string {
  return field.shown ?? (field.default === undefined || field.default === null ? 'none' : String(field.default));
}
