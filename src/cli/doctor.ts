/**
 * `sms-router doctor [--config FILE]`: everything the daemon needs from the
 * machine, checked in the order an installer meets the problems, each as one
 * line a person can act on:
 *
 *   PASS name: what was found
 *   WARN name: what is odd but does not stop the daemon — fix: how to fix it
 *   FAIL name: what is wrong — fix: how to fix it
 *
 * then `doctor: N checks passed, W warnings, M failed`. Exit code 0 when
 * nothing failed, 1 otherwise (2 for a wrong command line, from main).
 *
 * Doctor changes nothing: no directory is created, the database is read
 * without being written or migrated (see openReadOnly). What it does leave behind for a moment: a probe
 * directory in each spool directory (removed at once), a rendered test fax in
 * a temporary directory (removed), one AMI login/logoff, and, when the FastAGI
 * port is taken, one FastAGI request that a running sms-router answers by
 * hanging up (it logs a warning about message 0).
 */
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { loadConfig, type Config } from '../config.js';
import { ConfigError, UsageError, errorMessage } from '../errors.js';
import { SCHEMA_VERSION } from '../journal/migrations.js';
import { schemaVersion, type Db } from '../journal/store.js';
import { AmiParser, encodeAction, type AmiMessage } from '../asterisk/ami/framing.js';
import { faxHeader, renderFax } from '../render/fax-tiff.js';
import { readTiffPages } from '../render/tiff-tags.js';
import { RecipientDirectory, type ServiceLetter } from '../directory/recipients.js';
import { isValidChannel } from '../numbers.js';
import type { CliIo } from './users.js';

export const DOCTOR_USAGE = 'usage: sms-router doctor [--config FILE]';

export type CheckStatus = 'PASS' | 'WARN' | 'FAIL';

export interface CheckResult {
  status: CheckStatus;
  name: string;
  detail: string;
  /** What to do about a WARN or FAIL; never set on PASS. */
  fix?: string;
}

export interface DoctorEnv {
  /** Where espeak-ng and sox are looked for: the daemon runs them through its own PATH (render/exec.ts). */
  PATH?: string;
  /** The config file when --config is not given (main's DEFAULT_CONFIG). */
  defaultConfig?: string;
}

/** Network probes give up after this: a PBX that takes longer to greet is as good as down for the daemon. */
const NETWORK_TIMEOUT_MS = 3_000;
/** What the daemon uses when PATH is unset (render/exec.ts minimalEnv). */
const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin';
const FALLBACK_CONFIG = '/etc/sms-router/sms-router.toml';

const pass = (name: string, detail: string): CheckResult => ({ status: 'PASS', name, detail });
const warn = (name: string, detail: string, fix: string): CheckResult => ({ status: 'WARN', name, detail, fix });
const fail = (name: string, detail: string, fix: string): CheckResult => ({ status: 'FAIL', name, detail, fix });

export function formatResult(r: CheckResult): string {
  return r.fix === undefined ? `${r.status} ${r.name}: ${r.detail}` : `${r.status} ${r.name}: ${r.detail} — fix: ${r.fix}`;
}

