/**
 * AMI client (SPEC §6). Written instead of the npm `asterisk-manager` package to
 * close its gaps: every action has a timeout; every action in flight fails the
 * moment the connection drops; nothing with CR/LF/NUL is ever written (header
 * injection); reconnects use capped exponential backoff with jitter, also after a
 * refused login so a wrong secret does not hammer the PBX.
 *
 * A half-open connection (the PBX hung, or a firewall silently dropped the flow:
 * nothing closes, nothing answers) would otherwise only be noticed by TCP
 * keepalive, after many minutes. So whenever an action times out, and whenever
 * nothing has been received for `keepaliveMs`, the client sends an AMI `Ping`
 * (one at a time). Any answer proves the connection alive and it is kept: one
 * slow action is not a dead PBX. No answer within the action timeout means it
 * is dead: it is destroyed with AMI_UNRESPONSIVE and the usual reconnect with
 * backoff follows.
 *
 * There is deliberately no queue here: when not logged in, action() fails at once
 * and the caller's journal decides what to retry. AMI_DISCONNECTED means "outcome
 * unknown" (the PBX may have acted on it), AMI_NOT_CONNECTED means "never sent".
 *
 * Some actions answer with a list (AMI's "response list"): `Response: Success`
 * with `EventList: start`, then events carrying the action's ActionID, then a
 * last event with `EventList: Complete`; they arrive even with `Events: off`.
 * actionList() collects them; dbGet()/dbDel() are AstDB's DBGet (a list of one
 * DBGetResponse) and DBDel (a plain response).
 */
