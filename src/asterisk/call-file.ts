/**
 * Asterisk call files (pbx_spool). Rendering is pure; the writer stages the
 * file in tmp/ and renames it into outgoing/, and never opens anything inside
 * outgoing/ afterwards (pbx_spool can hang on a file opened there, SPEC §1).
 */
import { CallFileUnsafeError } from '../errors.js';

export interface CallFile {
  channel: string;
  callerId: string;
  maxRetries: number;
  retryTime: number;
  waitTime: number;
  archive: boolean;
  application: string;
  data: string;
  account?: string;
  /** `Set:` lines, name → value. */
  variables?: Readonly<Record<string, string>>;
}

// Any control character would end the line and let the rest become a new key.
const UNSAFE = /[\u0000-\u001f\u007f]/;

function line(key: string, value: string | number): string {
  const text = String(value);
  if (UNSAFE.test(text) || UNSAFE.test(key)) throw new CallFileUnsafeError(key);
  return `${key}: ${text}\n`;
}

export function renderCallFile(call: CallFile): string {
  let out =
    line('Channel', call.channel) +
    line('CallerID', call.callerId) +
    line('MaxRetries', call.maxRetries) +
    line('RetryTime', call.retryTime) +
    line('WaitTime', call.waitTime);
  if (call.account !== undefined) out += line('Account', call.account);
  out += line('Archive', call.archive ? 'yes' : 'no');
  out += line('Application', call.application) + line('Data', call.data);
  for (const [name, value] of Object.entries(call.variables ?? {})) {
    if (name.includes('=')) throw new CallFileUnsafeError(`Set ${name}`);
    out += line('Set', `${name}=${value}`);
  }
  return out;
}

/** Parses a call file as Asterisk archives it (used for outgoing_done and by tests). */
export function parseCallFile(text: string): { fields: Array<[string, string]>; get(key: string): string | undefined } {
  const fields: Array<[string, string]> = [];
  for (const raw of text.split(/\r?\n/)) {
    const l = raw.trim();
    if (!l || l.startsWith('#') || l.startsWith(';')) continue;
    const i = l.indexOf(':');
    if (i <= 0) continue;
    fields.push([l.slice(0, i).trim(), l.slice(i + 1).trim()]);
  }
  return {
    fields,
    get(key: string) {
      const k = key.toLowerCase();
      let found: string | undefined;
      for (const [name, value] of fields) if (name.toLowerCase() === k) found = value;
      return found;
    },
  };
}