export async function runDoctor(args: string[], io: CliIo, env: DoctorEnv = { PATH: process.env.PATH }): Promise<number> {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    throw new UsageError(`${errorMessage(err)}; ${DOCTOR_USAGE}`);
  }
  if (values.help) {
    io.stdout(`${DOCTOR_USAGE}\n`);
    return 0;
  }
  const counts = { PASS: 0, WARN: 0, FAIL: 0 };
  const report = (r: CheckResult) => {
    counts[r.status]++;
    io.stdout(`${formatResult(r)}\n`);
  };
  const summary = (extra = '') => {
    // Not "N passed, M failed": CI's test-output reader would take this for a test run's summary.
    const warnings = `${counts.WARN} warning${counts.WARN === 1 ? '' : 's'}`;
    io.stdout(`doctor: ${counts.PASS} check${counts.PASS === 1 ? '' : 's'} passed, ${warnings}, ${counts.FAIL} failed${extra}\n`);
  };

  const configFile = values.config ?? env.defaultConfig ?? FALLBACK_CONFIG;
  let cfg: Config;
  try {
    cfg = loadConfig(configFile);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Every other check reads the config: there is nothing more to say.
    const fix =
      err.key === '(file)'
        ? `create ${err.file} (config/sms-router.example.toml documents every key), or name another file with --config FILE`
        : `edit ${err.file} at ${err.key} (config/sms-router.example.toml documents every key)`;
    report(fail('config', err.message, fix));
    summary('; the other checks need a valid config');
    return 1;
  }
  report(pass('config', `${cfg.file} is valid`));

  // Fix commands name the config file unless it is the one they would read anyway;
  // absolute, so they work from any directory, and quoted when the shell would split it.
  const configArg = values.config === undefined ? '' : ` --config ${/^[A-Za-z0-9_./+:=@-]+$/.test(cfg.file) ? cfg.file : `'${cfg.file.replace(/'/g, `'\\''`)}'`}`;
  const ctx: Context = { cfg, configArg, pathVar: env.PATH ?? FALLBACK_PATH, db: undefined, dbUnreadable: undefined, cleanups: [] };
  const checks: Array<(c: Context) => CheckResult | CheckResult[] | Promise<CheckResult | CheckResult[]>> = [
    checkUser,
    checkSpoolDirectories,
    checkSameFileSystem,
    checkDatabase,
    checkAmi,
    checkFastAgi,
    checkHttp,
    checkOtherPaths,
    checkSpeechPrograms,
    checkFaxRender,
    checkDirectory,
  ];
  try {
    for (const check of checks) {
      let results: CheckResult | CheckResult[];
      try {
        results = await check(ctx);
      } catch (err) {
        // A check that breaks must not hide the ones after it.
        results = fail(check.name.replace(/^check/, '').toLowerCase(), `the check itself failed: ${errorMessage(err)}`, 'report this as a bug in sms-router doctor');
      }
      for (const r of Array.isArray(results) ? results : [results]) report(r);
    }
  } finally {
    ctx.db?.close();
    for (const cleanup of ctx.cleanups) cleanup();
  }
  summary();
  return counts.FAIL > 0 ? 1 : 0;
}

interface Context {
  cfg: Config;
  configArg: string;
  pathVar: string;
  /** The journal, read-only, once checkDatabase opened it (the directory check reads it). */
  db: Db | undefined;
  /** Why the database could not be read, when it exists but could not be opened. */
  dbUnreadable: string | undefined;
  /** Temporary files to remove at the end, after the database is closed. */
  cleanups: Array<() => void>;
}

// ─── the user ────────────────────────────────────────────────────────────────

function checkUser(): CheckResult {
  const uid = process.getuid?.();
  let name = String(uid);
  try {
    name = userInfo().username;
  } catch {
    // a uid without a passwd entry (containers): the number says it
  }
  if (uid === 0) {
    return warn(
      'user',
      'running as root: root may write where the daemon\'s user may not, so the permission checks below can pass here and still fail for the daemon',
      'run the daemon as the user Asterisk runs as (usually asterisk), and this check as that user: sudo -u asterisk sms-router doctor',
    );
  }
  return pass('user', `running as ${name} (uid ${uid}); the daemon must run as the same user to get the same answers`);
}

// ─── spool directories ───────────────────────────────────────────────────────

/** Who makes a directory when it is not there (mirrors spool/check.ts checkSpool). */
type WhenMissing = 'fail' | 'daemon' | 'asterisk';

function checkSpoolDirectories({ cfg }: Context): CheckResult[] {
  const { spool } = cfg;
  const fixRoot = `set [spool] root in ${cfg.file} to Asterisk's spool directory (astspooldir in asterisk.conf, usually /var/spool/asterisk)`;
  // root and outgoing/ are Asterisk's; the daemon refuses to start without them unless create_missing is set.
  const mustExist: WhenMissing = spool.createMissing ? 'daemon' : 'fail';
  const dirs: Array<[string, string, WhenMissing]> = [
    ['root', spool.root, mustExist],
    ['outgoing', spool.outgoing, mustExist],
    ['sms/morx', spool.morx, 'daemon'],
    ['sms/mttx', spool.mttx, 'daemon'],
    ['tmp', spool.tmp, 'daemon'],
    ['quarantine', spool.quarantine, 'daemon'],
    // The daemon reads and moves our archived call files out of it; Asterisk makes it.
    ['outgoing_done', spool.outgoingDone, 'asterisk'],
  ];
  return dirs.map(([label, dir, whenMissing]) => checkSpoolDirectory(`spool ${label}`, dir, whenMissing, label === 'root' ? fixRoot : undefined));
}

