/**
 * FastAGI service (SPEC §6). Asterisk connects, sends its agi_* environment,
 * then we send one command at a time and read one reply per command.
 *
 * What a long-running daemon needs from it:
 * - a session can never take the server (or the process) down: handler
 *   errors are logged, sockets are closed, every timer is bounded;
 * - the dialogue never shifts: HANGUP is an event, a command that timed out
 *   or a reply we cannot read ends the session (a late reply would otherwise
 *   be taken for the next command's);
 * - after HANGUP the session stays usable ("dead AGI") until the socket
 *   closes, so FAXSTATUS and friends can still be read;
 * - no value with CR/LF/NUL is ever written (encodeCommand refuses it).
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { SmsRouterError, errorCode, errorMessage } from '../../errors.js';
import { AgiReader, AgiUnsafeValueError, encodeCommand, isBareWord, quoteArg, type AgiItem, type AgiReply } from './framing.js';

// One import for handlers: the reply type and its check.
export { replyOk, type AgiReply } from './framing.js';

export interface AgiLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface FastAgiServerOptions {
  host: string;
  port: number;
  /** Per command unless the call says otherwise (EXEC SendFAX needs minutes); default 10 s. */
  commandTimeoutMs?: number;
  /** The whole session, environment included; default 30 min. */
  sessionTimeoutMs?: number;
  /** A client that connects and never sends its environment is dropped; default 5 s. */
  environmentTimeoutMs?: number;
  /** close() waits this long for running sessions, then destroys them; default 5 s. */
  closeGraceMs?: number;
  /** Longest line (or 520 block) accepted from Asterisk; default 64 KiB. */
  maxLineBytes?: number;
  logger?: AgiLogger;
}

export type AgiHandler = (session: AgiSession) => Promise<void>;

export interface CommandOptions {
  /** Overrides commandTimeoutMs for this command (long applications: SendFAX, Playback). */
  timeoutMs?: number;
}

type AgiFailureCode = 'AGI_HANGUP' | 'AGI_TIMEOUT' | 'AGI_CLOSED' | 'AGI_PROTOCOL';

/** A session-level failure; `reply` is set when Asterisk answered with a non-2xx code. */
export class AgiError extends SmsRouterError {
  constructor(code: AgiFailureCode, message: string, readonly reply?: AgiReply) {
    super(code, message);
  }
}

const noopLogger: AgiLogger = { info() {}, warn() {}, debug() {} };

// Module-private: only the server feeds a session and aborts it.
const deliver = Symbol('deliver');
const abort = Symbol('abort');

interface Pending {
  line: string;
  timeoutMs: number;
  resolve(reply: AgiReply): void;
  reject(err: Error): void;
}

/** What a session needs from the server that created it. */
interface SessionContext {
  socket: net.Socket;
  env: Record<string, string>;
  commandTimeoutMs: number;
  logger: AgiLogger;
}

export class AgiSession extends EventEmitter<{ hangup: []; close: [] }> {
  readonly env: Readonly<Record<string, string>>;
  readonly script: string;
  readonly query: URLSearchParams;
  private readonly socket: net.Socket;
  private readonly commandTimeoutMs: number;
  private readonly log: AgiLogger;
  private readonly queue: Pending[] = [];
  private inFlight: (Pending & { timer: NodeJS.Timeout }) | undefined;
  private hungUpFlag = false;
  private closedFlag = false;
  private endTimer: NodeJS.Timeout | undefined;

  constructor(context: SessionContext) {
    super();
    this.env = Object.freeze({ ...context.env });
    ({ script: this.script, query: this.query } = requestTarget(context.env));
    this.socket = context.socket;
    this.commandTimeoutMs = context.commandTimeoutMs;
    this.log = context.logger;
    this.socket.once('close', () => {
      clearTimeout(this.endTimer);
      this.fail(new AgiError('AGI_CLOSED', 'Asterisk closed the AGI connection'));
      this.safeEmit('close');
    });
  }

  /** HANGUP seen: the channel is gone, but variables can still be read until the socket closes. */
  get hungUp(): boolean {
    return this.hungUpFlag;
  }

