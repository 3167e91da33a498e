/**
 * The command service: what a message to a number with service letter C
 * means, and the reply that goes back to its sender.
 *
 * - Built-ins answer from the daemon's own state (HELP, PING/TEST, UPTIME,
 *   STATUS, WHOAMI, SERVICE); configured programs answer everything else.
 * - Message words reach programs as separate argv entries through runProcess:
 *   never a shell, a deadline, bounded output, PATH-only environment. So the
 *   text of an SMS can only ever be data.
 * - The per-sender rate limit is checked before anything else, so a flood
 *   costs neither replies nor program runs.
 * - `handle` never throws: a command that breaks is one failed reply and one
 *   log line, never a stuck message or a crashed daemon.
 * - Logs name the command, numbers and exit status, never the message text
 *   (it may be private, and it is attacker-controlled).
 */
import type { Recipient } from '../directory/recipients.js';
import { errorCode, SmsRouterError } from '../errors.js';
import { minimalEnv, ProcessError, runProcess } from '../render/exec.js';
import { gsm7Septets } from '../spool/encoding.js';
import { parseCommand, type ParsedCommand } from './parse.js';
import { RateLimiter } from './rate-limit.js';

// ─── Configuration (config.ts produces it) ──────────────────────────────────

export interface CommandProgram {
  /** The TOML table name [commands.NAME]. */
  name: string;
  /** First word that triggers it, case-insensitive. */
  keyword: string;
  /** Command numbers offering it; ['*'] = every C number. */
  numbers: readonly string[];
  /** Absolute path. */
  program: string;
  /** Fixed arguments, before the message's words. */
  args: readonly string[];
  timeoutMs: number;
  maxOutputBytes: number;
  /** For HELP <keyword>. */
  description: string;
}

export interface CommandsConfig {
  /** SERVICE S|F|V|T|N allowed. */
  selfService: boolean;
  /** Replies per sender per 60 s window. */
  perSenderPerMinute: number;
  /** C numbers offering the built-ins; ['*'] = all. */
  builtinNumbers: readonly string[];
  /** The first N characters of a program's stdout are the reply. */
  replyMaxChars: number;
  texts: { unknown: string; wrongNumber: string; failed: string; tooMany: string };
  programs: readonly CommandProgram[];
}

/** The texts' defaults, for config.ts. */
export const DEFAULT_COMMAND_TEXTS: CommandsConfig['texts'] = {
  unknown: 'Unknown command. Send HELP.',
  wrongNumber: 'Wrong number.',
  failed: 'Unable to complete the order. Please try again in a few minutes.',
  tooMany: 'Too many requests. Please wait a minute.',
};

// ─── Interface ──────────────────────────────────────────────────────────────

export interface CommandRequest {
  /** The C number the message was sent to. */
  commandNumber: string;
  /** The sender's number: where the reply goes. */
  sender: string;
  /** The sender's own directory entry. */
  senderEntry: Recipient | undefined;
  text: string;
}

export type SelfServiceLetter = 'S' | 'F' | 'V' | 'T' | 'N';

export interface CommandDeps {
  now(): Date;
  daemonStartedAt: Date;
  /** os.uptime() */
  systemUptimeSeconds(): number;
  journalCounts(): { queued: number; delivered: number; failedToday: number };
  /** Writes the directory; throws (SmsRouterError) when the entry cannot take the letter, e.g. no channel for F. */
  setSenderService(number: string, letter: SelfServiceLetter): void;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /** For tests. */
  run?: typeof runProcess;
}

export type CommandOutcome = 'ok' | 'unknown' | 'wrong-number' | 'failed' | 'rate-limited' | 'refused';

export type CommandResult = {
  /** What to send back to the sender; null = send nothing. */
  reply: string | null;
  /** The message's first word, upper-cased, control characters removed, at most 20 characters ('' for an empty message). */
  command: string;
  outcome: CommandOutcome;
};

