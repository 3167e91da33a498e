/**
 * A fake Asterisk manager (AMI) on a real socket (127.0.0.1, port 0), written from
 * the Asterisk 20 transcripts in spool-fixtures/ami/: the same greeting, the same
 * response texts, `Authentication failed` followed by a closed connection,
 * `Goodbye` on Logoff. It records everything it receives and can be told to
 * misbehave: refuse logins, stall, drop mid-action, split or batch its writes,
 * interleave events, send hostile framing, stop and restart on the same port,
 * or blackhole a connection (held open, never answered, not even a Ping).
 *
 * It keeps an AstDB (`astdb`, FAMILY/KEY → value; a fake Asterisk may share the
 * Map, as dialplan and manager share Asterisk's) and answers DBGet, DBPut and
 * DBDel as Asterisk 20's main/db.c does: DBGet is a response list (`Response:
 * Success`, `EventList: start`, then `Event: DBGetResponse` with the ActionID
 * after Val, then `Event: DBGetComplete`), a missing key a plain Error. The
 * texts and field order are in DB_TEXT and dbGetAnswer(), checked byte for byte
 * against a real session (spool-fixtures/ami/ami_dbget_transcript.txt).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AmiParser, type AmiFields, type AmiMessage } from '../../src/asterisk/ami/framing.js';

export const GREETING = 'Asterisk Call Manager/9.0.0';

/** Response texts exactly as a real Asterisk 20 sends them. */
export const TEXT = {
  authAccepted: 'Authentication accepted',
  authFailed: 'Authentication failed',
  sent: 'Message successfully sent',
  failed: 'Message failed to send.',
  noTech: 'Message technology not found.',
  noTo: "No 'To' address specified.",
  goodbye: 'Thanks for all the fish.',
  denied: 'Permission denied',
  unknown: 'Invalid/unknown command',
  noAction: 'Missing action in request',
} as const;

/** AstDB's manager texts (main/db.c, Asterisk 20; spool-fixtures/ami/ami_dbget_transcript.txt). */
export const DB_TEXT = {
  follows: 'Result will follow',
  notFound: 'Database entry not found',
  deleted: 'Key deleted successfully',
  // DBDel of a missing key: ast_db_del2() (Asterisk 20 since 2022) checks that the key exists first.
  notDeleted: 'Database entry could not be deleted',
  updated: 'Updated database successfully',
  noFamily: 'No family specified.',
  noKey: 'No key specified.',
  // DBPut's own texts have no full stop.
  putNoFamily: 'No family specified',
  putNoKey: 'No key specified',
} as const;

// Technologies a stock Asterisk registers with the message core.
const MESSAGE_TECHS = new Set(['sip', 'pjsip', 'iax2', 'xmpp']);

export interface ReceivedAction {
  conn: number;
  /** Action name as received. */
  name: string;
  actionId: string | undefined;
  message: AmiMessage;
}

export interface DeliveredMessage {
  conn: number;
  to: string;
  from: string | undefined;
  /** Base64Body decoded, or Body. */
  body: string;
}

export interface ConnectionRecord {
  id: number;
  openedAt: number;
  closedAt?: number;
  /** Every byte the client sent on this connection. */
  raw: Buffer[];
  authenticated: boolean;
  /** blackhole() was applied to it. */
  blackholed?: boolean;
}

/** What a custom `reply` hook may answer: response fields (ActionID is added), never answer, or cut the connection. */
export type Reply = AmiFields | 'stall' | 'drop';

export type Chunking =
  | { mode: 'whole' } // one write per message
  | { mode: 'split'; at: readonly number[] } // each message written in pieces cut at these offsets
  | { mode: 'bytes' } // each message written one byte at a time
  | { mode: 'batch'; count: number; reverse?: boolean }; // hold messages and write `count` of them in one chunk