  /** No more commands can be sent (closed by either side, timed out, or the dialogue broke). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Sends one command; commands queue and go out one at a time, in call order.
   * Resolves with any reply, 510/511/520 included (check replyOk()); rejects
   * with AGI_UNSAFE_VALUE before writing, AGI_TIMEOUT, AGI_CLOSED or AGI_PROTOCOL.
   */
  command(command: string, args?: readonly string[], options?: CommandOptions): Promise<AgiReply> {
    let line: string;
    try {
      line = encodeCommand(command, args);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closedFlag) return Promise.reject(new AgiError('AGI_CLOSED', 'the AGI session is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ line, timeoutMs: options?.timeoutMs ?? this.commandTimeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** `EXEC App "arg1,arg2"`: the arguments are joined with ',' as Asterisk applications expect. EXEC's result is the application's, -1 when the channel hung up. */
  exec(app: string, args?: string | readonly string[], options?: CommandOptions): Promise<AgiReply> {
    if (!/^[A-Za-z0-9_]+$/.test(app)) return Promise.reject(new AgiUnsafeValueError('application name', 'is not a plain name'));
    if (args === undefined) return this.command(`EXEC ${app}`, [], options);
    return this.command(`EXEC ${app}`, [typeof args === 'string' ? args : args.join(',')], options);
  }

  /** The variable's value; undefined when Asterisk says it is not set (result=0). */
  async getVariable(name: string): Promise<string | undefined> {
    return valueOf(await this.command(...withWord('GET VARIABLE', name)), 'GET VARIABLE');
  }

  /** Evaluates `${EXPR}` in the channel's context. Values with a newline are unsafe here: read them through BASE64_ENCODE. */
  async getFullVariable(expression: string): Promise<string | undefined> {
    return valueOf(await this.command(...withWord('GET FULL VARIABLE', expression)), 'GET FULL VARIABLE');
  }

  async setVariable(name: string, value: string): Promise<void> {
    const [command, args] = withWord('SET VARIABLE', name);
    expectOk(await this.command(command, [...args, value]), 'SET VARIABLE');
  }

  /** `STREAM FILE "file" "digits"`: result is the digit pressed (0 for none), endpos the samples played. */
  streamFile(file: string, escapeDigits = '', options?: CommandOptions): Promise<AgiReply> {
    return this.command('STREAM FILE', [file, escapeDigits], options);
  }

  async verbose(message: string, level = 1): Promise<void> {
    const verbosity = Math.min(4, Math.max(1, Math.trunc(level)));
    expectOk(await this.command(`VERBOSE ${quoteArg(message)} ${verbosity}`), 'VERBOSE');
  }

  /** Hangs the channel up; Asterisk answers, then sends its own HANGUP line. */
  async hangup(): Promise<void> {
    await this.command('HANGUP');
  }

  /** Ends the session: Asterisk reads EOF and carries on with the dialplan. */
  close(): void {
    this.fail(new AgiError('AGI_CLOSED', 'the AGI session was closed'), false);
    if (this.socket.destroyed) return;
    this.socket.end();
    // A peer that never closes its side must not keep the socket forever.
    this.endTimer ??= setTimeout(() => this.socket.destroy(), 2_000).unref();
  }

  /** @internal Items from the reader, after the environment. */
  [deliver](item: AgiItem): void {
    switch (item.type) {
      case 'reply': {
        const pending = this.inFlight;
        if (!pending) {
          this.fail(new AgiError('AGI_PROTOCOL', `a ${item.reply.code} reply arrived with no command waiting`));
          return;
        }
        clearTimeout(pending.timer);
        this.inFlight = undefined;
        pending.resolve(item.reply);
        this.pump();
        return;
      }
      case 'hangup':
        if (this.hungUpFlag) return;
        this.hungUpFlag = true;
        this.safeEmit('hangup');
        return;
      case 'error':
        this.fail(new AgiError('AGI_PROTOCOL', `unreadable data from Asterisk: ${item.reason}`));
        return;
      case 'environment':
        this.fail(new AgiError('AGI_PROTOCOL', 'a second environment block'));
        return;
    }
  }

  /** @internal The server gives up on this session (session timeout, shutdown). */
  [abort](err: AgiError): void {
    this.fail(err);
  }

  private pump(): void {
    if (this.inFlight || this.closedFlag) return;
    const next = this.queue.shift();
    if (!next) return;
    const timer = setTimeout(() => {
      this.fail(new AgiError('AGI_TIMEOUT', `no reply to ${verb(next.line)} within ${next.timeoutMs} ms`));
    }, next.timeoutMs);
    this.inFlight = { ...next, timer };
    this.log.debug({ script: this.script, command: verb(next.line) }, 'AGI command');
    this.socket.write(next.line);
  }

  /**
   * Ends the dialogue: the command in flight gets `err`, queued ones
   * AGI_CLOSED. `destroy` unless the caller closes politely.
   */
  private fail(err: AgiError, destroy = true): void {
    if (!this.closedFlag) {
      this.closedFlag = true;
      if (err.code !== 'AGI_CLOSED') this.log.warn({ script: this.script, code: err.code, err: err.message }, 'AGI session ended');
    }
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    if (inFlight) {
      clearTimeout(inFlight.timer);
      inFlight.reject(err);
    }
    for (const queued of this.queue.splice(0)) queued.reject(new AgiError('AGI_CLOSED', `the AGI session ended: ${err.message}`));
    if (destroy && !this.socket.destroyed) this.socket.destroy();
  }

  private safeEmit(event: 'hangup' | 'close'): void {
    try {
      this.emit(event);
    } catch (err) {
      this.log.warn({ script: this.script, event, err: errorMessage(err) }, 'AGI session listener threw');
    }
  }
}

export class FastAgiServer {
  private readonly options: Required<Omit<FastAgiServerOptions, 'logger'>>;
  private readonly log: AgiLogger;
  private readonly server: net.Server;
  private readonly connections = new Map<net.Socket, Connection>();
  private closing: Promise<void> | undefined;

  constructor(
    options: FastAgiServerOptions,
    private readonly route: (script: string) => AgiHandler | undefined,
  ) {
    this.options = {
      host: options.host,
      port: options.port,
      commandTimeoutMs: options.commandTimeoutMs ?? 10_000,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 30 * 60_000,
      environmentTimeoutMs: options.environmentTimeoutMs ?? 5_000,
      closeGraceMs: options.closeGraceMs ?? 5_000,
      maxLineBytes: options.maxLineBytes ?? 64 * 1024,
    };
    this.log = options.logger ?? noopLogger;
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'FastAGI server error'));
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        const address = this.server.address() as net.AddressInfo;
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Open connections: waiting for their environment, running a handler, or closing. */
  get activeSessions(): number {
    return this.connections.size;
  }

  /** Stops accepting; running sessions get closeGraceMs to finish, then are destroyed. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections.values()) if (!c.session) c.socket.destroy(); // nothing started yet
    await this.settled(this.options.closeGraceMs);
    for (const c of this.connections.values()) c.session?.[abort](new AgiError('AGI_CLOSED', 'the FastAGI server is shutting down'));
    // Handlers now see AGI_CLOSED; give them as long again to record what they got.
    await this.settled(this.options.closeGraceMs);
    await stopped;
  }

  /** Resolves when every connection is done, or after `ms`. */
  private async settled(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.connections.values()].map((c) => c.done)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true); // one short command at a time: no Nagle delay
    const connection = new Connection(socket);
    this.connections.set(socket, connection);
    void connection.done.then(() => this.connections.delete(socket));
    const reader = new AgiReader({ maxLineBytes: this.options.maxLineBytes });
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;

    const envTimer = setTimeout(() => {
      this.log.warn({ peer, timeoutMs: this.options.environmentTimeoutMs }, 'FastAGI client sent no environment; dropped');
      socket.destroy();
    }, this.options.environmentTimeoutMs);
    const sessionTimer = setTimeout(() => {
      const err = new AgiError('AGI_TIMEOUT', `the AGI session ran longer than ${this.options.sessionTimeoutMs} ms`);
      if (connection.session) connection.session[abort](err);
      else socket.destroy();
    }, this.options.sessionTimeoutMs);

    socket.on('error', (err) => this.log.debug({ peer, err: errorMessage(err) }, 'FastAGI socket error'));
    socket.once('close', () => {
      clearTimeout(envTimer);
      clearTimeout(sessionTimer);
      connection.socketClosed();
    });

    const beforeEnvironment = (chunk: Buffer) => {
      // Before the empty line the reader yields nothing, an error, or the environment.
      const [first, ...rest] = reader.push(chunk);
      if (!first) return;
      if (first.type !== 'environment') {
        this.log.warn({ peer, reason: first.type === 'error' ? first.reason : first.type }, 'FastAGI client sent no valid environment; dropped');
        socket.destroy();
        return;
      }
      clearTimeout(envTimer);
      socket.off('data', beforeEnvironment);
      const session = new AgiSession({ socket, env: first.env, commandTimeoutMs: this.options.commandTimeoutMs, logger: this.log });
      connection.session = session;
      socket.on('data', (next: Buffer) => {
        for (const item of reader.push(next)) session[deliver](item);
      });
      // Items that came in the same chunk as the end of the environment (an early HANGUP).
      for (const item of rest) session[deliver](item);
      this.start(connection, session, peer);
    };
    socket.on('data', beforeEnvironment);
  }