function checkSpoolDirectory(name: string, dir: string, whenMissing: WhenMissing, fixRoot: string | undefined): CheckResult {
  const chown = `chown asterisk:asterisk ${dir}, or run sms-router as the user Asterisk runs as`;
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') return fail(name, `${dir}: permission denied on a directory above it`, chown);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return fail(name, `${dir}: ${code ?? errorMessage(err)}`, chown);
    return missingDirectory(name, dir, whenMissing, fixRoot);
  }
  if (!st.isDirectory()) {
    return fail(name, `${dir} is not a directory`, fixRoot ?? `move it away and create the directory: mkdir ${dir} && chown asterisk:asterisk ${dir}`);
  }
  const problem = writeProblem(dir);
  if (problem) return fail(name, `${dir} is not writable by this user (${problem})`, problemFix(problem, dir, chown));
  return pass(name, `${dir} is a writable directory`);
}

function missingDirectory(name: string, dir: string, whenMissing: WhenMissing, fixRoot: string | undefined): CheckResult {
  if (whenMissing === 'fail') {
    return fail(name, `${dir} does not exist`, fixRoot ?? `mkdir ${dir} && chown asterisk:asterisk ${dir} (Asterisk makes it when it starts with this spool), or check [spool] root`);
  }
  if (whenMissing === 'asterisk') {
    return pass(name, `${dir} is not there yet; Asterisk creates it when it archives its first call file`);
  }
  // The daemon creates it (recursively): what matters is the closest directory that exists.
  const parent = existingAncestor(dir);
  const problem = parent === undefined ? 'no existing parent directory' : writeProblem(parent);
  if (problem) {
    return fail(name, `${dir} does not exist and the daemon cannot create it: ${parent ?? dir} is not writable (${problem})`, `mkdir -p ${dir} && chown asterisk:asterisk ${dir}`);
  }
  return pass(name, `${dir} is not there yet; the daemon creates it at start (${parent} is writable)`);
}

/** The nearest path at or above `p` that exists and is a directory. */
function existingAncestor(p: string): string | undefined {
  for (let dir = path.resolve(p); ; dir = path.dirname(dir)) {
    try {
      if (statSync(dir).isDirectory()) return dir;
    } catch {
      // not there: look one level up
    }
    if (dir === path.dirname(dir)) return undefined;
  }
}

/**
 * Why this user cannot list and create entries in `dir`, or undefined. access()
 * alone is not enough: for root it says yes to nearly everything, and it knows
 * nothing of a read-only mount seen through some bind mounts or of a full disk.
 * So a probe entry is really created and removed. The probe is a directory, not
 * a file: Asterisk's pbx_spool takes every regular file in outgoing/ for a call
 * file (and deletes one it cannot parse, with a warning); directories and
 * dot-names are ignored by it, app_sms and our own inbox alike.
 */
