/**
 * A fake Asterisk for FastAGI tests, written from the real sessions recorded
 * in spool-fixtures/agi/ (Asterisk 20). It connects to the server under test
 * like res_agi does: sends the agi_* environment and an empty line, then
 * reads one command line at a time, parses it as res_agi's parse_args() does,
 * and answers from a script. Asterisk's habits it reproduces on demand:
 * an unsolicited HANGUP after a reply, a closed socket at any step, a stalled
 * application, a value that spills over two reply lines, hostile bytes.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const AGI_FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/agi/', import.meta.url));

// ---------------------------------------------------------------- transcripts

export interface Exchange {
  /** The command line the server sent (without '\n'). */
  command: string;
  /** Every line Asterisk wrote after it, in order: the reply, a spilled value's next line, HANGUP. */
  reply: string[];
}

export interface Transcript {
  /** agi_* lines in order: the recorded block, or the values a transcript quotes ("  agi_request: ..."). */
  environment: Array<[string, string]>;
  exchanges: Exchange[];
}

const ANNOTATION = /\s{3,}(?:\(|<-).*$/; // "   <- EXEC's result is -1 ...", "   (path without extension)"
const REPLY_OR_EVENT = /^(?:\d{3}(?: |-|$)|HANGUP$)/;

/** Reads a recorded session: `< ` lines came from Asterisk, `> ` lines from the server. */
export function parseTranscript(text: string): Transcript {
  const environment: Array<[string, string]> = [];
  const exchanges: Exchange[] = [];
  let inEnvironment = true;
  for (const raw of text.split('\n')) {
    const quoted = /^ {2}(agi_\w+): (.*)$/.exec(raw);
    if (quoted && exchanges.length === 0) {
      environment.push([quoted[1]!, quoted[2]!]);
      continue;
    }
    const m = /^([<>]) ?(.*)$/.exec(raw);
    if (!m) continue;
    const line = m[2]!.replace(ANNOTATION, '');
    if (m[1] === '>') {
      inEnvironment = false;
      exchanges.push({ command: line, reply: [] });
    } else if (inEnvironment) {
      if (line === '') inEnvironment = false;
      else environment.push(splitEnvironmentLine(line));
    } else if (REPLY_OR_EVENT.test(line) || exchanges.length === 0) {
      exchanges.at(-1)?.reply.push(line);
    } else {
      // A spilled value: Asterisk wrote this line together with the reply
      // before it; the recorder only saw it when reading the next reply.
      [...exchanges].reverse().find((e) => e.reply.length > 0)?.reply.push(line);
    }
  }
  return { environment, exchanges };
}

export function loadTranscript(name: string): Transcript {
  return parseTranscript(readFileSync(AGI_FIXTURES + name, 'utf8'));
}

function splitEnvironmentLine(line: string): [string, string] {
  const at = line.indexOf(': ');
  return at >= 0 ? [line.slice(0, at), line.slice(at + 2)] : [line.replace(/:$/, ''), ''];
}

/** The environment Asterisk 20 sent in fastagi_transcript.txt, in order. */
export function recordedEnvironment(): Array<[string, string]> {
  return loadTranscript('fastagi_transcript.txt').environment;
}

/** The bytes Asterisk wrote in a session: environment, empty line, then every reply line. */
export function asteriskBytes(environment: ReadonlyArray<readonly [string, string]>, exchanges: readonly Exchange[]): string {
  const env = environment.map(([k, v]) => `${k}: ${v}\n`).join('') + '\n';
  return env + exchanges.flatMap((e) => e.reply.map((l) => l + '\n')).join('');
}

/** A recorded session as a script: command line → what Asterisk answered. */
export function answersFrom(transcript: Transcript): Map<string, AgiAnswer> {
  return new Map(transcript.exchanges.filter((e) => e.reply.length > 0).map((e) => [e.command, e.reply]));
}

/** res_agi.c parse_args(): how Asterisk splits a command line into argv. */
export function parseAgiArgs(line: string): string[] {
  const argv: string[] = [];
  let quoted = false;
  let escaped = false;
  let whitespace = true;
  for (const ch of line) {
    if (ch === '"' && !escaped) {
      quoted = !quoted;
      if (quoted && whitespace) {
        argv.push('');
        whitespace = false;
      }
      continue;
    }
    if ((ch === ' ' || ch === '\t') && !quoted && !escaped) {
      whitespace = true;
      continue;
    }
    if (ch === '\\' && !escaped) {
      escaped = true;
      continue;
    }
    if (whitespace) {
      argv.push('');
      whitespace = false;
    }
    argv[argv.length - 1] += ch;
    escaped = false;
  }
  return argv;
}

// ---------------------------------------------------------------- the client

/**
 * Lines to send in one write ('HANGUP' among them is the unsolicited event),
 * exact bytes, never answer ('stall'), or close the socket instead ('close').
 */
export type AgiAnswer = readonly string[] | { readonly raw: string | Uint8Array } | 'stall' | 'close';

export interface ReceivedCommand {
  /** As written by the server, without '\n'. */
  line: string;
  /** As Asterisk would read it. */
  argv: string[];
  /** 1-based. */
  index: number;
}

/**
 * Keys match the raw line, or argv joined by spaces, or a leading part of it
 * ('EXEC SendFAX' matches any SendFAX); the longest match wins.
 */
export type AgiScript = ReadonlyMap<string, AgiAnswer> | Readonly<Record<string, AgiAnswer>> | ((command: ReceivedCommand) => AgiAnswer | undefined);

export interface FakeAgiOptions {
  port: number;
  host?: string;
  /** Sets agi_request (agi://127.0.0.1:4573/<script>) and agi_network_script. */
  script?: string;
  /** Values added to or replacing the recorded environment (after `script`). */
  env?: Readonly<Record<string, string>>;
  /** false: connect and never speak; bytes: sent instead of the environment. */
  environment?: false | string | Uint8Array;
  answers?: AgiScript;
  /** For commands the script does not know; default `200 result=1`. */
  fallback?: AgiAnswer;
  /** After answering this many commands, send an unsolicited HANGUP (and keep answering: dead AGI). */
  hangupAfter?: number;
  /** After answering this many commands (0: right after the environment), close the socket. */
  closeAfter?: number;
}

export class FakeAgiClient {
  readonly commands: ReceivedCommand[] = [];
  /** Commands that arrived before the previous one was answered (a server must send one at a time). */
  pipelined = 0;
  readonly closed: Promise<void>;
  private readonly chunks: Buffer[] = [];
  private pending = Buffer.alloc(0);
  private stalled = false;
  private answered = 0;
  private isClosed = false;
  private readonly events = new EventEmitter();

  constructor(
    readonly socket: net.Socket,
    private readonly options: FakeAgiOptions,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      this.isClosed = true;
      this.events.emit('change');
    });
    socket.on('error', () => undefined); // a reset by the server is a normal outcome here
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Every byte the server wrote. */
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get hasClosed(): boolean {
    return this.isClosed;
  }

  /** Resolves once `n` commands arrived; rejects if the socket closes first. */
  waitForCommands(n: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.commands.length >= n) resolve();
        else if (this.isClosed) reject(new Error(`closed after ${this.commands.length} of ${n} commands`));
        else return;
        this.events.off('change', check);
      };
      this.events.on('change', check);
      check();
    });
  }

  send(bytes: string | Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** The unsolicited line Asterisk writes when the channel hangs up. */
  hangup(): void {
    this.send('HANGUP\n');
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.pending = Buffer.concat([this.pending, chunk]);
    let inThisChunk = 0;
    for (let nl = this.pending.indexOf(10); nl !== -1; nl = this.pending.indexOf(10)) {
      const line = this.pending.subarray(0, nl).toString('utf8');
      this.pending = this.pending.subarray(nl + 1);
      // Two commands in one read, or one while stalled: the server did not wait for a reply.
      if (inThisChunk++ > 0 || this.stalled) this.pipelined++;
      const command = { line, argv: parseAgiArgs(line), index: this.commands.length + 1 };
      this.commands.push(command);
      this.events.emit('change');
      if (!this.stalled && !this.socket.destroyed) this.answer(command);
    }
  }

  private answer(command: ReceivedCommand): void {
    const answer = this.lookup(command) ?? this.options.fallback ?? ['200 result=1'];
    if (answer === 'stall') {
      this.stalled = true;
      return;
    }
    if (answer === 'close') {
      this.end();
      return;
    }
    this.send('raw' in answer ? answer.raw : answer.map((l) => l + '\n').join(''));
    this.answered++;
    if (this.answered === this.options.hangupAfter) this.hangup();
    if (this.answered === this.options.closeAfter) this.end();
  }

  private lookup(command: ReceivedCommand): AgiAnswer | undefined {
    const script = this.options.answers;
    if (!script) return undefined;
    if (typeof script === 'function') return script(command);
    const entries: Array<[string, AgiAnswer]> = script instanceof Map ? [...script] : Object.entries(script);
    const words = command.argv.join(' ');
    let best: [string, AgiAnswer] | undefined;
    for (const entry of entries) {
      const key = entry[0];
      const hit = key === command.line || key === words || words.startsWith(key + ' ') || command.line.startsWith(key + ' ');
      if (hit && (!best || key.length > best[0].length)) best = entry;
    }
    return best?.[1];
  }
}

/** The recorded environment with `script` and `env` applied, as Asterisk would write it. */
export function environmentBytes(options: Pick<FakeAgiOptions, 'script' | 'env'> = {}): string {
  const env = new Map(recordedEnvironment());
  if (options.script !== undefined) {
    env.set('agi_network_script', options.script);
    env.set('agi_request', `agi://127.0.0.1:4573/${options.script}`);
  }
  for (const [k, v] of Object.entries(options.env ?? {})) env.set(k, v);
  return asteriskBytes([...env], []);
}

/** Connects like Asterisk's AGI(agi://...) and sends the environment (unless told not to). */
export async function connectFakeAgi(options: FakeAgiOptions): Promise<FakeAgiClient> {
  const socket = net.connect({ host: options.host ?? '127.0.0.1', port: options.port });
  socket.setNoDelay(true);
  const client = new FakeAgiClient(socket, options);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (options.environment !== false) {
    client.send(options.environment ?? environmentBytes(options));
    if (options.closeAfter === 0) client.end();
  }
  return client;
}
