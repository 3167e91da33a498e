/**
 * A throw-away Asterisk-like spool and a config file pointing at it, for tests
 * that run the real daemon on real directories and a real SQLite file.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseConfig, type Config } from '../../src/config.js';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface SpoolTree {
  dir: string;
  root: string;
  configPath: string;
  config: Config;
  morx: string;
  mttx: string;
  outgoing: string;
  quarantine: string;
  dbPath: string;
  cleanup(): void;
}

export function makeSpoolTree(extraToml = '', options: { createOutgoing?: boolean } = {}): SpoolTree {
  const dir = mkdtempSync(path.join(tmpdir(), 'smsr-'));
  const root = path.join(dir, 'spool');
  mkdirSync(path.join(root, 'sms', 'morx'), { recursive: true });
  if (options.createOutgoing !== false) mkdirSync(path.join(root, 'outgoing'), { recursive: true });
  const configPath = path.join(dir, 'sms-router.toml');
  const hasSection = (name: string) => new RegExp(`^\\[${name}\\]`, 'm').test(extraToml);
  const toml = [
    hasSection('spool') ? '' : `[spool]\nroot = "spool"\nfsync = false\nrescan_interval = 1\n`,
    `[database]\npath = "db/sms-router.db"\n`,
    hasSection('centre') ? '' : `[centre]\nreceive_number = "1000"\nsend_number = "1001"\n`,
    hasSection('agi') ? '' : `[agi]\nlisten = "127.0.0.1:0"\n`,
    extraToml,
  ].join('\n');
  writeFileSync(configPath, toml);
  const config = parseConfig(configPath, toml);
  return {
    dir,
    root,
    configPath,
    config,
    morx: config.spool.morx,
    mttx: config.spool.mttx,
    outgoing: config.spool.outgoing,
    quarantine: config.spool.quarantine,
    dbPath: config.database.path,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Non-dot files of a directory (what Asterisk would see). */
export function visibleFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
}

export function readText(file: string): string {
  return readFileSync(file, 'utf8');
}

export interface Spawned {
  child: ChildProcess;
  lines: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stdout line that matches. */
  waitForLine(test: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

export interface CliOptions {
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Run as another user (the test must be root to use these). */
  uid?: number;
  gid?: number;
}

export function spawnCli(args: string[], options: { input?: string } & CliOptions = {}): Spawned {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env, uid: options.uid, gid: options.gid });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<{ test: (l: string) => boolean; resolve: (l: string) => void }> = [];
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => stderr.push(c));
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr,
    exited,
    waitForLine(test, timeoutMs = 60_000) {
      const found = lines.find(test);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${stderr.join('')}`)), timeoutMs);
        waiters.push({
          test,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`process exited before a matching line; stderr: ${stderr.join('')}`));
        });
      });
    },
  };
}

/** Runs the CLI to completion. */
export async function runCli(args: string[], input?: string, options: CliOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const s = spawnCli(args, { input, ...options });
  const { code } = await s.exited;
  // Let the last 'data' events land.
  await new Promise((r) => setImmediate(r));
  return { code, stdout: s.lines.join('\n'), stderr: s.stderr.join('') };
}

/** Polls until `check` returns true (no fixed sleeps in tests). */
export async function waitUntil(check: () => boolean, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