  private start(connection: Connection, session: AgiSession, peer: string): void {
    let handler: AgiHandler | undefined;
    try {
      handler = this.route(session.script);
    } catch (err) {
      this.log.warn({ peer, script: session.script, code: errorCode(err), err: errorMessage(err) }, 'FastAGI route lookup failed');
    }
    if (!handler) {
      // Asterisk sets AGISTATUS=FAILURE when we close without a word.
      this.log.warn({ peer, script: session.script, request: session.env.agi_request }, 'FastAGI request for an unknown script; closed');
      session.close();
      return;
    }
    const run = handler;
    this.log.debug({ peer, script: session.script, uniqueid: session.env.agi_uniqueid }, 'FastAGI session started');
    connection.handlerDone = Promise.resolve()
      .then(() => run(session))
      .catch((err: unknown) => {
        this.log.warn({ peer, script: session.script, uniqueid: session.env.agi_uniqueid, code: errorCode(err), err: errorMessage(err) }, 'FastAGI handler failed');
      })
      .finally(() => session.close());
  }
}

/** One accepted socket; done when the socket closed and the handler (if any) settled. */
class Connection {
  session: AgiSession | undefined;
  handlerDone: Promise<void> = Promise.resolve();
  readonly done: Promise<void>;
  private markClosed!: () => void;