export function writeProblem(dir: string): string | undefined {
  try {
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    return `${(err as NodeJS.ErrnoException).code ?? errorMessage(err)} from access()`;
  }
  const probe = path.join(dir, `.smsr-doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(probe, { mode: 0o700 });
  } catch (err) {
    return `${(err as NodeJS.ErrnoException).code ?? errorMessage(err)} creating a probe entry`;
  }
  try {
    rmdirSync(probe);
  } catch (err) {
    return `${(err as NodeJS.ErrnoException).code ?? errorMessage(err)} removing the probe ${probe}`;
  }
  return undefined;
}

function problemFix(problem: string, dir: string, chown: string): string {
  if (problem.startsWith('EROFS')) return `${dir} is on a read-only file system: remount it read-write or set [spool] root to a writable spool`;
  // EPERM for root comes from the immutable attribute (chattr +i), not from the mode bits.
  if (problem.startsWith('EPERM')) return `check lsattr -d ${dir} (chattr -i ${dir} if it is immutable), then ${chown}`;
  if (problem.startsWith('ENOSPC') || problem.startsWith('EDQUOT')) return `free space on the file system of ${dir}`;
  return chown;
}

// ─── tmp/ and outgoing/ on one file system ───────────────────────────────────

function checkSameFileSystem({ cfg }: Context): CheckResult {
  const name = 'spool file system';
  const { tmp, outgoing } = cfg.spool;
  // A directory the daemon has yet to create will be on its parent's file system.
  const tmpAt = existingAncestor(tmp);
  const outgoingAt = existingAncestor(outgoing);
  if (!tmpAt || !outgoingAt) return fail(name, `cannot compare ${tmp} and ${outgoing}: neither they nor a parent exist`, 'see the spool lines above');
  const a = statSync(tmpAt).dev;
  const b = statSync(outgoingAt).dev;
  if (a !== b) {
    return fail(
      name,
      `${tmpAt} and ${outgoingAt} are on different file systems, so call files cannot be renamed into outgoing/ atomically`,
      `make ${tmp} a directory on the file system of ${outgoing} (remove the separate mount or symlink)`,
    );
  }
  return pass(name, `${tmp} and ${outgoing} are on one file system (call files are renamed in atomically)`);
}

// ─── database ────────────────────────────────────────────────────────────────

function checkDatabase(ctx: Context): CheckResult {
  const name = 'database';
  const file = ctx.cfg.database.path;
  const setPath = `set [database] path in ${ctx.cfg.file}`;
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return fail(name, `${file}: ${code ?? errorMessage(err)}`, `make it readable to this user, or ${setPath}`);
    // The daemon creates the file and its directories at first start (store.ts ensureParentDirectory).
    const parent = existingAncestor(path.dirname(file));
    const problem = parent === undefined ? 'no existing parent directory' : writeProblem(parent);
    if (problem) {
      return fail(name, `${file} does not exist and cannot be created: ${parent ?? path.dirname(file)} is not writable (${problem})`, `mkdir -p ${path.dirname(file)} && chown asterisk:asterisk ${path.dirname(file)}, or ${setPath}`);
    }
    return pass(name, `${file} does not exist yet; it will be created at first start (${parent} is writable)`);
  }
  if (!st.isFile()) return fail(name, `${file} is not a file`, setPath);

  let db: Db;
  try {
    db = openReadOnly(file, ctx);
  } catch (err) {
    ctx.dbUnreadable = errorMessage(err);
    return fail(name, `cannot open ${file}: ${errorMessage(err)}`, `check that it is sms-router's database and readable, or ${setPath}`);
  }
  let version: number;
  try {
    version = schemaVersion(db);
    // Reading the header is lazy: touch the schema so that "not a database" shows here.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (err) {
    db.close();
    ctx.dbUnreadable = errorMessage(err);
    return fail(name, `cannot read ${file}: ${errorMessage(err)}`, `restore it from a backup, or ${setPath}`);
  }
  if (version > SCHEMA_VERSION) {
    db.close();
    ctx.dbUnreadable = `schema version ${version} is newer than this sms-router knows`;
    return fail(name, `${file} has schema version ${version}, newer than version ${SCHEMA_VERSION} that this sms-router knows`, 'upgrade sms-router, or restore a backup that matches this version');
  }
  ctx.db = db;
  // SQLite writes its -wal and -shm files beside the database: the directory must be writable too.
  const dir = path.dirname(file);
  const problem = fileWriteProblem(file) ?? writeProblem(dir);
  if (problem) return fail(name, `${file} (schema version ${version}) cannot be written by this user (${problem})`, `chown asterisk:asterisk ${dir} ${file}, or run sms-router as the user that owns them`);
  if (version < SCHEMA_VERSION) {
    return warn(
      name,
      `${file} has schema version ${version}; this sms-router migrates it to version ${SCHEMA_VERSION} when it starts`,
      `back it up before the first start (sqlite3 ${file} ".backup ${file}.v${version}")`,
    );
  }
  return pass(name, `${file} opens, schema version ${version} is current`);
}

