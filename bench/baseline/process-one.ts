/**
 * Baseline (a) of `npm run bench`, when python3 is not installed: the same
 * file work as bench/baseline/process-one.py (see there), as a Node script
 * started once per message.
 *
 *   node dist/bench/baseline/process-one.js MORX_FILE MTTX_DIR TMP_DIR OUTGOING_DIR FSYNC(0|1)
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

function write(file: string, data: string, fsync: boolean): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, data);
    if (fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const [morxFile, mttxDir, tmpDir, outgoingDir, fsyncArg] = process.argv.slice(2) as [string, string, string, string, string];
const fsync = fsyncArg === '1';
const fields = new Map<string, string>();
for (const line of readFileSync(morxFile, 'utf8').split('\n')) {
  const m = /^([a-z#]+)=(.*)$/.exec(line);
  if (m) fields.set(m[1]!, m[2]!);
}
const queue = fields.get('da') ?? '0';
const name = `${queue}.${path.basename(morxFile).split('.').slice(1).join('.')}`;
const lines = [`oa=${fields.get('oa') ?? ''}`, ...(fields.has('udh#') ? [`udh#${fields.get('udh#')}`] : []), `ud=${fields.get('ud') ?? ''}`];
if (fields.has('scts')) lines.push(`scts=${fields.get('scts')}`);
write(path.join(mttxDir, `.${name}`), `${lines.join('\n')}\n`, fsync);
renameSync(path.join(mttxDir, `.${name}`), path.join(mttxDir, name));
const staged = path.join(tmpDir, `smsq.mttx.${queue}`);
write(staged, `Channel: Local/${queue}@phones\nCallerID: SMS <1001>\nMaxRetries: 3\nRetryTime: 60\nWaitTime: 30\nApplication: SMS\nData: ${queue},s\n`, fsync);
renameSync(staged, path.join(outgoingDir, `smsq.mttx.${queue}`));
unlinkSync(morxFile);
