/**
 * Running the external programs speech needs (espeak-ng, sox, the gtts
 * worker) without a shell and without letting any of them hang, flood or
 * crash the daemon.
 *
 * - Argument arrays only: nothing is ever parsed by a shell, so message text
 *   (`$(rm -rf /)`, quotes, `;`) can only ever be data.
 * - A minimal environment (PATH only) by default: the daemon's secrets and
 *   locale quirks do not leak into helpers, and results do not depend on them.
 * - A hard deadline: SIGTERM, then SIGKILL after a short grace; the promise
 *   settles even if the program ignores both.
 * - Bounded capture: a runaway program cannot exhaust memory.
 */
import { spawn } from 'node:child_process';

/** Why a program could not be run to completion. Codes are stable (logs, `.reason` files). */
export type ProcessErrorCode = 'PROCESS_MISSING' | 'PROCESS_TIMEOUT' | 'PROCESS_OUTPUT_LIMIT' | 'PROCESS_ABORTED';

export class ProcessError extends Error {
  readonly code: ProcessErrorCode;
  constructor(
    code: ProcessErrorCode,
    readonly file: string,
    message: string,
    readonly stderr = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.name = 'ProcessError';
  }
}

export interface RunOptions {
  timeoutMs: number;
  /** Written to the program's standard input, which is then closed. Without it stdin is /dev/null. */
  input?: Buffer | string;
  /** The whole environment of the program (default: PATH only). */
  env?: Record<string, string>;
  /** Most bytes of stdout kept; more kills the program (default 16 MiB). stderr keeps at most 64 KiB. */
  maxOutputBytes?: number;
  signal?: AbortSignal;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
}

const KILL_GRACE_MS = 500;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;
const MAX_STDERR = 64 * 1024;

export function minimalEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
}

/**
 * Runs `file` with `args` and resolves with how it ended, whatever its exit
 * status (callers decide what a non-zero code means). Rejects only with a
 * ProcessError: missing program, timeout, output limit, abort.
 */
export function runProcess(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const maxOut = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    if (options.signal?.aborted) {
      reject(new ProcessError('PROCESS_ABORTED', file, `${file}: aborted before it started`));
      return;
    }
    const child = spawn(file, [...args], {
      env: options.env ?? minimalEnv(),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
      // Its own process group, so a timeout kills what it started too (a script's sleep, a pipeline).
      detached: true,
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        child.kill(signal);
      }
    };

    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let failure: ProcessError | undefined;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let forceTimer: NodeJS.Timeout | undefined;

    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(killTimer);
      clearTimeout(forceTimer);
      options.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    // Stop the program; settle with `why` once it is gone (or, if something
    // keeps its pipes open, shortly after SIGKILL regardless).
    const stop = (why: ProcessError) => {
      if (failure || settled) return;
      failure = why;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => {
        killGroup('SIGKILL');
        forceTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          settle(() => reject(why));
        }, KILL_GRACE_MS);
      }, KILL_GRACE_MS);
    };

    const deadline = setTimeout(
      () => stop(new ProcessError('PROCESS_TIMEOUT', file, `${file}: no result after ${options.timeoutMs} ms`, err)),
      options.timeoutMs,
    );
    const onAbort = () => stop(new ProcessError('PROCESS_ABORTED', file, `${file}: aborted`, err));
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout!.on('data', (chunk: Buffer) => {
      if (failure) return;
      outBytes += chunk.length;
      if (outBytes > maxOut) {
        stop(new ProcessError('PROCESS_OUTPUT_LIMIT', file, `${file}: more than ${maxOut} bytes of output`, err));
        return;
      }
      out.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      // Diagnostics only: the beginning is what explains a failure; keep reading so the program never blocks.
      if (err.length < MAX_STDERR) err += chunk.toString('utf8').slice(0, MAX_STDERR - err.length);
    });

    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'EACCES') {
        settle(() => reject(new ProcessError('PROCESS_MISSING', file, `${file}: program not found or not executable`, '', { cause: e })));
      } else if (!child.pid) {
        settle(() => reject(new ProcessError('PROCESS_MISSING', file, `${file}: cannot start: ${e.message}`, '', { cause: e })));
      }
      // Errors after a successful start (e.g. kill failing) are followed by 'close'.
    });
    child.on('close', (code, signal) => {
      settle(() => {
        if (failure) {
          failure = new ProcessError(failure.code, file, failure.message, err, { cause: failure.cause });
          reject(failure);
        } else {
          resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
        }
      });
    });

    if (options.input !== undefined && child.stdin) {
      // A program that exits without reading its input gives EPIPE here: that is
      // its exit status's business, never an unhandled error in the daemon.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}

/** The first line of a program's stderr, for one-line error messages. */
export function firstLine(stderr: string): string {
  const line = stderr.split('\n').find((l) => l.trim() !== '');
  return line ? line.trim().slice(0, 300) : '';
}
