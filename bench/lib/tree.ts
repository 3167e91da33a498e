/**
 * A throw-away Asterisk-like spool and a config file pointing at it (the keys
 * test/helpers/spool-tree.ts uses), plus the recipient directory the corpus
 * needs. Everything lives under one temporary directory that cleanup() removes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory, type ServiceLetter } from '../../src/directory/recipients.js';

export interface BenchTree {
  dir: string;
  root: string;
  configPath: string;
  dbPath: string;
  morx: string;
  mttx: string;
  tmp: string;
  outgoing: string;
  logFile: string;
  cleanup(): void;
}

export interface TreeOptions {
  /** [spool] fsync; the daemon's default is true. */
  fsync: boolean;
  /** Port of a (fake) AMI; enables [ami]. */
  amiPort?: number;
  /** Extra TOML appended as is. */
  extraToml?: string;
}

export function makeTree(options: TreeOptions): BenchTree {
  const base = process.env.BENCH_TMPDIR ?? tmpdir();
  const dir = mkdtempSync(path.join(base, 'smsr-bench-'));
  const root = path.join(dir, 'spool');
  for (const d of ['sms/morx', 'sms/mttx', 'outgoing', 'outgoing_done', 'tmp']) mkdirSync(path.join(root, d), { recursive: true });
  mkdirSync(path.join(dir, 'log'), { recursive: true });
  const configPath = path.join(dir, 'sms-router.toml');
  const toml = [
    `[spool]\nroot = "spool"\nfsync = ${options.fsync}\n`,
    `[database]\npath = "db/sms-router.db"\n`,
    `[centre]\nreceive_number = "1000"\nsend_number = "1001"\n`,
    `[sms]\napp_log = "log/sms"\n`,
    `[agi]\nlisten = "127.0.0.1:0"\n`,
    options.amiPort !== undefined
      ? `[ami]\nenabled = true\nhost = "127.0.0.1"\nport = ${options.amiPort}\nusername = "labami"\nsecret = "labsecret123"\naction_timeout = 30\n[sip]\ndomain = "pbx.example"\n`
      : '',
    options.extraToml ?? '',
  ].join('\n');
  writeFileSync(configPath, toml);
  return {
    dir,
    root,
    configPath,
    dbPath: path.join(dir, 'db', 'sms-router.db'),
    morx: path.join(root, 'sms', 'morx'),
    mttx: path.join(root, 'sms', 'mttx'),
    tmp: path.join(root, 'tmp'),
    outgoing: path.join(root, 'outgoing'),
    logFile: path.join(dir, 'daemon.log'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The recipients of a corpus: `count` numbers of one service, each with its own channel. */
export function recipientNumbers(count: number, service: ServiceLetter): string[] {
  const prefix = service === 'T' ? '3' : '2';
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
}

/** Senders: phones on the S route too, as in a small network of analog phones. */
export function senderNumbers(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `48600${String(100000 + i)}`);
}

export function seedDirectory(tree: BenchTree, recipients: readonly string[], service: ServiceLetter, senders: readonly string[]): void {
  const db = openDatabase(tree.dbPath);
  try {
    const dir = new RecipientDirectory(db);
    dir.transaction(() => {
      // Analog phones sit behind ATAs (PJSIP) or a local context; softphones are PJSIP endpoints.
      recipients.forEach((n, i) => dir.add({ number: n, service, channel: service === 'S' && i % 2 ? `Local/${n}@phones` : `PJSIP/${n}` }));
      for (const n of senders) if (!recipients.includes(n)) dir.add({ number: n, service: 'S', channel: `PJSIP/${n}` });
    });
  } finally {
    db.close();
  }
}
