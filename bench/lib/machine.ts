/** What the numbers were measured on, and how busy the machine was while they were. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memTotalMiB: number;
  node: string;
  kernel: string;
  os: string;
  /** /proc/loadavg when the run started. */
  loadavgStart: string;
  /** Processes other than ours that used more than 20 % of a CPU at the start (ps), to say whether the box was busy. */
  busyProcesses: string[];
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function describeMachine(): Machine {
  const cpuinfo = read('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const osName = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(read('/etc/os-release'))?.[1] ?? os.type();
  let nproc = os.availableParallelism?.() ?? os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    /* keep Node's count */
  }
  return {
    cpus: nproc,
    cpuModel: model.trim(),
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    kernel: os.release(),
    os: osName,
    loadavgStart: read('/proc/loadavg').trim(),
    busyProcesses: busyProcesses(),
  };
}

export function busyProcesses(): string[] {
  try {
    const out = execFileSync('ps', ['-eo', 'pid,pcpu,etimes,comm', '--sort=-pcpu', '--no-headers'], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 4 && Number(f[1]) >= 20 && Number(f[0]) !== process.pid)
      .map((f) => `${f[3]} (pid ${f[0]}, ${f[1]}% CPU averaged over its ${f[2]} s)`);
  } catch {
    return [];
  }
}

export function loadavg(): string {
  return read('/proc/loadavg').trim();
}

let clkTck: number | undefined;
/** Clock ticks per second, the unit of /proc/PID/stat CPU times. */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** Resident set now, KiB. */
  rssKiB: number;
  /** High-water mark of the resident set, KiB. */
  hwmKiB: number;
  /** User + system CPU seconds so far (process and its reaped children). */
  cpuSeconds: number;
}

/** /proc/PID/status and /proc/PID/stat of a live process; undefined once it is gone. */
export function sampleProcess(pid: number): ProcSample | undefined {
  const status = read(`/proc/${pid}/status`);
  const stat = read(`/proc/${pid}/stat`);
  if (!status || !stat) return undefined;
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s*(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  // Fields after the command (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime are fields 14–17 of stat: 11–14 after the state field (index 0 here is field 3).
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), cpuSeconds: ticks / clockTicks() };
}