// ─── Built-ins ──────────────────────────────────────────────────────────────

const SELF_SERVICE_LETTERS: readonly SelfServiceLetter[] = ['S', 'F', 'V', 'T', 'N'];

/** Listed by HELP in this order; TEST is an alias of PING and not listed. */
const BUILTIN_DESCRIPTIONS: ReadonlyMap<string, string> = new Map([
  ['HELP', 'HELP: the commands of this number. HELP <command>: what one does.'],
  ['PING', 'PING <text>: replies PONG with your number and text (TEST too).'],
  ['UPTIME', 'UPTIME: how long the message centre and its system have been up.'],
  ['STATUS', 'STATUS: messages queued, delivered, and failed today.'],
  ['WHOAMI', 'WHOAMI: your number, service letter and name in the directory.'],
  ['SERVICE', 'SERVICE S|F|V|T|N: receive messages as SMS, fax, voice call, SIP message, or not at all.'],
]);
const ALIASES: ReadonlyMap<string, string> = new Map([['TEST', 'PING']]);

const EMPTY_OUTPUT_REPLY = 'Done.';
const COMMAND_LABEL_MAX = 20;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;
// Program output may contain anything; keep line breaks (GSM has LF), drop
// other control characters (escape sequences would garble a phone's display).
// eslint-disable-next-line no-control-regex
const OUTPUT_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;
// Terminal colour/cursor sequences (ESC [ ... letter): removed whole, not just their ESC.
// eslint-disable-next-line no-control-regex
const ANSI_CSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

interface Context {
  req: CommandRequest;
  parsed: ParsedCommand;
  command: string;
  programs: readonly CommandProgram[];
}

type Reply = Omit<CommandResult, 'command'>;

export class CommandService {
  readonly #config: CommandsConfig;
  readonly #deps: CommandDeps;
  readonly #run: typeof runProcess;
  readonly #limiter: RateLimiter;

  constructor(config: CommandsConfig, deps: CommandDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#run = deps.run ?? runProcess;
    this.#limiter = new RateLimiter({ limit: config.perSenderPerMinute, now: () => deps.now().getTime() });
  }

