// Significant-digit rounding, for numbers people read: answer scores (6 digits, no float32 noise in
// JSON) and training-report figures.

/** `v` to `digits` significant digits; 0, −0 and non-finite values as they are. */
export function significant(v: number, digits = 6): number {
  return Number.isFinite(v) && v !== 0 ? Number(v.toPrecision(digits)) : v;
}
