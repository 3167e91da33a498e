/**
 * The morx side of the spool: listing, reading and quarantining what app_sms
 * wrote. Reading is defensive: no symlinks (a link in morx must not make us
 * send /etc/shadow as an SMS), no FIFOs (opening one would block), size capped.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
  existsSync,
} from 'node:fs';
import path from 'node:path';
import { SPOOL_FILE_MODE, setFileMode } from './atomic-write.js';

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

// One read buffer for every file (reads are synchronous), copied out at its
// real size: a fresh max_file_size buffer per file (64 KiB by default) was
// the daemon's largest allocation per message.
let scratch: Buffer | undefined;
function scratchBuffer(size: number): Buffer {
  if (!scratch || scratch.length < size) scratch = Buffer.allocUnsafe(size);
  return scratch;
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
    const buf = scratchBuffer(maxBytes + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, maxBytes + 1 - n, null);
      if (r === 0) break;
      n += r;
      if (n > maxBytes) return { kind: 'too-large', size: n };
    }
    return { kind: 'ok', bytes: Buffer.from(buf.subarray(0, n)) };
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
  // The reason goes first: a crash between the two leaves a reason without a
  // file (harmless) rather than a quarantined file without its reason.
  // Security: created with O_EXCL | O_NOFOLLOW, so a link planted under the
  // name (existsSync says false for a dangling one) is never written through;
  // its mode is set exactly (0640), whatever the umask.
  let fd: number | undefined;
  for (let i = 1; fd === undefined; i++) {
    if (!existsSync(target)) {
      try {
        fd = openSync(`${target}.reason`, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, SPOOL_FILE_MODE);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    target = path.join(quarantineDir, `${base}.${i}`);
  }
  try {
    fchmodSync(fd, SPOOL_FILE_MODE);
    writeSync(fd, `${new Date().toISOString()} ${reason}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(file, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // The message may be private: readable by Asterisk's group at most, like every spool file we keep.
  // Never through a link (the link itself is what was quarantined), and only if it is ours to change.
  try {
    setFileMode(target, SPOOL_FILE_MODE);
  } catch {
    /* a link, a FIFO, or another user's file: left as it is */
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
