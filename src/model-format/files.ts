// The files of a model folder are checked before they are read: a model folder is client-supplied
// under Seldon Core 2 and KServe (what the storage initializer or the agent copied).
import { stat } from 'node:fs/promises';
import path from 'node:path';

/** Largest model.onnx read (Node reads at most 2 GiB into one buffer). */
export const MODEL_FILE_MAX_BYTES = 2 ** 31 - 1;
/** Largest catalog CSV (users.csv, items.csv) read. */
export const SIDE_FILE_MAX_BYTES = 256 * 1024 * 1024;
/** Largest model-settings.json read: a few keys, never megabytes. */
export const SETTINGS_FILE_MAX_BYTES = 1024 * 1024;

/**
 * A file of a model folder, checked before it is read: a regular file (a FIFO would block the load, a
 * link to /dev/zero would fill memory) no larger than `maxBytes`.
 */
export async function checkModelFile(file: string, maxBytes: number, fail: (message: string) => Error): Promise<void> {
  const s = await stat(file);
  if (!s.isFile()) throw fail(`${path.basename(file)} is not a regular file`);
  if (s.size > maxBytes) throw fail(`${path.basename(file)} is ${s.size} bytes; at most ${maxBytes} are read`);
}

