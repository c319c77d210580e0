// Option parsers the commands share: each refuses a bad value with one line naming the option.
import { InvalidArgumentError } from 'commander';

/** Any finite number. */
export const numberArg = (what: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${what} must be a number`);
  return n;
};

/** A finite number above 0. */
export const positiveNumberArg = (what: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a number > 0`);
  return n;
};

/** A whole number ≥ 0. */
export const countArg = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer`);
  return n;
};

/** A whole number ≥ 1. */
export const positiveArg = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a whole number ≥ 1`);
  return n;
};