import { connect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { SmsRouterError, type ErrorCode } from '../../errors.js';
import { AmiParser, AmiUnsafeValueError, encodeAction, type AmiFields, type AmiFrame, type AmiMessage } from './framing.js';

export type AmiErrorCode = Extract<ErrorCode, `AMI_${string}`>;

export class AmiError extends SmsRouterError {
  constructor(code: AmiErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
  /** Fraction of the delay added or removed at random (0.2 = ±20%), so many clients do not reconnect in step. */
  jitter?: number;
}

export interface AmiLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  debug(o: object, m: string): void;
}

export interface AmiClientOptions {
  host: string;
  port: number;
  username: string;
  secret: string;
  /** Default false: Login sends `Events: off`, we only want responses. */
  events?: boolean;
  actionTimeoutMs?: number;
  /** TCP connect plus greeting; a server that does not greet within it is treated as down. */
  connectTimeoutMs?: number;
  backoff?: BackoffOptions;
  /**
   * Idle keepalive: a `Ping` is sent once nothing has been received for this long
   * (default 30 s; 0 turns the idle Ping off, a timed-out action still sends one).
   */
  keepaliveMs?: number;
  /** Largest message accepted from the server (default 1 MiB). */
  maxMessageBytes?: number;
  /** pino-compatible. The secret and action fields are never passed to it. */
  logger?: AmiLogger;
}

export type AmiState = 'stopped' | 'connecting' | 'connected' | 'backoff';

export interface AmiClientEvents {
  connected: [];
  disconnected: [err: AmiError];
  event: [message: AmiMessage];
  loginFailed: [err: AmiError];
  state: [state: AmiState];
  /** A reconnect is scheduled: `attempt` counts consecutive failures (1-based). */
  backoff: [info: { attempt: number; delayMs: number }];
}

const BACKOFF_DEFAULTS: Required<BackoffOptions> = { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.2 };
const LOGOFF_TIMEOUT_MS = 1_000;
const KEEPALIVE_MS = 15_000;

/** Delay before reconnect attempt `failures` (0-based): initial × factor^n, capped, jittered, never above the cap. */
export function backoffDelay(failures: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const b = { ...BACKOFF_DEFAULTS, ...options };
  const base = Math.min(b.maxMs, b.initialMs * b.factor ** failures);
  const jittered = base * (1 + b.jitter * (2 * random() - 1));
  return Math.round(Math.max(0, Math.min(b.maxMs, jittered)));
}

/** What a list action (actionList) answered: its response, then every event of the list, the closing one last. */
export interface AmiListAnswer {
  response: AmiMessage;
  events: AmiMessage[];
}

/** AstDB's answers to a missing key: DBGet's, and DBDel's (Asterisk 20 since 2022; older ones said "not found" there too). */
const DB_MISSING = new Set(['database entry not found', 'database entry could not be deleted']);

interface Pending {
  action: string;
  /**
   * Offered each message carrying this action's ActionID: false = not part of the
   * answer (an event before the response); 'more' = taken, the answer goes on
   * (a list); 'done' = taken, the answer is complete and settled.
   */
  take(message: AmiMessage): false | 'more' | 'done';
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** One TCP connection; everything about it dies with it, so a stale socket can never touch a newer one. */
interface Connection {
  socket: Socket;
  parser: AmiParser;
  greeted: boolean;
  loggedIn: boolean;
  pending: Map<string, Pending>;
  handshakeTimer: NodeJS.Timeout;
  lastError?: Error;
  junk: number;
  closed: Promise<void>;
  /** performance.now() of the last byte received: the idle keepalive measures from it. */
  lastDataAt: number;
  /** A liveness Ping is in flight: never more than one per connection. */
  probing: boolean;
  keepaliveTimer?: NodeJS.Timeout;
}

const noop = () => {};
const isSuccess = (m: AmiMessage) => m.get('Response')?.toLowerCase() === 'success';
/** The list's last event: `EventList: Complete` (or `Cancelled`; anything but `start`). */
const isListEnd = (m: AmiMessage) => {
  const flag = m.get('EventList')?.toLowerCase();
  return flag !== undefined && flag !== 'start';
};
const refused = (action: string, response: AmiMessage) =>
  new AmiError('AMI_ACTION_FAILED', `AMI ${action} refused: ${response.get('Message') ?? response.get('Response') ?? 'no reason given'}`);
const SILENT: AmiLogger = { info: noop, warn: noop, debug: noop };

export class AmiClient extends EventEmitter<AmiClientEvents> {
  private readonly opts: Required<Omit<AmiClientOptions, 'logger' | 'backoff'>> & { backoff: BackoffOptions };
  private readonly log: AmiLogger;
  private currentState: AmiState = 'stopped';
  private running = false;
  private conn: Connection | undefined;
  private failures = 0;
  private everConnected = false;
  private reconnectCount = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private readonly waiters = new Set<(state: AmiState) => void>();
  // ActionIDs are unique per client across connections, so a late response from an
  // older connection can never be taken for the answer to a newer action.
  private readonly idPrefix = randomBytes(4).toString('hex');
  private seq = 0;

  constructor(options: AmiClientOptions) {
    super();
    const { logger, backoff, ...rest } = options;
    this.opts = {
      events: false,
      actionTimeoutMs: 10_000,
      connectTimeoutMs: 5_000,
      keepaliveMs: 30_000,
      maxMessageBytes: 1024 * 1024,
      ...rest,
      backoff: { ...BACKOFF_DEFAULTS, ...backoff },
    };
    this.log = logger ?? SILENT;
    // Fail now, not on every reconnect, if the credentials cannot be sent safely.
    encodeAction('Login', { Username: options.username, Secret: options.secret });
  }

  get state(): AmiState {
    return this.currentState;
  }

  /** How many times a connection was re-established after the first successful login. */
  get reconnects(): number {
    return this.reconnectCount;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** Logoff if logged in, close, fail whatever is still in flight; no reconnect afterwards. Idempotent. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.running = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const conn = this.conn;
    if (conn) clearTimeout(conn.keepaliveTimer);
    this.stopping = (async () => {
      if (conn) {
        if (conn.loggedIn) {
          await this.request(conn, 'Logoff', [], Math.min(LOGOFF_TIMEOUT_MS, this.opts.actionTimeoutMs)).catch(noop);
        }
        conn.socket.destroy();
        await conn.closed;
      }
      if (!this.running) this.setState('stopped');
    })().finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  /** Resolves once logged in; rejects AMI_TIMEOUT after timeoutMs, AMI_NOT_CONNECTED if the client is or gets stopped. */
  waitConnected(timeoutMs?: number): Promise<void> {
    if (this.running && this.currentState === 'connected') return Promise.resolve();
    if (!this.running) return Promise.reject(new AmiError('AMI_NOT_CONNECTED', 'AMI client is stopped'));
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = (state: AmiState) => {
        if (state !== 'connected' && state !== 'stopped') return;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        if (state === 'connected') resolve();
        else reject(new AmiError('AMI_NOT_CONNECTED', 'AMI client was stopped'));
      };
      this.waiters.add(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new AmiError('AMI_TIMEOUT', `AMI not connected within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /**
   * Sends one action and resolves with the response carrying its ActionID. A
   * `Response: Error` resolves too: read `get('Response')` and `get('Message')`.
   */
  action(action: string, fields: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<AmiMessage> {
    return this.send(action, fields, options, false).then((answer) => answer.response);
  }

  /**
   * Sends an action that answers with a list and resolves once the list is
   * complete (the event with `EventList: Complete`), with the response and
   * every event carrying its ActionID. A response that starts no list (an
   * `Error`, say) resolves at once with no events. The timeout covers the
   * whole list.
   */
  actionList(action: string, fields: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<AmiListAnswer> {
    return this.send(action, fields, options, true);
  }

  /**
   * AstDB: the value of FAMILY/KEY, or undefined when there is no such key.
   * Rejects AMI_ACTION_FAILED when Asterisk refuses (e.g. `Permission denied`:
   * DBGet needs the `system` or `reporting` write class), AMI_PROTOCOL when the
   * list does not hold the key asked for, and as action() does otherwise.
   */
  async dbGet(family: string, key: string, options: { timeoutMs?: number } = {}): Promise<string | undefined> {
    const { response, events } = await this.actionList('DBGet', { Family: family, Key: key }, options);
    if (!isSuccess(response)) {
      if (DB_MISSING.has((response.get('Message') ?? '').toLowerCase())) return undefined;
      throw refused('DBGet', response);
    }
    const item = events.find((e) => e.get('Event')?.toLowerCase() === 'dbgetresponse');
    if (!item || item.get('Family') !== family || item.get('Key') !== key || item.get('Val') === undefined) {
      throw new AmiError('AMI_PROTOCOL', `AMI DBGet ${family}/${key}: the answer holds no DBGetResponse for that key`);
    }
    return item.get('Val');
  }

  /** AstDB: deletes FAMILY/KEY; true when it was there, false when it was not. Rejects as dbGet() does (DBDel needs `system`). */
  async dbDel(family: string, key: string, options: { timeoutMs?: number } = {}): Promise<boolean> {
    const response = await this.action('DBDel', { Family: family, Key: key }, options);
    if (isSuccess(response)) return true;
    if (DB_MISSING.has((response.get('Message') ?? '').toLowerCase())) return false;
    throw refused('DBDel', response);
  }

  private send(action: string, fields: Record<string, string>, options: { timeoutMs?: number }, list: boolean): Promise<AmiListAnswer> {
    // The ActionID is ours: a caller-supplied one would break the correlation.
    const own = Object.keys(fields).find((k) => k.toLowerCase() === 'actionid');
    if (own !== undefined) return Promise.reject(new AmiUnsafeValueError(own, 'key'));
    try {
      // Validate before anything else: an unsafe value is a permanent failure, retrying cannot help.
      encodeAction(action, fields);
    } catch (err) {
      return Promise.reject(err);
    }
    const conn = this.conn;
    if (!this.running || this.currentState !== 'connected' || !conn?.loggedIn) {
      return Promise.reject(new AmiError('AMI_NOT_CONNECTED', `AMI not connected (state ${this.currentState}): ${action} not sent`));
    }
    const timeoutMs = options.timeoutMs !== undefined && options.timeoutMs > 0 ? options.timeoutMs : this.opts.actionTimeoutMs;
    return this.request(conn, action, Object.entries(fields), timeoutMs, { probeOnTimeout: true, list });
  }

  /**
   * `probeOnTimeout`: a timeout of this action makes the client check the connection with a Ping.
   * `unref`: the timer alone does not keep the process alive (the client's own Ping).
   */
  private request(
    conn: Connection,
    action: string,
    fields: AmiFields,
    timeoutMs: number,
    options: { probeOnTimeout?: boolean; unref?: boolean; list?: boolean } = {},
  ): Promise<AmiListAnswer> {
    const id = `${this.idPrefix}-${++this.seq}`;
    let bytes: Buffer;
    try {
      bytes = encodeAction(action, [['ActionID', id], ...fields]);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Forget it: a response arriving later finds no pending entry and is dropped.
        conn.pending.delete(id);
        reject(new AmiError('AMI_TIMEOUT', `AMI ${action} got no response within ${timeoutMs} ms`));
        // A slow action, or a dead connection? Only a Ping can tell.
        if (options.probeOnTimeout) this.probe(conn, `${action} timed out`);
      }, timeoutMs);
      if (options.unref) timer.unref();
      let answer: AmiListAnswer | undefined;
      const take = (message: AmiMessage): false | 'more' | 'done' => {
        if (!answer) {
          // Only a message with Response: answers an action; events before it are not ours.
          if (message.get('Response') === undefined) return false;
          answer = { response: message, events: [] };
          if (options.list && message.get('EventList')?.toLowerCase() === 'start') return 'more';
        } else {
          if (message.get('Event') === undefined) return false;
          answer.events.push(message);
          if (!isListEnd(message)) return 'more';
        }
        resolve(answer);
        return 'done';
      };
      conn.pending.set(id, { action, take, reject, timer });
      this.log.debug({ action, actionId: id }, 'AMI action sent');
      conn.socket.write(bytes);
    });
  }

  private connect(): void {
    const { host, port, connectTimeoutMs } = this.opts;
    this.setState('connecting');
    const socket = connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS });
    const conn: Connection = {
      socket,
      parser: new AmiParser({ maxMessageBytes: this.opts.maxMessageBytes }),
      greeted: false,
      loggedIn: false,
      pending: new Map(),
      // Covers TCP connect and the greeting: a port that accepts but never speaks AMI is down.
      handshakeTimer: setTimeout(
        () => socket.destroy(new AmiError('AMI_TIMEOUT', `no AMI greeting within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      ),
      junk: 0,
      closed: new Promise((resolve) => socket.once('close', () => resolve())),
      lastDataAt: performance.now(),
      probing: false,
    };
    this.conn = conn;
    this.log.debug({ host, port }, 'AMI connecting');
    socket.on('data', (chunk: Buffer) => {
      conn.lastDataAt = performance.now();
      for (const frame of conn.parser.push(chunk)) {
        if (socket.destroyed) return;
        this.onFrame(conn, frame);
      }
    });
    socket.on('error', (err) => {
      conn.lastError = err;
    });
    socket.on('close', () => this.onClose(conn));
  }

  private onFrame(conn: Connection, frame: AmiFrame): void {
    if (frame.type === 'greeting') {
      if (!/Call Manager/i.test(frame.text)) {
        conn.socket.destroy(new AmiError('AMI_PROTOCOL', `not an AMI server (greeting ${JSON.stringify(frame.text.slice(0, 60))})`));
        return;
      }
      clearTimeout(conn.handshakeTimer);
      conn.greeted = true;
      this.log.debug({ greeting: frame.text }, 'AMI greeting');
      this.login(conn);
      return;
    }
    if (!conn.greeted) {
      conn.socket.destroy(new AmiError('AMI_PROTOCOL', 'AMI server sent data before its greeting'));
      return;
    }
    if (frame.type === 'error') {
      this.junk(conn, { reason: frame.reason });
      return;
    }
    const message = frame.message;
    const id = message.get('ActionID');
    // The response answers an action; after a list's response, so do the list's events.
    const pending = id !== undefined ? conn.pending.get(id) : undefined;
    const taken = pending ? pending.take(message) : false;
    if (taken) {
      if (taken === 'done') {
        conn.pending.delete(id!);
        clearTimeout(pending!.timer);
      }
    } else if (message.get('Event') !== undefined) {
      this.emit('event', message);
    } else if (message.get('Response') !== undefined) {
      this.log.debug({ actionId: id }, 'AMI response for no pending action (late or foreign) dropped');
    } else {
      this.junk(conn, { keys: message.fields.slice(0, 5).map((f) => f[0]) });
    }
  }

  /** Garbage is skipped; warn once per connection so a babbling server cannot flood the log. */
  private junk(conn: Connection, details: object): void {
    conn.junk++;
    const level = conn.junk === 1 ? 'warn' : 'debug';
    this.log[level]({ ...details, count: conn.junk }, 'AMI server sent something that is not a response or event; skipped');
  }

  private login(conn: Connection): void {
    const { username, secret, events, actionTimeoutMs } = this.opts;
    const fields: AmiFields = [
      ['Username', username],
      ['Secret', secret],
      ['Events', events ? 'on' : 'off'],
    ];
    this.request(conn, 'Login', fields, actionTimeoutMs).then(
      ({ response }) => {
        if (conn !== this.conn || !this.running) return;
        if (response.get('Response')?.toLowerCase() === 'success') {
          this.onLoggedIn(conn);
          return;
        }
        const err = new AmiError('AMI_LOGIN_FAILED', `AMI login as ${username} refused: ${response.get('Message') ?? 'no reason given'}`);
        this.log.warn({ username, code: err.code, reason: response.get('Message') }, 'AMI login refused');
        this.emit('loginFailed', err);
        conn.socket.destroy();
      },
      (err: unknown) => {
        // A disconnect is handled by onClose; a silent server is treated as down.
        if (err instanceof AmiError && err.code === 'AMI_TIMEOUT') conn.socket.destroy(err);
      },
    );
  }

  private onLoggedIn(conn: Connection): void {
    conn.loggedIn = true;
    this.failures = 0;
    if (this.everConnected) this.reconnectCount++;
    this.everConnected = true;
    this.log.info({ host: this.opts.host, port: this.opts.port, username: this.opts.username, reconnects: this.reconnectCount }, 'AMI connected');
    this.setState('connected');
    this.emit('connected');
    this.armKeepalive(conn, this.opts.keepaliveMs);
  }

  /** Re-checks idleness every `keepaliveMs` at most; unref'd, and cleared when the connection closes or the client stops. */
  private armKeepalive(conn: Connection, delayMs: number): void {
    const keepaliveMs = this.opts.keepaliveMs;
    if (!(keepaliveMs > 0)) return;
    clearTimeout(conn.keepaliveTimer);
    conn.keepaliveTimer = setTimeout(() => {
      conn.keepaliveTimer = undefined;
      if (conn !== this.conn || !this.running || conn.socket.destroyed) return;
      const idleMs = performance.now() - conn.lastDataAt;
      if (idleMs >= keepaliveMs) {
        this.probe(conn, `nothing received for ${Math.round(idleMs)} ms`);
        this.armKeepalive(conn, keepaliveMs);
      } else {
        this.armKeepalive(conn, keepaliveMs - idleMs);
      }
    }, Math.max(1, delayMs));
    conn.keepaliveTimer.unref();
  }

  /**
   * Sends a Ping on `conn` unless one is already in flight. Any response means
   * the PBX still reads and answers on this connection: it is kept. None within
   * the action timeout: the connection is half-open; it is destroyed, which fails
   * what is in flight (AMI_DISCONNECTED) and schedules the reconnect.
   */
  private probe(conn: Connection, trigger: string): void {
    if (conn.probing || conn !== this.conn || !this.running || !conn.loggedIn || conn.socket.destroyed) return;
    conn.probing = true;
    const timeoutMs = this.opts.actionTimeoutMs;
    this.log.debug({ trigger }, 'AMI liveness Ping sent');
    this.request(conn, 'Ping', [], timeoutMs, { unref: true }).then(
      () => {
        conn.probing = false;
        this.log.debug({ trigger }, 'AMI liveness Ping answered: connection kept');
      },
      (err: unknown) => {
        conn.probing = false;
        if (!(err instanceof AmiError) || err.code !== 'AMI_TIMEOUT') return; // closed meanwhile: onClose took care of it
        if (conn !== this.conn || conn.socket.destroyed) return;
        const dead = new AmiError(
          'AMI_UNRESPONSIVE',
          `AMI connection unresponsive: Ping got no response within ${timeoutMs} ms (${trigger}); closing it to reconnect`,
        );
        this.log.warn(
          { host: this.opts.host, port: this.opts.port, code: dead.code, trigger, timeoutMs },
          'AMI connection unresponsive (Ping unanswered); closing it to reconnect',
        );
        conn.socket.destroy(dead);
      },
    );
  }

  private onClose(conn: Connection): void {
    clearTimeout(conn.handshakeTimer);
    clearTimeout(conn.keepaliveTimer);
    if (conn !== this.conn) return;
    this.conn = undefined;
    const cause = conn.lastError;
    const where = `${this.opts.host}:${this.opts.port}`;
    const err = new AmiError('AMI_DISCONNECTED', `AMI connection to ${where} closed${cause ? `: ${cause.message}` : ''}`, { cause });
    // Fail everything in flight now, not at its timeout: the caller must learn at once.
    for (const p of conn.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    conn.pending.clear();
    // A connection we closed as unresponsive was warned about already: one warning per dead connection.
    const ours = cause instanceof AmiError && cause.code === 'AMI_UNRESPONSIVE';
    if (conn.loggedIn) this.log[ours ? 'info' : 'warn']({ host: this.opts.host, port: this.opts.port, code: err.code, reason: cause?.message }, 'AMI disconnected');
    else this.log.debug({ host: this.opts.host, port: this.opts.port, reason: cause?.message }, 'AMI connection attempt failed');
    if (!this.running) {
      this.setState('stopped');
    } else {
      this.setState('backoff');
      this.scheduleReconnect();
    }
    if (conn.loggedIn) this.emit('disconnected', err);
  }

  private scheduleReconnect(): void {
    const delayMs = backoffDelay(this.failures, this.opts.backoff);
    this.failures++;
    this.log.debug({ attempt: this.failures, delayMs }, 'AMI reconnect scheduled');
    this.emit('backoff', { attempt: this.failures, delayMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.running) this.connect();
    }, delayMs);
  }

  private setState(state: AmiState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    for (const waiter of [...this.waiters]) waiter(state);
    this.emit('state', state);
  }
}