/**
 * Opens the journal without changing anything on disk. Read-only is not enough
 * by itself: opening a WAL database creates its -wal and -shm files when they
 * are missing, and a read-only connection cannot remove them again; made by
 * root, they would lock the daemon's user out of its own database. While they
 * exist (a daemon has the database open, or crashed) we read in place, which
 * creates nothing. Otherwise nobody is writing and everything is in the main
 * file, so we read an exact copy of it in a temporary directory.
 */
function openReadOnly(file: string, ctx: Context): Db {
  const open = (f: string) => {
    // Read-only and fileMustExist: doctor neither creates nor migrates.
    const db = new Database(f, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return db;
  };
  if (existsSync(`${file}-wal`) && existsSync(`${file}-shm`)) return open(file);
  const dir = mkdtempSync(path.join(tmpdir(), 'smsr-doctor-db-'));
  ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const copy = path.join(dir, path.basename(file));
  copyFileSync(file, copy);
  // A -wal left by a crash (without its -shm) holds committed messages: take it along.
  if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
  return open(copy);
}

function fileWriteProblem(file: string): string | undefined {
  try {
    accessSync(file, constants.R_OK | constants.W_OK);
    return undefined;
  } catch (err) {
    return `${(err as NodeJS.ErrnoException).code ?? errorMessage(err)} from access()`;
  }
}

// ─── AMI ─────────────────────────────────────────────────────────────────────

async function checkAmi({ cfg }: Context): Promise<CheckResult> {
  const name = 'ami';
  const { ami } = cfg;
  if (!ami.enabled) {
    return pass(name, `[ami] is off: T (SIP) messages wait in the journal until it is enabled in ${cfg.file}`);
  }
  const where = `${ami.host}:${ami.port}`;
  const credentials = `check [ami] username and secret in ${cfg.file} against the [${ami.username}] user in Asterisk's manager.conf (and its permit/deny lines), then asterisk -rx "manager reload"`;
  const outcome = await amiLogin(ami.host, ami.port, ami.username, ami.secret, NETWORK_TIMEOUT_MS);
  switch (outcome.kind) {
    case 'ok':
      return pass(name, `logged in to ${where} as ${ami.username} (${outcome.greeting}) and logged off`);
    case 'refused':
      return fail(name, `${where} refused the login as ${ami.username}: ${outcome.message}`, credentials);
    case 'not-ami':
      return fail(name, `${where} is not an Asterisk manager (it said ${JSON.stringify(outcome.greeting.slice(0, 60))})`, `set [ami] host and port in ${cfg.file} to Asterisk's manager.conf bindaddr and port (usually 127.0.0.1:5038)`);
    case 'unreachable':
      return fail(
        name,
        `cannot reach ${where}: ${outcome.message}`,
        `start Asterisk with the manager enabled (manager.conf [general] enabled = yes, port = ${ami.port}), or set [ami] host and port in ${cfg.file}`,
      );
  }
}

type AmiOutcome =
  | { kind: 'ok'; greeting: string }
  | { kind: 'refused'; message: string }
  | { kind: 'not-ami'; greeting: string }
  | { kind: 'unreachable'; message: string };

/**
 * Greeting, Login, Logoff on one raw connection. Not AmiClient: it reconnects
 * on its own and reports a refused login only as an event, while here every
 * way of failing must become its own sentence. The secret is written to the
 * socket and nowhere else.
 */
function amiLogin(host: string, port: number, username: string, secret: string, timeoutMs: number): Promise<AmiOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, noDelay: true });
    const parser = new AmiParser();
    let greeting: string | undefined;
    let state: 'greeting' | 'login' | 'logoff' | 'done' = 'greeting';
    let outcome: AmiOutcome | undefined;
    const finish = (o: AmiOutcome) => {
      if (state === 'done') return;
      state = 'done';
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => {
      // After a successful login, a server that does not say Goodbye is still a working AMI.
      if (outcome) finish(outcome);
      else finish({ kind: 'unreachable', message: state === 'greeting' ? `no AMI greeting within ${timeoutMs} ms` : `no answer to Login within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (outcome) finish(outcome);
      else finish({ kind: 'unreachable', message: err.code ?? err.message });
    });
    socket.on('close', () => {
      if (outcome) finish(outcome);
      else finish({ kind: 'unreachable', message: state === 'greeting' ? 'the connection closed before a greeting' : 'the connection closed before an answer to Login' });
    });
    const answer = (message: AmiMessage) => {
      if (state === 'login' && message.get('ActionID') === 'doctor-login' && message.get('Response') !== undefined) {
        if (message.get('Response')!.toLowerCase() !== 'success') {
          finish({ kind: 'refused', message: message.get('Message') ?? 'no reason given' });
          return;
        }
        outcome = { kind: 'ok', greeting: greeting! };
        state = 'logoff';
        socket.write(encodeAction('Logoff', [['ActionID', 'doctor-logoff']]));
      } else if (state === 'logoff' && message.get('ActionID') === 'doctor-logoff') {
        finish(outcome!);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      for (const frame of parser.push(chunk)) {
        if (state === 'done') return;
        if (frame.type === 'greeting') {
          greeting = frame.text;
          // The same test AmiClient makes before it logs in.
          if (!/Call Manager/i.test(frame.text)) {
            finish({ kind: 'not-ami', greeting: frame.text });
            return;
          }
          state = 'login';
          socket.write(encodeAction('Login', [['ActionID', 'doctor-login'], ['Username', username], ['Secret', secret], ['Events', 'off']]));
        } else if (frame.type === 'message') {
          answer(frame.message);
        }
      }
    });
  });
}

// ─── FastAGI ─────────────────────────────────────────────────────────────────

async function checkFastAgi({ cfg }: Context): Promise<CheckResult> {
  const name = 'fastagi';
  const { host, port } = cfg.agi;
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  if (port === 0) return pass(name, `[agi] listen ${where}: the daemon takes a free port at start and names it in its call files`);
  const setListen = `set [agi] listen in ${cfg.file} to a free port (and advertise, if Asterisk connects elsewhere)`;
  const code = await tryListen(host, port);
  if (code === undefined) return pass(name, `${where} is free for the daemon's FastAGI service`);
  if (code === 'EACCES') return fail(name, `this user may not listen on ${where} (EACCES)`, `use a port above 1023: ${setListen}`);
  if (code === 'EADDRNOTAVAIL') return fail(name, `${host} is not an address of this machine (EADDRNOTAVAIL)`, setListen);
  if (code !== 'EADDRINUSE') return fail(name, `cannot listen on ${where}: ${code}`, setListen);
  const probeHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const who = await probeFastAgi(probeHost, port, where, NETWORK_TIMEOUT_MS);
  if (who.ours) return pass(name, `${where} is in use by a running sms-router (it ${who.said})`);
  return fail(name, `${where} is in use by another program (${who.said})`, `stop that program (ss -ltnp 'sport = :${port}' names it), or ${setListen}`);
}

async function checkHttp({ cfg }: Context): Promise<CheckResult> {
  const name = 'http';
  const listen = cfg.http.listen;
  if (!listen) return pass(name, '[http] listen is empty: no /healthz or /metrics');
  const where = listen.host.includes(':') ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
  const exposed = listen.host === '127.0.0.1' || listen.host === '::1' || listen.host === 'localhost' ? '' : '; it is reachable from the network: firewall it';
  if (listen.port === 0) return pass(name, `[http] listen ${where}: a free port is taken at start${exposed}`);
  const setListen = `set [http] listen in ${cfg.file} to a free port, or empty to turn it off`;
  const code = await tryListen(listen.host, listen.port);
  if (code === undefined) return { ...pass(name, `${where} is free for /healthz and /metrics${exposed}`), ...(exposed ? { status: 'WARN' as const, fix: 'keep [http] on 127.0.0.1 unless a firewall guards it' } : {}) };
  if (code !== 'EADDRINUSE') return fail(name, `cannot listen on ${where}: ${code}`, setListen);
  // In use: ours answers /healthz with its JSON report.
  const probeHost = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  const body = await httpGet(probeHost, listen.port, '/healthz', NETWORK_TIMEOUT_MS);
  if (body !== undefined && /"checks":\[/.test(body)) return pass(name, `${where} is in use by a running sms-router`);
  return fail(name, `${where} is in use by another program`, `stop that program (ss -ltnp 'sport = :${listen.port}' names it), or ${setListen}`);
}

function httpGet(host: string, port: number, urlPath: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let data = '';
    const done = (v: string | undefined) => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.write(`GET ${urlPath} HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      if (data.length > 65536) done(data);
    });
    socket.on('end', () => done(data));
  });
}

/** The fax and voice directories (written by us, read by Asterisk), the call archive, and app_sms's log (read). */
function checkOtherPaths({ cfg }: Context): CheckResult[] {
  const results: CheckResult[] = [];
  for (const [name, dir] of [['fax dir', cfg.fax.dir], ['voice dir', cfg.voice.dir], ['call archive', cfg.spool.callArchive]] as const) {
    if (!existsSync(dir)) {
      const parent = existingAncestor(dir);
      const problem = parent ? writeProblem(parent) : 'no existing parent directory';
      results.push(
        problem === undefined
          ? pass(name, `${dir} is not there yet; the daemon creates it (${parent} is writable)`)
          : fail(name, `${dir} is missing and cannot be created: ${problem}`, `mkdir -p ${dir} && chown asterisk:asterisk ${dir}`),
      );
      continue;
    }
    const problem = writeProblem(dir);
    results.push(problem === undefined ? pass(name, `${dir} is a writable directory`) : fail(name, `${dir}: ${problem}`, problemFix(problem, dir, 'asterisk:asterisk')));
  }
  const log = cfg.sms.appLog;
  try {
    accessSync(log, constants.R_OK);
    results.push(pass('app_sms log', `${log} is readable (S deliveries are confirmed from it)`));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    results.push(
      code === 'ENOENT'
        ? warn('app_sms log', `${log} does not exist yet; app_sms creates it at its first call, and until then no S delivery can be confirmed`, `check [sms] app_log in ${cfg.file} against Asterisk's log directory (astlogdir, usually /var/log/asterisk)`)
        : fail('app_sms log', `${log} is not readable (${code}); S messages can never be confirmed delivered`, `give this user read access: chgrp asterisk ${log} && chmod g+r ${log}`),
    );
  }
  return results;
}

/** undefined when the port could be bound (and is released again), else the error code. */
function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/**
 * Is the listener sms-router's FastAGI service? We ask it, as Asterisk would,
 * to run the call for message 0. sms-router journal ids start at 1, so the
 * daemon finds no call waiting and answers with a bare HANGUP command
 * (daemon.ts onCallSession); we acknowledge it as Asterisk does and leave. No
 * message is touched. Other FastAGI servers do not know our `fax/ID` scripts,
 * and a program that is not FastAGI at all says something else or nothing.
 */
function probeFastAgi(host: string, port: number, where: string, timeoutMs: number): Promise<{ ours: boolean; said: string }> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host, port, noDelay: true });
    let buffered = '';
    let settled = false;
    const done = (ours: boolean, said: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ours, said });
    };
    const timer = setTimeout(() => done(false, `no answer to a FastAGI request within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => {
      const env = [
        ['agi_network', 'yes'],
        ['agi_network_script', 'fax/0'],
        ['agi_request', `agi://${where}/fax/0`],
        ['agi_channel', 'sms-router-doctor'],
        ['agi_type', 'doctor'],
        ['agi_uniqueid', `doctor-${process.pid}`],
      ];
      socket.write(`${env.map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n`);
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl === -1 && buffered.length < 200) return;
      const first = (nl === -1 ? buffered : buffered.slice(0, nl)).replace(/\r$/, '');
      if (first === 'HANGUP') {
        // What Asterisk answers to HANGUP; then the daemon's session ends cleanly.
        socket.end('200 result=1\n');
        done(true, 'answered a FastAGI request for message 0 with HANGUP, as sms-router does');
      } else {
        done(false, `it answered a FastAGI request with ${JSON.stringify(first.slice(0, 60))}`);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => done(false, `connecting to it failed: ${err.code ?? err.message}`));
    socket.on('close', () => done(false, 'it closed the connection without answering a FastAGI request for message 0'));
  });
}

