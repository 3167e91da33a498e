import { accessSync, constants, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { SpoolUnusableError } from '../errors.js';

/**
 * Checks the spool before anything is read. The root and outgoing/ must exist
 * (Asterisk creates them: if they are missing, [spool] root points at the
 * wrong place); sms/morx, sms/mttx, tmp/ and the quarantine are created.
 */
export function checkSpool(config: Config): void {
  const { spool, file } = config;
  if (spool.createMissing) mkdirSync(spool.outgoing, { recursive: true });
  const fixRoot = `set [spool] root in ${file} to Asterisk's spool directory (astspooldir in asterisk.conf, usually /var/spool/asterisk)`;
  for (const dir of [spool.root, spool.outgoing]) {
    let st;
    try {
      st = statSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES') throw new SpoolUnusableError(dir, 'permission denied; run sms-router as the user Asterisk runs as (usually asterisk)', { cause: err });
      throw new SpoolUnusableError(dir, `it does not exist; ${fixRoot}`, { cause: err });
    }
    if (!st.isDirectory()) throw new SpoolUnusableError(dir, `it is not a directory; ${fixRoot}`);
  }
  for (const dir of [spool.morx, spool.mttx, spool.tmp, spool.quarantine]) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new SpoolUnusableError(dir, `it cannot be created (${(err as NodeJS.ErrnoException).code}); create it and give it to the user running sms-router (chown asterisk:asterisk ${dir})`, { cause: err });
    }
  }
  for (const dir of [spool.morx, spool.mttx, spool.tmp, spool.outgoing, spool.quarantine]) {
    try {
      accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (err) {
      throw new SpoolUnusableError(dir, `this user may not read and write it; run sms-router as the user Asterisk runs as, or chown asterisk:asterisk ${dir}`, { cause: err });
    }
  }
  // Call files of ours left in tmp/ by a crash were never renamed in, so Asterisk never saw them.
  for (const name of readdirSync(spool.tmp)) if (name.startsWith('smsr-')) rmSync(path.join(spool.tmp, name), { force: true });
  // A call file must be renamed into outgoing/, which only works within one file system.
  if (statSync(spool.tmp).dev !== statSync(spool.outgoing).dev) {
    throw new SpoolUnusableError(spool.tmp, `it is not on the same file system as ${spool.outgoing}, so call files cannot be renamed in atomically`);
  }
}
