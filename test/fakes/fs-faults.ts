/**
 * An injected file-system fault, for a daemon run as a separate process:
 *
 *   node --import <dist>/test/fakes/fs-faults.js dist/src/main.js run ...
 *
 * with SMSR_FS_FAULT="CODE:/dir/prefix" and SMSR_FS_FAULT_FLAG=/some/file.
 * While the flag file exists, every synchronous write into a file opened for
 * writing under the prefix (and every such open, for EACCES) fails with CODE,
 * as the kernel would: ENOSPC on write(2) once the file exists (mid-write),
 * EACCES on open(2). Removing the flag file ends the fault.
 *
 * Why not the real thing: the tests run as root, which ignores permission
 * bits (so a chmod cannot produce EACCES), and chattr +i yields EPERM, not
 * EACCES; ENOSPC uses a real small tmpfs where mounting one is allowed, and
 * this layer only where it is not.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';

const spec = process.env.SMSR_FS_FAULT;
const flag = process.env.SMSR_FS_FAULT_FLAG;

if (spec && flag) {
  const at = spec.indexOf(':');
  const code = spec.slice(0, at);
  const prefix = path.resolve(spec.slice(at + 1)) + path.sep;
  const active = () => fs.existsSync(flag);
  const under = (p: fs.PathLike) => path.resolve(String(p)).startsWith(prefix);
  const writing = (flags: fs.OpenMode | undefined) =>
    typeof flags === 'number' ? (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR)) !== 0 : flags !== undefined && flags !== 'r';
  const fail = (syscall: string, p?: string): never => {
    const messages: Record<string, string> = { ENOSPC: 'no space left on device', EACCES: 'permission denied' };
    const err = new Error(`${code}: ${messages[code] ?? 'injected fault'}, ${syscall}${p ? ` '${p}'` : ''}`) as NodeJS.ErrnoException;
    err.code = code;
    err.errno = -(fs.constants as unknown as Record<string, number>)[code]! || -1;
    err.syscall = syscall;
    if (p) err.path = p;
    throw err;
  };
  const watched = new Set<number>();

  const openSync = fs.openSync;
  fs.openSync = function (p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode | null): number {
    const w = under(p) && writing(flags);
    if (w && code === 'EACCES' && active()) fail('open', String(p));
    const fd = openSync(p, flags as fs.OpenMode, mode);
    if (w) watched.add(fd);
    return fd;
  } as typeof fs.openSync;

  const closeSync = fs.closeSync;
  fs.closeSync = function (fd: number): void {
    watched.delete(fd);
    closeSync(fd);
  };

  const writeSync = fs.writeSync;
  fs.writeSync = function (fd: number, ...rest: unknown[]): number {
    if (watched.has(fd) && active()) fail('write');
    return (writeSync as (fd: number, ...a: unknown[]) => number)(fd, ...rest);
  } as typeof fs.writeSync;

  const writeFileSync = fs.writeFileSync;
  fs.writeFileSync = function (file: fs.PathOrFileDescriptor, ...rest: unknown[]): void {
    if (typeof file !== 'number' && under(file) && active()) fail(code === 'EACCES' ? 'open' : 'write', String(file));
    (writeFileSync as (f: fs.PathOrFileDescriptor, ...a: unknown[]) => void)(file, ...rest);
  } as typeof fs.writeFileSync;

  // `import { writeSync } from 'node:fs'` in the daemon sees the patched functions.
  syncBuiltinESMExports();
}