interface Live {
  record: ConnectionRecord;
  socket: Socket;
  parser: AmiParser;
  batch: Buffer[];
  queue: Promise<void>;
  /** Actions left unanswered; a MessageSend only counts as delivered once answered. */
  stalled: ReceivedAction[];
  /** Being dropped: reads nothing more, writes nothing new. */
  dead: boolean;
  /** Half-open: held open, what arrives is recorded and never answered, nothing is written. */
  blackholed: boolean;
}

export const AMI_FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/ami/', import.meta.url));

/** One turn of a recorded AMI session: what the client wrote, or what Asterisk answered to it (one read). */
export interface AmiTurn {
  from: 'client' | 'server';
  /** The exact bytes, CRLF line ends restored. */
  text: string;
}

/**
 * Reads a session recorded with the lab's tools/ami.py (spool-fixtures/ami/ami_dbget_transcript.txt):
 * `> ` lines were sent, `< ` lines received, each one CRLF-terminated line; `#` lines are comments.
 * The tool prints one extra `<` blank line after each read, which is not on the wire.
 */
export function parseAmiTranscript(text: string): AmiTurn[] {
  const turns: Array<{ from: 'client' | 'server'; lines: string[] }> = [];
  for (const raw of text.split('\n')) {
    const m = /^([<>]) ?(.*)$/.exec(raw);
    if (!m) continue;
    const from = m[1] === '>' ? 'client' : 'server';
    if (turns.at(-1)?.from !== from) turns.push({ from, lines: [] });
    turns.at(-1)!.lines.push(m[2]!);
  }
  return turns.map(({ from, lines }) => ({ from, text: (from === 'server' ? lines.slice(0, -1) : lines).map((l) => `${l}\r\n`).join('') }));
}

export function loadAmiTranscript(name: string): AmiTurn[] {
  return parseAmiTranscript(readFileSync(AMI_FIXTURES + name, 'utf8'));
}