  constructor(readonly socket: net.Socket) {
    const closed = new Promise<void>((resolve) => (this.markClosed = resolve));
    this.done = closed.then(() => this.handlerDone);
  }

  socketClosed(): void {
    this.markClosed();
  }
}

/** script = the path of agi_request without its leading '/'; query = its ?args. */
function requestTarget(env: Record<string, string>): { script: string; query: URLSearchParams } {
  const request = env.agi_request ?? '';
  try {
    const url = new URL(request);
    if (url.protocol === 'agi:' || url.protocol === 'hagi:') return { script: url.pathname.replace(/^\//, ''), query: url.searchParams };
  } catch {
    // not a URL: fall back to agi_network_script below
  }
  const [script = '', query = ''] = (env.agi_network_script ?? '').split('?', 2);
  return { script: script.replace(/^\//, ''), query: new URLSearchParams(query) };
}

/** A name goes bare when that reads back unchanged (as in the recorded sessions), else quoted. */
function withWord(command: string, word: string): [string, string[]] {
  return isBareWord(word) ? [`${command} ${word}`, []] : [command, [word]];
}

function valueOf(reply: AgiReply, what: string): string | undefined {
  expectOk(reply, what);
  return reply.result === '1' ? (reply.data ?? '') : undefined;
}

function expectOk(reply: AgiReply, what: string): void {
  if (reply.code === 200) return;
  // 511: the command is not allowed once the channel is gone.
  const code = reply.code === 511 ? 'AGI_HANGUP' : 'AGI_PROTOCOL';
  throw new AgiError(code, `${what} answered ${reply.code} ${reply.data ?? ''}`.trim(), reply);
}

/** The command word(s) for logs: never the arguments (they may hold message text). */
function verb(line: string): string {
  return line.split(' ', 2).join(' ').trim();
}
