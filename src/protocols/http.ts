// What every protocol's REST handlers share about an HTTP exchange: a signal that fires when the
// client goes away, and a JSON-object body read with the same depth and size checks as any body.
import type http from 'node:http';
import type { Request } from 'express';
import type { Limits } from '../config/limits.js';
import { badData } from '../errors.js';
import { parseJsonText } from './json.js';

/** Aborted when the response closes before it was written: the client went away. */
export function abortOnClose(res: http.ServerResponse): AbortSignal {
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  return abort.signal;
}

/** A JSON object body; `empty` is what an empty body reads as, if one is allowed. */
export function readJsonObject(req: Request, limits: Limits, what: string, empty?: Record<string, unknown>): Record<string, unknown> {
  const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  if (text.trim().length === 0) {
    if (empty) return empty;
    throw badData(`the ${what} is empty; send a JSON object`);
  }
  const v = parseJsonText(text, what, limits.maxJsonDepth, '', limits.maxJsonValues);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badData(`the ${what} must be a JSON object`);
  return v as Record<string, unknown>;
}
