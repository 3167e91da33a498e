/**
 * The morx side of the spool: listing, reading and quarantining what app_sms
 * wrote. Reading is defensive: no symlinks (a link in morx must not make us
 * send /etc/shadow as an SMS), no FIFOs (opening one would block), size capped.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import path from 'node:path';

export type ReadOutcome =
  | { kind: 'ok'; bytes: Buffer }
  | { kind: 'gone' }
  | { kind: 'directory' }
  | { kind: 'not-a-file'; what: string }
  | { kind: 'too-large'; size: number };

/** Finished files (no dot-files) in morx, oldest first (mtime, then name). */
export function listInbox(dir: string): string[] {
  const entries: Array<{ name: string; mtime: number }> = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    let mtime = 0;
    try {
      mtime = lstatSync(path.join(dir, name)).mtimeMs;
    } catch {
      continue; // vanished between readdir and stat: normal
    }
    entries.push({ name, mtime });
  }
  entries.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return entries.map((e) => e.name);
}

export function readInboxFile(file: string, maxBytes: number): ReadOutcome {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'gone' };
    if (code === 'ELOOP') return { kind: 'not-a-file', what: 'a symbolic link' };
    if (code === 'EISDIR') return { kind: 'directory' };
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return { kind: 'directory' };
    if (!st.isFile()) return { kind: 'not-a-file', what: 'not a regular file' };
    if (st.size > maxBytes) return { kind: 'too-large', size: st.size };
    // Read one byte more than allowed so a file that grew after fstat is caught too.
    const buf = Buffer.allocUnsafe(maxBytes + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > maxBytes) return { kind: 'too-large', size: n };
    }
    return { kind: 'ok', bytes: buf.subarray(0, n) };
  } finally {
    closeSync(fd);
  }
}

/**
 * Moves a bad file aside with a `NAME.reason` file beside it. Never deletes;
 * an existing quarantined file of the same name gets a numbered sibling.
 * Returns the quarantined path, or undefined if the file had already gone.
 */
export function quarantine(file: string, quarantineDir: string, reason: string): string | undefined {
  mkdirSync(quarantineDir, { recursive: true });
  const base = path.basename(file).replace(/^\.+/, '');
  let target = path.join(quarantineDir, base);
  for (let i = 1; existsSync(target) || existsSync(`${target}.reason`); i++) target = path.join(quarantineDir, `${base}.${i}`);
  // The reason goes first: a crash between the two leaves a reason without a
  // file (harmless) rather than a quarantined file without its reason.
  writeFileSync(`${target}.reason`, `${new Date().toISOString()} ${reason}\n`);
  try {
    renameSync(file, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return target;
}

export function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
