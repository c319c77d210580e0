// Where the project's shipped files (openapi.yaml, proto/) live, from both src/ (tests) and dist/src/.
import { existsSync } from 'node:fs';
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
