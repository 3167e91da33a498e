/**
 * The real, built daemon as a child process (`node dist/src/main.js run`),
 * its log in a file (as journald would take it), and what /proc says of it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sampleProcess, type ProcSample } from './machine.js';
import { monoMs, sleep } from './stats.js';
import type { BenchTree } from './tree.js';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface RunningDaemon {
  child: ChildProcess;
  pid: number;
  /** monoMs() just before spawn. */
  startedAt: number;
  /** Date.now() just before spawn (file times are on this clock). */
  startedAtWall: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The highest VmRSS seen by the sampler, KiB. */
  maxSampledRssKiB(): number;
  sample(): ProcSample | undefined;
  /** Resolves when the log says the daemon watches the spool. */
  ready(timeoutMs?: number): Promise<number>;
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
  log(): string;
}

export interface SpawnOptions {
  /** Another build's dist/src/main.js (A/B comparisons: `--main`). */
  main?: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  nodeArgs?: string[];
  /** How often to sample VmRSS (ms); 0 for never. */
  sampleEveryMs?: number;
}

export function spawnDaemon(tree: BenchTree, options: SpawnOptions = {}): RunningDaemon {
  const out = openSync(tree.logFile, 'a');
  const startedAtWall = Date.now();
  const startedAt = monoMs();
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.main ?? MAIN, 'run', '--config', tree.configPath], {
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const pid = child.pid!;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  let maxRss = 0;
  const every = options.sampleEveryMs ?? 250;
  const timer = every > 0
    ? setInterval(() => {
        const s = sampleProcess(pid);
        if (s && s.rssKiB > maxRss) maxRss = s.rssKiB;
      }, every)
    : undefined;
  timer?.unref();
  void exited.then(() => timer && clearInterval(timer));
  const log = () => {
    try {
      return readFileSync(tree.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    child,
    pid,
    startedAt,
    startedAtWall,
    exited,
    maxSampledRssKiB: () => maxRss,
    sample: () => sampleProcess(pid),
    log,
    async ready(timeoutMs = 60_000) {
      const deadline = monoMs() + timeoutMs;
      for (;;) {
        if (log().includes('"watching the spool"')) return monoMs();
        if (gone) throw new Error(`the daemon exited before it was ready:\n${log().slice(-2000)}`);
        if (monoMs() > deadline) throw new Error(`the daemon was not ready within ${timeoutMs} ms:\n${log().slice(-2000)}`);
        await sleep(20);
      }
    },
    async stop(graceMs = 30_000) {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