// ─── espeak-ng and sox ───────────────────────────────────────────────────────

function checkSpeechPrograms({ cfg, pathVar }: Context): CheckResult {
  const name = 'speech programs';
  const found = ['espeak-ng', 'sox'].map((program) => ({ program, at: findExecutable(program, pathVar) }));
  const missing = found.filter((f) => f.at === undefined).map((f) => f.program);
  // With gtts the text still goes through sox, and espeak-ng speaks whenever Google cannot.
  const why = cfg.voice.engine === 'gtts' ? ' (engine gtts: sox converts its MP3 and espeak-ng is the fallback)' : '';
  if (missing.length > 0) {
    return fail(name, `${missing.join(' and ')} not found in PATH ${pathVar}${why}; V recipients get no calls`, 'apt-get install espeak-ng sox');
  }
  return pass(name, `${found.map((f) => `${f.program} ${f.at}`).join(', ')}${why}`);
}

/** The first PATH entry holding an executable regular file `program`, as execvp would find it. */
export function findExecutable(program: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(path.delimiter)) {
    // Relative entries would depend on the daemon's working directory (/ under systemd): not counted.
    if (!path.isAbsolute(dir)) continue;
    const file = path.join(dir, program);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here, or not executable: keep looking, as execvp does
    }
  }
  return undefined;
}

