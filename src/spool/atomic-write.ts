/**
 * The rename discipline Asterisk itself follows: a file appears under its
 * final name only when it is complete. Readers (app_sms, pbx_spool) never see
 * half a file, and a crash leaves at worst a dot-file or a file in tmp/.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, futimesSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';

export interface WriteOptions {
  /** Modification time to give the file before it is renamed in (pbx_spool waits for a future mtime). */
  mtime?: Date;
  /** fsync the data before the rename, so a power cut cannot leave an empty file under the final name. */
  fsync: boolean;
  /** Exact mode of the file, whatever the umask (default SPOOL_FILE_MODE). */
  mode?: number;
}

/**
 * Security: what Asterisk needs and no wider. Spool files (mttx, morx, TIFF,
 * WAV, quarantine) are only read by Asterisk's group: 0640. Call files 0660:
 * pbx_spool appends StartRetry/EndRetry/Status lines to them. The mode is set
 * with fchmod, so a permissive umask (0000) cannot widen it (THREATS.md).
 */
export const SPOOL_FILE_MODE = 0o640;
export const CALL_FILE_MODE = 0o660;

// Security: the spool directories (sms/mttx, tmp/, sms/morx) are writable by
// Asterisk's whole group. A member could plant a symlink (or a hard link) under
// the temporary name we are about to use, and a plain open('w') would write
// the message through it into any file this user may write (the database,
// Asterisk's config). So the temporary name is removed first and created with
// O_EXCL | O_NOFOLLOW: only a new, regular file of our own is ever written.
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function createOwn(file: string, mode: number): number {
  for (let attempt = 0; ; attempt++) {
    try {
      return openSync(file, CREATE_NEW, mode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EEXIST: something sits under the name (a stale temp file, or a planted link): remove it, try again.
      if (code !== 'EEXIST' || attempt >= 3) throw err;
      try {
        unlinkSync(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
}

function writeWhole(file: string, data: Uint8Array, options: WriteOptions): void {
  const mode = options.mode ?? SPOOL_FILE_MODE;
  const fd = createOwn(file, mode);
  try {
    fchmodSync(fd, mode); // open()'s mode is narrowed by the umask; this makes it exact
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    // Through the descriptor, not the name: the name could be swapped for a link meanwhile.
    if (options.mtime) futimesSync(fd, options.mtime, options.mtime);
    if (options.fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Sets the exact mode of a file we produced by other means (sox's WAV, a
 * quarantined morx file) without following a symbolic link; false when `file`
 * is not a regular file (a link, a FIFO) and was left alone.
 */
export function setFileMode(file: string, mode: number): boolean {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) return false;
    fchmodSync(fd, mode);
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * Many files written the writeViaDotFile way, for a batch of messages: every
 * `dir/.name` is written first; then, with fsync, all of them are synced
 * together on libuv's threads; only then is each renamed to `dir/name`
 * (renameIn, in the caller's order). As with writeViaDotFile, no file appears
 * under its final name before its data is on disk; but N fsyncs issued
 * together cost about what two or three in a row do, because the file system
 * commits them in one journal transaction.
 */
export class DotFileBatch {
  private readonly staged: Array<{ temp: string; final: string }> = [];

  constructor(
    private readonly dir: string,
    private readonly options: WriteOptions,
  ) {}

  /** Writes `dir/.name`, not visible yet; returns the index to pass to renameIn. */
  add(name: string, data: Uint8Array): number {
    const temp = path.join(this.dir, `.${name}`);
    writeWhole(temp, data, { ...this.options, fsync: false });
    return this.staged.push({ temp, final: path.join(this.dir, name) }) - 1;
  }

  /** With fsync: every written file's data reaches the disk (at most `parallel` at a time). */
  async sync(parallel = 32): Promise<void> {
    if (!this.options.fsync) return;
    let next = 0;
    const worker = async () => {
      while (next < this.staged.length) {
        const file = this.staged[next++]!;
        // Reopened read-only (fsync works on any descriptor), so a large batch never holds hundreds of them.
        const handle = await open(file.temp, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, this.staged.length) }, worker));
  }

  /** Renames one written (and synced) file into place; returns its final path. */
  renameIn(index: number): string {
    const file = this.staged[index]!;
    renameSync(file.temp, file.final);
    return file.final;
  }
}

/** Writes `dir/.name` then renames it to `dir/name` (replacing an older file of that name). */
export function writeViaDotFile(dir: string, name: string, data: Uint8Array, options: WriteOptions): string {
  const final = path.join(dir, name);
  const temp = path.join(dir, `.${name}`);
  writeWhole(temp, data, options);
  renameSync(temp, final);
  return final;
}

/** Writes `stagingDir/name` then renames it into `targetDir/name` (both must be on one file system). */
export function writeViaStaging(stagingDir: string, targetDir: string, name: string, data: Uint8Array, options: WriteOptions): string {
  const temp = path.join(stagingDir, name);
  const final = path.join(targetDir, name);
  writeWhole(temp, data, options);
  renameSync(temp, final);
  return final;
}

/**
 * Writes a dot-file then links it to `name` only if `name` does not exist yet
 * (link fails with EEXIST where rename would silently replace). Returns false
 * when the name is taken, so the caller can pick another.
 */
export function writeNewViaDotFile(dir: string, name: string, data: Uint8Array, options: WriteOptions): boolean {
  const final = path.join(dir, name);
  const temp = path.join(dir, `.${name}.${process.pid}`);
  writeWhole(temp, data, options);
  try {
    linkSync(temp, final);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(temp);
  }
}
