// Where the project's shipped files (openapi.yaml, proto/) live, from both src/ (tests) and dist/src/.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the recserve package root');
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT = findRoot();
export const OPENAPI_PATH = path.join(PACKAGE_ROOT, 'openapi.yaml');
export const PROTO_DIR = path.join(PACKAGE_ROOT, 'proto');

let version: string | null = null;
/** The package's version (package.json), read once. */
export function packageVersion(): string {
  version ??= String((JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '0.0.0');
  return version;
}
