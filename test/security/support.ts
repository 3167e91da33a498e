/**
 * What the security tests share: a hostile morx file dropped the way app_sms
 * drops one, a recursive picture of a directory tree (to prove nothing was
 * written where it should not be), and a path outside every test tree that
 * a traversal would have to reach.
 */
import { lstatSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Daemon } from '../../src/daemon.js';

/** Writes `morx/.NAME` then renames it to `NAME`, as app_sms does. */
export function dropMorx(morx: string, name: string, content: string | Buffer): void {
  writeFileSync(path.join(morx, `.${name}`), content);
  renameSync(path.join(morx, `.${name}`), path.join(morx, name));
}

/** Every entry under `dir` (relative paths; directories end in '/'); symlinks are not followed. */
export function tree(dir: string): Set<string> {
  const out = new Set<string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const r = path.join(rel, name);
      const st = lstatSync(path.join(dir, r));
      if (st.isDirectory()) {
        out.add(`${r}/`);
        walk(r);
      } else out.add(r);
    }
  };
  walk('');
  return out;
}

/** Entries that appeared under `dir` since `before`, outside the `allowed` directories (relative, no trailing '/'). */
export function writtenOutside(dir: string, before: Set<string>, allowed: readonly string[]): string[] {
  return [...tree(dir)].filter((e) => !before.has(e) && !e.endsWith('/') && !allowed.includes(path.dirname(e)));
}

/** A path in the system temp directory, outside every spool tree, that must never come to exist. */
export function sentinelPath(label: string): string {
  return path.join(tmpdir(), `smsr-security-${label}-${randomBytes(6).toString('hex')}`);
}

/** The same sentinel, reached by `../` from a directory that is `depth` levels deep. */
export function traversalTo(sentinel: string, depth = 12): string {
  return `${'../'.repeat(depth)}${sentinel.replace(/^\/+/, '')}`;
}

export interface Row {
  id: number;
  kind: string;
  oa: string;
  da: string;
  text: string;
  state: string;
  route: string | null;
  lastError: string | null;
}

export function rows(daemon: Daemon): Row[] {
  return daemon.db
    .prepare(`SELECT id, kind, oa, da, text, state, route, last_error AS lastError FROM messages ORDER BY id`)
    .all() as Row[];
}

/** Names Asterisk may find in sms/mttx (QUEUE.ID-PART, QUEUE = digits or '-' digits) and outgoing/. */
export const SAFE_MTTX_NAME = /^-?[0-9]{1,19}\.[0-9]+-[0-9]+$/;
export const SAFE_CALL_NAME = /^smsr-(?:S-[0-9-]{1,20}-[0-9]+|[FV]-[0-9]+-a[0-9]+)\.call$/;
