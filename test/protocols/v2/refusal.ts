// What the V2 unit tests assert of a refusal: a RecserveError of kind bad_data (a 400), and its message.
import { expect } from 'vitest';
import { RecserveError } from '../../../src/errors.js';

/** Runs fn and returns the bad_data message it throws; fails when it throws nothing or something else. */
export function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RecserveError);
    expect((e as RecserveError).kind).toBe('bad_data');
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}
