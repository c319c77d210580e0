// Worker threads need JavaScript. Under vitest the importing module is a .ts source file, so point at
// the compiled twin in dist/ (npm test builds first); in production the importer is already in dist/.
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

/** URL of a compiled worker script given relative to the calling module (e.g. './worker.js'). */
export function workerUrl(importMetaUrl: string, relative: string): URL {
  const here = fileURLToPath(importMetaUrl);
  if (!here.endsWith('.ts')) return new URL(relative, importMetaUrl);
  const root = findRoot(path.dirname(here));
  const compiledDir = path.join(root, 'dist', path.relative(root, path.dirname(here)));
  return pathToFileURL(path.join(compiledDir, relative));
}

function findRoot(dir: string): string {
  let d = dir;
  while (path.basename(d) !== 'src' && path.basename(d) !== 'bench' && path.dirname(d) !== d) d = path.dirname(d);
  return path.dirname(d);
}