export function encodeMessage(fields: AmiFields): Buffer {
  return Buffer.from(fields.map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n', 'utf8');
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FakeAmiServer extends EventEmitter {
  readonly host = '127.0.0.1';
  port = 0;
  username = 'labami';
  secret = 'labsecret123';

  // --- behaviour knobs -------------------------------------------------------
  /** null: accept the connection and never greet. */
  greeting: string | null = GREETING;
  /** false refuses every login, whatever the credentials. */
  loginAccepted = true;
  /** MessageSend `To` → error text (e.g. TEXT.failed); others succeed. */
  readonly messageSendErrors = new Map<string, string>();
  /** Lower-case action names never answered ('*' for all but Login/Logoff); see answerStalled(). */
  readonly stalled = new Set<string>();
  /** Events written just before each response (they carry that response's ActionID, as list events do). */
  interleaveEvents = 0;
  chunking: Chunking = { mode: 'whole' };
  /** Override for any action; return undefined for the default behaviour. */
  reply: ((action: ReceivedAction) => Reply | undefined) | undefined;
  /** Lower-case action names the user may not run (`Permission denied`, as for a missing write class). */
  readonly denied = new Set<string>();
  /** AstDB: `FAMILY/KEY` → value. */
  readonly astdb = new Map<string, string>();

  // --- records ---------------------------------------------------------------
  readonly actions: ReceivedAction[] = [];
  readonly delivered: DeliveredMessage[] = [];
  readonly connections: ConnectionRecord[] = [];

  private server: Server | undefined;
  private readonly live = new Set<Live>();
  private dropCountdown: number | undefined;
  private eventSeq = 0;

  static async start(): Promise<FakeAmiServer> {
    const fake = new FakeAmiServer();
    await fake.listen();
    return fake;
  }

  /** Listens (again) on the same port once one was assigned. */
  async listen(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    const address = server.address();
    if (address && typeof address === 'object') this.port = address.port;
    this.server = server;
  }

  /** Stops listening and drops every connection, like a PBX going down. listen() brings it back. */
  async stopListening(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.dropConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  close(): Promise<void> {
    return this.stopListening();
  }

  /** Every byte received from clients, all connections in order. */
  receivedBytes(): Buffer {
    return Buffer.concat(this.connections.flatMap((c) => c.raw));
  }

  actionsNamed(name: string): ReceivedAction[] {
    return this.actions.filter((a) => a.name.toLowerCase() === name.toLowerCase());
  }

  get openConnections(): number {
    return this.live.size;
  }

  /** Cut every connection after `n` more actions arrive; the n-th is never answered. */
  dropAfter(n: number): void {
    this.dropCountdown = n;
  }

  /** Cuts every connection, like a crashing PBX: what was already answered is still sent first. */
  dropConnections(): void {
    for (const c of this.live) this.kill(c);
  }

  /**
   * Makes every open connection half-open, like a hung PBX or a firewall that
   * silently forgot the flow: nothing is closed, what the client sends is still
   * recorded in `actions` but never answered (not even Ping, Logoff or Login),
   * and nothing is written (no events either). The client's eventual close is
   * noticed as usual. Connections accepted afterwards are served normally.
   */
  blackhole(): void {
    for (const c of this.live) {
      c.blackholed = true;
      c.record.blackholed = true;
      c.batch.length = 0;
    }
    this.emit('change');
  }

  /** Answers, now, every action that was stalled (the client may have given up on them). */
  answerStalled(): void {
    for (const c of this.live) {
      for (const a of c.stalled.splice(0)) {
        const answer = this.answerFor(c, a);
        if (answer !== 'handled') this.respond(c, a, answer);
      }
    }
  }

  sendEvent(fields: AmiFields): void {
    for (const c of this.live) if (c.record.authenticated && !c.blackholed) this.write(c, encodeMessage(fields));
  }

  sendRaw(bytes: Buffer | string): void {
    for (const c of this.live) if (!c.blackholed) c.socket.write(bytes);
  }

  /** Writes a batch still held by `{ mode: 'batch' }`. */
  flush(): void {
    for (const c of this.live) this.flushBatch(c);
  }

  /** Framing a broken or hostile server might send; each piece ends with a blank line so framing can recover. */
  sendHostile(hugeBytes = 2 * 1024 * 1024): void {
    this.sendRaw(
      Buffer.concat([
        Buffer.from('garbage without a colon\r\nmore garbage\n\r\n'),
        Buffer.from('Response: Success\r\nActionID: nobody-knows-me\r\nMessage: orphan\r\n\r\n'),
        Buffer.from(`Event: Huge\r\nValue: ${'x'.repeat(hugeBytes)}\r\n\r\n`),
        Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x0a, 0x0a]),
        Buffer.from('\r\n\n\r\nNoSpace:here\nGreeting: Asterisk Call Manager/9.0.0\n\n'),
        Buffer.from(': empty key\r\n:\r\n\r\n'),
      ]),
    );
  }

  /** Resolves when `predicate` holds, re-checked on every connection, action and delivery. */
  waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake AMI: timed out waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('change', check);
      };
      this.on('change', check);
    });
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const record: ConnectionRecord = { id: this.connections.length + 1, openedAt: performance.now(), raw: [], authenticated: false };
    this.connections.push(record);
    const c: Live = { record, socket, parser: new AmiParser({ expectGreeting: false }), batch: [], queue: Promise.resolve(), stalled: [], dead: false, blackholed: false };
    this.live.add(c);
    socket.on('error', () => {}); // a client reset is normal here
    socket.on('close', () => {
      record.closedAt = performance.now();
      this.live.delete(c);
      this.emit('change');
    });
    socket.on('data', (chunk: Buffer) => {
      record.raw.push(Buffer.from(chunk));
      for (const frame of c.parser.push(chunk)) {
        if (frame.type === 'message' && !c.dead) this.onAction(c, frame.message);
      }
    });
    if (this.greeting !== null) socket.write(`${this.greeting}\r\n`);
    this.emit('change');
  }

  private onAction(c: Live, message: AmiMessage): void {
    const action: ReceivedAction = { conn: c.record.id, name: message.get('Action') ?? '', actionId: message.get('ActionID'), message };
    this.actions.push(action);
    this.emit('change');
    if (c.blackholed) return;
    if (this.dropCountdown !== undefined && --this.dropCountdown <= 0) {
      this.dropCountdown = undefined;
      this.dropConnections();
      return;
    }
    const answer = this.reply?.(action) ?? this.defaultReply(c, action);
    if (answer === 'drop') this.kill(c);
    else if (answer === 'stall') c.stalled.push(action);
    else if (answer !== 'handled') this.respond(c, action, answer);
  }

  private defaultReply(c: Live, a: ReceivedAction): Reply | 'handled' {
    const name = a.name.toLowerCase();
    const m = a.message;
    if (name === '') return [['Response', 'Error'], ['Message', TEXT.noAction]];
    if (name === 'login') {
      const ok = this.loginAccepted && m.get('Username') === this.username && m.get('Secret') === this.secret;
      if (!ok) {
        // Asterisk answers, then hangs up on a failed login.
        this.respond(c, a, [['Response', 'Error'], ['Message', TEXT.authFailed]]);
        this.hangUp(c);
        return 'handled';
      }
      c.record.authenticated = true;
      return [['Response', 'Success'], ['Message', TEXT.authAccepted]];
    }
    if (name === 'logoff') {
      this.respond(c, a, [['Response', 'Goodbye'], ['Message', TEXT.goodbye]]);
      this.hangUp(c);
      return 'handled';
    }
    if (!c.record.authenticated || this.denied.has(name)) return [['Response', 'Error'], ['Message', TEXT.denied]];
    if (this.stalled.has(name) || this.stalled.has('*')) return 'stall';
    return this.answerFor(c, a);
  }

  private answerFor(c: Live, a: ReceivedAction): AmiFields | 'handled' {
    const m = a.message;
    switch (a.name.toLowerCase()) {
      case 'ping':
        return [['Response', 'Success'], ['Ping', 'Pong'], ['Timestamp', (Date.now() / 1000).toFixed(6)]];
      case 'messagesend': {
        const to = m.get('To');
        if (!to) return [['Response', 'Error'], ['Message', TEXT.noTo]];
        if (!MESSAGE_TECHS.has(to.split(':')[0]!.toLowerCase())) return [['Response', 'Error'], ['Message', TEXT.noTech]];
        const error = this.messageSendErrors.get(to);
        if (error) return [['Response', 'Error'], ['Message', error]];
        const b64 = m.get('Base64Body');
        const body = b64 !== undefined ? Buffer.from(b64, 'base64').toString('utf8') : (m.get('Body') ?? '');
        this.delivered.push({ conn: c.record.id, to, from: m.get('From'), body });
        this.emit('change');
        return [['Response', 'Success'], ['Message', TEXT.sent]];
      }
      case 'dbget': {
        const answer = this.dbGetAnswer(a);
        if (answer.length === 1) return answer[0]!;
        this.respond(c, a, answer[0]!);
        for (const event of answer.slice(1)) this.write(c, encodeMessage(event));
        return 'handled';
      }
      case 'dbput': {
        const family = m.get('Family');
        const key = m.get('Key');
        if (!family) return [['Response', 'Error'], ['Message', DB_TEXT.putNoFamily]];
        if (!key) return [['Response', 'Error'], ['Message', DB_TEXT.putNoKey]];
        this.astdb.set(`${family}/${key}`, m.get('Val') ?? '');
        this.emit('change');
        return [['Response', 'Success'], ['Message', DB_TEXT.updated]];
      }
      case 'dbdel': {
        const family = m.get('Family');
        const key = m.get('Key');
        if (!family) return [['Response', 'Error'], ['Message', DB_TEXT.noFamily]];
        if (!key) return [['Response', 'Error'], ['Message', DB_TEXT.noKey]];
        if (!this.astdb.delete(`${family}/${key}`)) return [['Response', 'Error'], ['Message', DB_TEXT.notDeleted]];
        this.emit('change');
        return [['Response', 'Success'], ['Message', DB_TEXT.deleted]];
      }
      default:
        return [['Response', 'Error'], ['Message', TEXT.unknown]];
    }
  }

  /**
   * DBGet as main/db.c answers it: the response (respond() puts the ActionID
   * second), then, for a key that exists, DBGetResponse (ActionID after Val)
   * and DBGetComplete, written as they are here.
   */
  private dbGetAnswer(a: ReceivedAction): AmiFields[] {
    const family = a.message.get('Family');
    const key = a.message.get('Key');
    if (!family) return [[['Response', 'Error'], ['Message', DB_TEXT.noFamily]]];
    if (!key) return [[['Response', 'Error'], ['Message', DB_TEXT.noKey]]];
    const value = this.astdb.get(`${family}/${key}`);
    if (value === undefined) return [[['Response', 'Error'], ['Message', DB_TEXT.notFound]]];
    const id: AmiFields = a.actionId !== undefined ? [['ActionID', a.actionId]] : [];
    return [
      [['Response', 'Success'], ['EventList', 'start'], ['Message', DB_TEXT.follows]],
      [['Event', 'DBGetResponse'], ['Family', family], ['Key', key], ['Val', value], ...id],
      [['Event', 'DBGetComplete'], ...id, ['EventList', 'Complete'], ['ListItems', '1']],
    ];
  }

  /** Response line first, then the ActionID (if the action had one), as Asterisk orders them. */
  private respond(c: Live, a: ReceivedAction, fields: AmiFields): void {
    const [first, ...rest] = fields;
    const id: AmiFields = a.actionId !== undefined ? [['ActionID', a.actionId]] : [];
    for (let i = 0; i < this.interleaveEvents; i++) {
      this.write(c, encodeMessage([['Event', 'FakeTick'], ['Privilege', 'system,all'], ...id, ['Seq', String(++this.eventSeq)]]));
    }
    this.write(c, encodeMessage([...(first ? [first] : []), ...id, ...rest]));
  }

  private write(c: Live, bytes: Buffer): void {
    if (c.blackholed) return;
    const chunking = this.chunking;
    if (chunking.mode === 'batch') {
      c.batch.push(bytes);
      if (c.batch.length >= chunking.count) this.flushBatch(c);
      return;
    }
    const cuts =
      chunking.mode === 'bytes'
        ? Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)
        : chunking.mode === 'split'
          ? chunking.at.filter((n) => n > 0 && n < bytes.length).sort((x, y) => x - y)
          : [];
    // Writes go through a per-connection queue so split pieces of consecutive messages never interleave.
    c.queue = c.queue.then(async () => {
      let from = 0;
      for (const cut of [...cuts, bytes.length]) {
        if (c.socket.destroyed || c.blackholed) return;
        c.socket.write(bytes.subarray(from, cut));
        from = cut;
        if (cut < bytes.length) await tick(); // give the kernel a chance to send the piece on its own
      }
    });
  }

  private kill(c: Live): void {
    c.dead = true;
    c.queue = c.queue.then(() => {
      c.socket.destroy();
    });
  }

  private hangUp(c: Live): void {
    this.flushBatch(c);
    c.queue = c.queue.then(() => {
      c.socket.end();
    });
  }

  private flushBatch(c: Live): void {
    const batch = c.batch.splice(0);
    if (batch.length === 0) return;
    if (this.chunking.mode === 'batch' && this.chunking.reverse) batch.reverse();
    const bytes = Buffer.concat(batch);
    c.queue = c.queue.then(() => {
      if (!c.socket.destroyed && !c.blackholed) c.socket.write(bytes);
    });
  }
}
