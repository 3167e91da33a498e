/** `sms-router decode FILE...`: each file as one line of JSON, or its error. */
import { readFileSync } from 'node:fs';
import { decodeSmsFile, headerFields } from '../spool/sms-file.js';

export function decodeFiles(files: readonly string[], out: (line: string) => void): number {
  let failed = 0;
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      failed++;
      out(JSON.stringify({ file, error: { code: 'READ', reason: (err as Error).message } }));
      continue;
    }
    const r = decodeSmsFile(bytes);
    if (!r.ok) {
      failed++;
      out(JSON.stringify({ file, error: { code: r.error.code, line: r.error.line, reason: r.error.reason } }));
      continue;
    }
    const m = r.message;
    out(
      JSON.stringify({
        file,
        oa: m.oa ?? null,
        da: m.da ?? null,
        text: m.text,
        ...headerFields(m),
        ...(r.warnings.length ? { warnings: r.warnings } : {}),
      }),
    );
  }
  return failed ? 1 : 0;
}