// ─── a test fax ──────────────────────────────────────────────────────────────

async function checkFaxRender({ cfg }: Context): Promise<CheckResult> {
  const name = 'fax rendering';
  const dir = mkdtempSync(path.join(tmpdir(), 'smsr-doctor-'));
  try {
    const options = {
      resolution: cfg.fax.resolution,
      compression: cfg.fax.compression,
      header: faxHeader(cfg.fax.header, { from: 'doctor', time: new Date().toISOString().slice(0, 19).replace('T', ' '), reference: 0 }),
    };
    const rendered = await renderFax('sms-router doctor: a test fax, Zażółć gęślą jaźń.', options);
    const file = path.join(dir, 'test.tif');
    writeFileSync(file, rendered.tiff);
    const size = statSync(file).size;
    // Read it back the way the fax session counts the pages it expects to send.
    const pages = readTiffPages(readFileSync(file)).length;
    if (size === 0 || pages !== rendered.pages) {
      return fail(name, `the test fax came out wrong (${size} bytes, ${pages} of ${rendered.pages} pages readable)`, 'reinstall the dependencies (npm ci) so that sharp and its libvips match this machine');
    }
    return pass(name, `a test fax rendered to a ${size}-byte ${cfg.fax.resolution} ${cfg.fax.compression} TIFF of ${pages} page${pages === 1 ? '' : 's'}`);
  } catch (err) {
    return fail(name, `the test fax could not be rendered: ${errorMessage(err)}`, 'apt-get install fonts-dejavu-core (the fax font), and npm ci if sharp cannot load');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ─── the recipient directory ─────────────────────────────────────────────────

/** Services that dial the recipient's channel (directory/recipients.ts NEEDS_CHANNEL); C and N call nobody. */
const DIALLED: ReadonlySet<ServiceLetter> = new Set(['S', 'F', 'V', 'T']);

function checkDirectory({ db, dbUnreadable, configArg }: Context): CheckResult[] {
  const name = 'directory';
  if (!db) {
    if (dbUnreadable) return [warn(name, 'not checked: the database cannot be read', 'see the database line above')];
    return [pass(name, 'no database yet, so no recipients to check')];
  }
  const recipients = new RecipientDirectory(db).list();
  const bad = recipients.filter((r) => DIALLED.has(r.service) && !isValidChannel(r.channel));
  if (bad.length === 0) {
    const dialled = recipients.filter((r) => DIALLED.has(r.service)).length;
    return [pass(name, `${recipients.length} recipient${recipients.length === 1 ? '' : 's'}; all ${dialled} that are dialled (S, F, V, T) have a valid channel`)];
  }
  // A number written in by hand may be anything: quote it unless it is a plain number.
  const arg = (s: string) => (/^\+?[0-9]{1,19}$/.test(s) ? s : JSON.stringify(s));
  return bad.map((r) =>
    fail(
      `directory ${arg(r.number)}`,
      `service ${r.service} needs a channel to call, and ${r.channel === '' ? 'it has none' : `${JSON.stringify(r.channel)} is not one`}; messages to it cannot be delivered`,
      `sms-router users set ${arg(r.number)} --channel TECH/RESOURCE${configArg} (such as PJSIP/1001, DAHDI/2 or Local/1001@phones)`,
    ),
  );
}
