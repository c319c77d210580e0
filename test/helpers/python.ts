// Runs an independent Python gRPC client (Debian's python3 with grpcio) asynchronously — the server under
// test runs in this process — and reads its one-JSON-line-per-call output, keyed by each line's `name`.
import { spawn } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

export function runPythonCalls(args: string[]): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, args);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`python exited ${code}: ${stderr}`));
      resolve(Object.fromEntries(stdout.trim().split('\n').map((l) => JSON.parse(l)).map((r) => [r.name, r])));
    });
  });
}