  async handle(req: CommandRequest): Promise<CommandResult> {
    let command = '';
    try {
      const parsed = parseCommand(req.text);
      command = parsed.word.replace(CONTROL, '').slice(0, COMMAND_LABEL_MAX);
      // First, before any work: a flood must cost neither replies nor program runs.
      const decision = this.#limiter.check(req.sender);
      if (decision !== 'allow') {
        if (decision === 'too-many') this.#warn({ sender: req.sender, number: req.commandNumber }, 'command sender over the rate limit');
        return { reply: decision === 'too-many' ? this.#config.texts.tooMany : null, command, outcome: 'rate-limited' };
      }
      return { ...(await this.#dispatch({ req, parsed, command, programs: [] })), command };
    } catch (err) {
      this.#warn({ number: req.commandNumber, command, error: errorCode(err) }, 'command failed unexpectedly');
      return { reply: this.#config.texts.failed, command, outcome: 'failed' };
    }
  }

  async #dispatch(ctx: Context): Promise<Reply> {
    const { req, parsed } = ctx;
    const builtinsHere = offers(this.#config.builtinNumbers, req.commandNumber);
    ctx.programs = this.#config.programs.filter((p) => offers(p.numbers, req.commandNumber));
    if (!builtinsHere && ctx.programs.length === 0) return { reply: this.#config.texts.wrongNumber, outcome: 'wrong-number' };

    const word = ALIASES.get(parsed.word) ?? parsed.word;
    // HELP works on every number that offers anything: texts.unknown tells
    // people to send it, so it must never itself be unknown.
    if (word === 'HELP') return this.#help(ctx, builtinsHere);
    // Built-ins win over a program with the same keyword, so HELP/SERVICE cannot be shadowed by configuration.
    if (builtinsHere) {
      switch (word) {
        case 'PING':
          return this.#ping(ctx);
        case 'UPTIME':
          return this.#uptime();
        case 'STATUS':
          return this.#status();
        case 'WHOAMI':
          return this.#whoami(ctx);
        case 'SERVICE':
          return this.#service(ctx);
      }
    }
    const program = word === '' ? undefined : ctx.programs.find((p) => keywordOf(p) === word);
    if (program) return this.#runProgram(ctx, program);
    return { reply: this.#config.texts.unknown, outcome: 'unknown' };
  }

  // ─── HELP ─────────────────────────────────────────────────────────────────

  #help(ctx: Context, builtinsHere: boolean): Reply {
    const offered = new Map<string, string>();
    if (builtinsHere) {
      for (const [word, description] of BUILTIN_DESCRIPTIONS) {
        if (word === 'SERVICE' && !this.#config.selfService) continue;
        offered.set(word, description);
      }
    } else {
      offered.set('HELP', BUILTIN_DESCRIPTIONS.get('HELP') ?? 'HELP');
    }
    for (const p of ctx.programs) {
      const k = keywordOf(p);
      if (k !== '' && !offered.has(k)) offered.set(k, p.description.trim() === '' ? k : `${k}: ${p.description.trim()}`);
    }

    const asked = ctx.parsed.args[0];
    if (asked !== undefined) {
      const word = asked.toUpperCase();
      const description = offered.get(ALIASES.get(word) ?? word);
      return { reply: description ?? this.#config.texts.unknown, outcome: description ? 'ok' : 'unknown' };
    }
    // One SMS when possible: the bare list always, the hint only if it still fits.
    const list = `Commands: ${[...offered.keys()].join(' ')}`;
    const withHint = `${list}. HELP <command> explains one.`;
    return { reply: fitsOneSms(withHint) ? withHint : list, outcome: 'ok' };
  }

  // ─── Small built-ins ──────────────────────────────────────────────────────

  #ping({ req, parsed }: Context): Reply {
    const pong = parsed.rest === '' ? `PONG from ${req.sender}` : `PONG from ${req.sender}: ${parsed.rest}`;
    return { reply: truncate(pong, this.#config.replyMaxChars), outcome: 'ok' };
  }

  #uptime(): Reply {
    const daemon = (this.#deps.now().getTime() - this.#deps.daemonStartedAt.getTime()) / 1000;
    const system = this.#deps.systemUptimeSeconds();
    return { reply: `sms-router up ${formatDuration(daemon)}, system up ${formatDuration(system)}`, outcome: 'ok' };
  }

  #status(): Reply {
    const c = this.#deps.journalCounts();
    return { reply: `Queued ${c.queued}, delivered ${c.delivered}, failed today ${c.failedToday}`, outcome: 'ok' };
  }

  #whoami({ req }: Context): Reply {
    const e = req.senderEntry;
    if (!e) return { reply: `${req.sender}: not in the directory`, outcome: 'ok' };
    return { reply: `${e.number}: service ${e.service}${e.name === '' ? '' : `, ${e.name}`}`, outcome: 'ok' };
  }

  // ─── SERVICE ──────────────────────────────────────────────────────────────

  #service({ req, parsed }: Context): Reply {
    const refuse = (reply: string): Reply => ({ reply, outcome: 'refused' });
    if (!this.#config.selfService) return refuse('Changing your service by SMS is not enabled.');
    const letter = parsed.args.length === 1 ? parsed.args[0]!.toUpperCase() : '';
    if (!isSelfServiceLetter(letter)) return refuse('Send SERVICE and one letter: S, F, V, T or N.');
    const entry = req.senderEntry;
    if (!entry) return refuse(`${req.sender} is not in the directory: ask the operator.`);
    // A command number has no person behind it to ask for this.
    if (entry.service === 'C') return refuse('A command number cannot change its service by SMS.');
    try {
      this.#deps.setSenderService(entry.number, letter);
    } catch (err) {
      const code = errorCode(err);
      this.#warn({ sender: entry.number, service: letter, error: code }, 'service change by SMS refused');
      if (code === 'INVALID_CHANNEL') return refuse(`Service ${letter} needs a line to call you on: ask the operator.`);
      // Anything else the directory rejected is about this entry; a database failure is ours.
      if (err instanceof SmsRouterError && code !== 'DATABASE') return refuse(`Your service cannot be changed to ${letter}: ask the operator.`);
      return { reply: this.#config.texts.failed, outcome: 'failed' };
    }
    this.#info({ sender: entry.number, from: entry.service, service: letter }, 'service changed by SMS');
    return { reply: `Your service is now ${letter}.`, outcome: 'ok' };
  }

  // ─── Configured programs ──────────────────────────────────────────────────

  async #runProgram({ req, parsed }: Context, p: CommandProgram): Promise<Reply> {
    const failed: Reply = { reply: this.#config.texts.failed, outcome: 'failed' };
    const where = { command: p.name, number: req.commandNumber, sender: req.sender };
    const started = performance.now();
    try {
      // Each word its own argv entry, after the fixed ones: no shell ever sees them.
      const result = await this.#run(p.program, [...p.args, ...parsed.args], {
        timeoutMs: p.timeoutMs,
        maxOutputBytes: p.maxOutputBytes,
        env: minimalEnv(),
      });
      if (result.code !== 0) {
        this.#warn({ ...where, exitCode: result.code, signal: result.signal, ms: elapsed(started) }, 'command program failed');
        return failed;
      }
      const out = truncate(cleanOutput(result.stdout.toString('utf8')), this.#config.replyMaxChars).trimEnd();
      return { reply: out === '' ? EMPTY_OUTPUT_REPLY : out, outcome: 'ok' };
    } catch (err) {
      // ProcessError: missing, timeout (killed), output limit. Anything else
      // (e.g. spawn refusing a NUL in an argument) is just as much a failed run.
      const error = err instanceof ProcessError ? err.code : errorCode(err);
      this.#warn({ ...where, error, ms: elapsed(started) }, 'command program failed');
      return failed;
    }
  }

  // A logger that throws must not turn into a thrown handle().
  #warn(o: object, m: string): void {
    try {
      this.#deps.log.warn(o, m);
    } catch {
      /* nothing better to do */
    }
  }
  #info(o: object, m: string): void {
    try {
      this.#deps.log.info(o, m);
    } catch {
      /* nothing better to do */
    }
  }
}

// ─── Helpers ────────────────────────────────────────────────────────────────

function offers(numbers: readonly string[], number: string): boolean {
  return numbers.includes('*') || numbers.includes(number);
}

function keywordOf(p: CommandProgram): string {
  return p.keyword.trim().toUpperCase();
}

function isSelfServiceLetter(x: string): x is SelfServiceLetter {
  return (SELF_SERVICE_LETTERS as readonly string[]).includes(x);
}

/** One SMS: 160 GSM-7 septets (extension characters cost two), or 70 UCS-2 units. */
export function fitsOneSms(text: string): boolean {
  const septets = gsm7Septets(text);
  return septets === null ? text.length <= 70 : septets <= 160;
}

/** "2d 3h 4m", "10d 1h", "5m", "42s": zero units left out, seconds only under a minute. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3_600);
  const m = Math.floor((total % 3_600) / 60);
  const parts = [d && `${d}d`, h && `${h}h`, m && `${m}m`].filter((x): x is string => typeof x === 'string');
  return parts.length > 0 ? parts.join(' ') : `${total}s`;
}

function cleanOutput(s: string): string {
  return s.replace(ANSI_CSI, '').replace(/\r\n?/g, '\n').replace(/\t/g, ' ').replace(OUTPUT_CONTROL, '').trim();
}

/** The first `max` UTF-16 units (what an SMS counts), never half a surrogate pair. */
function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, Math.max(0, max));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut;
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
