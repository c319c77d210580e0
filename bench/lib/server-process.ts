// Starts the real server as a separate process (`node dist/src/cli/index.js serve --model DIR`), the
// way a container would, on free loopback ports; waits for /ready; samples its RSS and CPU from /proc.
// The server may come from another built checkout (serverDir), so one script can measure an older
// commit and this one in the same way.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

export interface ServerProcessOptions {
  modelDir: string;
  dataDir: string;
  /** Extra environment (RECSERVE_WORKERS, LOG_LEVEL, ...). */
  env?: Record<string, string>;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=DIR']. */
  nodeFlags?: string[];
  /** The server's stdout/stderr go here (its JSON logs). */
  logFile: string;
  /** A built recserve checkout whose dist/src/cli/index.js is run; default this package. */
  serverDir?: string;
  /** Set the server's open-file limit (soft and hard) to this, with prlimit; needs root to pass the hard limit. */
  openFileLimit?: number;
}

export interface ServerProcess {
  pid: number;
  ports: { http: number; grpc: number; metrics: number };
  base: string;
  child: ChildProcess;
  /** Resident set size of the whole process (all threads), MB. */
  rssMb(): number;
  /** CPU seconds (user + system) used so far by the whole process. */
  cpuSeconds(): number;
  /** CPU seconds of the main (event-loop) thread alone: HTTP, gRPC, JSON, logs, metrics. */
  mainThreadCpuSeconds(): number;
  /** Per-thread CPU seconds, by thread name (main thread is the process name; workers show as "node" too). */
  threadCpu(): { tid: number; name: string; cpuSeconds: number }[];
  /** Open file descriptors of the process, and how many of them are sockets. */
  openFds(): { total: number; sockets: number };
  stop(): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const ports = { http: await freePort(), grpc: await freePort(), metrics: await freePort() };
  const out = openSync(opts.logFile, 'a');
  const entry = path.join(opts.serverDir ?? PACKAGE_ROOT, 'dist/src/cli/index.js');
  if (!existsSync(entry)) throw new Error(`${entry} does not exist; run npm run build in ${opts.serverDir ?? PACKAGE_ROOT}`);
  const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), entry, 'serve', '--model', opts.modelDir], {
    env: {
      ...process.env,
      PREDICTIVE_UNIT_HTTP_SERVICE_PORT: String(ports.http),
      PREDICTIVE_UNIT_GRPC_SERVICE_PORT: String(ports.grpc),
      PREDICTIVE_UNIT_METRICS_SERVICE_PORT: String(ports.metrics),
      RECSERVE_HOST: '127.0.0.1',
      RECSERVE_DATA_DIR: opts.dataDir,
      ...opts.env,
    },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  if (opts.openFileLimit !== undefined) setOpenFileLimit(child.pid!, opts.openFileLimit);
  const base = `http://127.0.0.1:${ports.http}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode} while starting; see ${opts.logFile}`);
    try {
      const r = await fetch(`${base}/ready`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not become ready in 180 s; see ${opts.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  const clk = 100; // USER_HZ on Linux
  return {
    pid,
    ports,
    base,
    child,
    rssMb: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    cpuSeconds: () => cpuOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), clk),
    mainThreadCpuSeconds: () => cpuOfStat(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'), clk),
    threadCpu: () => threadCpu(pid, clk),
    openFds: () => openFds(pid),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

function cpuOfStat(stat: string, clk: number): number {
  // Fields after the parenthesised command name: utime is the 14th field, stime the 15th.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / clk;
}

function threadCpu(pid: number, clk: number): { tid: number; name: string; cpuSeconds: number }[] {
  const out: { tid: number; name: string; cpuSeconds: number }[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out.push({ tid: Number(tid), name, cpuSeconds: cpuOfStat(stat, clk) });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/**
 * Sets a process's open-file limit (soft and hard) with prlimit(1); returns the soft limit in force
 * afterwards. Raising the hard limit needs root (CAP_SYS_RESOURCE); otherwise the limit stays.
 */
export function setOpenFileLimit(pid: number, limit: number): number {
  try {
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`], { stdio: 'ignore' });
  } catch {
    // not permitted, or no prlimit: report what is in force
  }
  return openFileLimit(pid);
}

/** Raises (never lowers) a process's open-file limit; returns the soft limit in force afterwards. */
export function raiseOpenFileLimit(pid: number, limit: number): number {
  const now = openFileLimit(pid);
  return now >= limit ? now : setOpenFileLimit(pid, limit);
}

/** The soft open-file limit of a process, from /proc/<pid>/limits. */
export function openFileLimit(pid: number): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m === null ? NaN : m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

function openFds(pid: number): { total: number; sockets: number } {
  let total = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    total++;
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  return { total, sockets };
}
