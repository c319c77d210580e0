// Where the benchmarks find MovieLens 100K when --data is not given: data/ml-100k in the checkout (the
// README's download step puts it there; git ignores it, the licence forbids redistribution), else a
// shared datasets folder beside the checkout.
import { existsSync } from 'node:fs';
import path from 'node:path';

export function defaultMl100kDir(root: string): string {
  const local = path.join(root, 'data', 'ml-100k');
  return existsSync(local) ? local : path.join(root, '..', 'shared', 'datasets', 'ml-100k');
}
