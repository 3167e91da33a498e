/**
 * The rename discipline Asterisk itself follows: a file appears under its
 * final name only when it is complete. Readers (app_sms, pbx_spool) never see
 * half a file, and a crash leaves at worst a dot-file or a file in tmp/.
 */
import { closeSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface WriteOptions {
  /** Modification time to give the file before it is renamed in (pbx_spool waits for a future mtime). */
  mtime?: Date;
  /** fsync the data before the rename, so a power cut cannot leave an empty file under the final name. */
  fsync: boolean;
  mode?: number;
}

function writeWhole(file: string, data: Uint8Array, options: WriteOptions, flags: string): void {
  const fd = openSync(file, flags, options.mode ?? 0o664);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    if (options.fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `dir/.name` then renames it to `dir/name` (replacing an older file of that name). */
export function writeViaDotFile(dir: string, name: string, data: Uint8Array, options: WriteOptions): string {
  const final = path.join(dir, name);
  const temp = path.join(dir, `.${name}`);
  writeWhole(temp, data, options, 'w');
  renameSync(temp, final);
  return final;
}

/** Writes `stagingDir/name` then renames it into `targetDir/name` (both must be on one file system). */
export function writeViaStaging(stagingDir: string, targetDir: string, name: string, data: Uint8Array, options: WriteOptions): string {
  const temp = path.join(stagingDir, name);
  const final = path.join(targetDir, name);
  writeWhole(temp, data, options, 'w');
  if (options.mtime) utimesSync(temp, options.mtime, options.mtime);
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
  writeWhole(temp, data, options, 'w');
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
