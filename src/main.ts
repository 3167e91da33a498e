#!/usr/bin/env node
/**
 * Process entry: argv, config, logger, daemon. The only module that touches
 * process signals and exit codes.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig, type Config, type LogLevel } from './config.js';
import { Daemon } from './daemon.js';
import { errorCode, errorMessage, SmsRouterError, SpoolUnusableError, UsageError } from './errors.js';
import { createLogger, openLogFile } from './logger.js';
import { notifySystemd } from './systemd-notify.js';
import { decodeFiles } from './cli/decode.js';
import { writeMorx } from './cli/send.js';
import { runUsersCommand } from './cli/users.js';
import { runRenderFaxCommand } from './cli/render-fax.js';
import { runSayCommand } from './cli/say.js';
import { runMessagesCommand } from './cli/messages.js';
import { openDatabase } from './journal/store.js';
import { RecipientDirectory } from './directory/recipients.js';

export const DEFAULT_CONFIG = '/etc/sms-router/sms-router.toml';

const HELP = `sms-router: a message centre for Asterisk

Usage:
  sms-router run     [--config FILE] [--log-level LEVEL]   start the daemon
  sms-router process [--config FILE] [--log-level LEVEL]   drain sms/morx once and exit
  sms-router send    --from NUMBER --to NUMBER [--config FILE] [TEXT]
                                                          write a morx file as app_sms would
                                                          (the text from standard input without TEXT)
  sms-router decode  FILE...                              print spool files as JSON
  sms-router users   add|set|remove|list|import ...        manage the recipient directory
  sms-router messages list|show|retry|cancel ...          see and act on any message in the journal
  sms-router render-fax [--resolution standard|fine|superfine] --out FILE.tif [--png DIR] TEXT
                                                          render a message as the fax a recipient gets
  sms-router say     [--language pl] --out FILE.wav TEXT  write what a voice recipient hears
  sms-router doctor  [--config FILE]                      check the spool, database, AMI, FastAGI port,
                                                          speech programs, fax rendering and directory
  sms-router --version

The config file defaults to ${DEFAULT_CONFIG}.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function config(path: string | undefined): Config {
  return loadConfig(path ?? DEFAULT_CONFIG);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function daemonCommand(command: 'run' | 'process', args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string' } },
    strict: true,
  });
  const cfg = config(values.config);
  const level = (values['log-level'] ?? cfg.log.level) as LogLevel;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(level)) throw new UsageError(`--log-level: unknown level ${level}`);
  // [log] file: lines go there and SIGHUP reopens it (logrotate); otherwise standard output (journald).
  const logFile = cfg.log.file ? openLogFile(cfg.log.file) : undefined;
  const log = createLogger(level, logFile ?? 1);
  let daemon: Daemon;
  try {
    daemon = new Daemon(cfg, log);
  } catch (err) {
    log.fatal({ code: errorCode(err), err: errorMessage(err) }, 'cannot start');
    process.stderr.write(`sms-router: ${errorMessage(err)}\n`);
    return 1;
  }
  if (command === 'process') {
    const stats = await daemon.runOnce();
    await daemon.stop();
    log.info(stats, 'spool drained');
    return 0;
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'stopping after the message in hand');
    void daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // SIGHUP: reopen the log file, read the config again, apply what can change while running.
  process.on('SIGHUP', () => {
    logFile?.reopen();
    let next: Config;
    try {
      next = loadConfig(cfg.file);
    } catch (err) {
      log.error({ code: errorCode(err), err: errorMessage(err) }, 'SIGHUP: the config file is not valid; keeping the running settings');
      return;
    }
    const { applied, needRestart } = daemon.reload(next);
    if (!values['log-level']) log.level = next.log.level;
    if (next.log.file !== cfg.log.file && !needRestart.includes('log')) needRestart.push('log (file)');
    log.info({ applied, needRestart }, needRestart.length ? 'SIGHUP: config re-read; some changes take effect only after a restart' : 'SIGHUP: config re-read');
    void notifySystemd(false, `running; config re-read ${new Date().toISOString()}`, log);
  });
  let exitCode = 0;
  daemon.onFatal((err) => {
    process.stderr.write(`sms-router: ${errorMessage(err)}\n`);
    exitCode = 1;
    void daemon.stop();
  });
  log.info({ version: version(), config: cfg.file, spool: cfg.spool.root, database: cfg.database.path }, 'starting');
  await daemon.run(() => {
    // Readiness once the backlog scan has started and FastAGI (and HTTP) listen.
    void notifySystemd(true, 'watching the spool', log);
  });
  log.info({ ...daemon.stats }, 'stopped');
  return exitCode;
}

async function sendCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, from: { type: 'string' }, to: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (!values.from || !values.to) throw new UsageError('send needs --from NUMBER and --to NUMBER');
  const cfg = config(values.config);
  const text = positionals.length ? positionals.join(' ') : await readStdin();
  // app_sms creates sms/morx when it first writes there; so do we, but only inside an existing spool.
  if (!cfg.spool.createMissing && !existsSync(cfg.spool.root)) {
    throw new SpoolUnusableError(cfg.spool.root, `it does not exist; set [spool] root in ${cfg.file}`);
  }
  mkdirSync(cfg.spool.morx, { recursive: true });
  const names = writeMorx(cfg.spool.morx, { from: values.from, to: values.to, text, substitute: cfg.sms.unsupportedCharacter });
  for (const n of names) process.stdout.write(`${n}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const io = { stdout: (s: string) => process.stdout.write(s), stderr: (s: string) => process.stderr.write(s) };
  try {
    switch (command) {
      case 'run':
      case 'process':
        return await daemonCommand(command, rest);
      case 'send':
        return await sendCommand(rest);
      case 'decode':
        if (rest.length === 0) throw new UsageError('decode needs at least one FILE');
        return decodeFiles(rest, (l) => io.stdout(`${l}\n`));
      case 'messages':
        return await runMessagesCommand(rest, io, (path) => {
          const db = openDatabase(config(path).database.path);
          return { db, close: () => db.close() };
        });
      case 'render-fax':
        return await runRenderFaxCommand(rest, io);
      case 'say':
        return await runSayCommand(rest, io);
      case 'users':
        return await runUsersCommand(rest, io, (path) => {
          const db = openDatabase(config(path).database.path);
          return { dir: new RecipientDirectory(db), close: () => db.close() };
        });
      case 'doctor':
        // Loaded on demand: only doctor needs its probes.
        return await (await import('./cli/doctor.js')).runDoctor(rest, io, { PATH: process.env.PATH, defaultConfig: DEFAULT_CONFIG });
      case '--version':
      case '-V':
      case 'version':
        io.stdout(`${version()}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.stdout(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; see sms-router --help`);
    }
  } catch (err) {
    if (err instanceof SmsRouterError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`sms-router: ${errorMessage(err)}\n`);
      return err instanceof UsageError || !(err instanceof SmsRouterError) ? 2 : 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sms-router: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
