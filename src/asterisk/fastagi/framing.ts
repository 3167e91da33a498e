/**
 * FastAGI framing (SPEC §6), pure: bytes from Asterisk in any split → items;
 * commands → one safe line. Nothing here throws on input from the wire: a
 * malformed or over-long line becomes an `error` item and the caller decides
 * (the server ends the session, since the dialogue can no longer be trusted).
 *
 * Reply formats written by res_agi.c:
 *   200 result=N            200 result=N (data)         200 result=N endpos=M
 *   200 result=N (data) endpos=M                        200 result= (timeout)
 *   510 Invalid or unknown command
 *   511 Command Not Permitted on a dead channel or intercept routine
 *   520-Invalid command syntax.  Proper usage follows:  ← one reply, up to
 *   <usage lines, any text>                                the "520 " line
 *   520 End of proper usage.
 *   HANGUP                  ← unsolicited: the channel hung up; never a reply
 */
import { SmsRouterError } from '../../errors.js';

export interface AgiReply {
  code: number;
  /** Text after `result=` up to the first space; '' when absent (non-200 replies, `result= (timeout)`). */
  result: string;
  /** Text in the parentheses for 200 replies; the message text for other codes (all lines of a 520 block, '\n'-joined). */
  data?: string;
  endpos?: number;
  /** Raw lines as received (without line ends), including 520 usage lines and spilled value lines. */
  lines: string[];
}

export type AgiItem =
  | { type: 'environment'; env: Record<string, string> }
  | { type: 'reply'; reply: AgiReply }
  | { type: 'hangup' }
  | { type: 'error'; reason: string };

/** A value that would end the command line early (and let the rest run as a second command). */
export class AgiUnsafeValueError extends SmsRouterError {
  constructor(readonly field: string, reason = 'contains CR, LF or NUL') {
    super('AGI_UNSAFE_VALUE', `AGI ${field} ${reason}`);
  }
}

/** True for a 2xx reply; 510/511/520 resolve too, so callers check this. */
export function replyOk(reply: AgiReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
// agi_arg_N alone can be 127 entries; this only stops an endless "environment".
const MAX_ENV_LINES = 1024;
// Keys become object properties: only plain identifiers (no __proto__ games).
const ENV_KEY = /^[A-Za-z][A-Za-z0-9_]*$/;
const REPLY_START = /^(\d{3})(?: ([\s\S]*))?$/;
const MULTI_START = /^(\d{3})-/;
// One " key=value" attribute after a reply's data (endpos=…), without its leading space.
const ATTR = /^[^\s=]+=\S*$/;

// A reply that spans lines. `overflow`: it outgrew maxLineBytes; its lines
// are skipped (not stored) up to its end, so the next reply is still found.
type Block =
  // A "NNN-" reply: every line belongs to it until the line starting "NNN ".
  | { kind: 'multi'; code: string; lines: string[]; bytes: number; overflow: boolean }
  // A 200 reply whose "(data" did not close on its line: the value held a
  // newline (the recorded ${MESSAGE(body)}); the next lines are still data.
  | { kind: 'spill'; lines: string[]; bytes: number; overflow: boolean };

export class AgiReader {
  private readonly maxLineBytes: number;
  // The unfinished line, copied (the caller may reuse its chunk) into one buffer
  // grown by doubling: a Buffer per chunk cost ~115 heap bytes per byte held when
  // fed a byte at a time (1.9 MB for a 16 KiB line; found by test/fuzz/agi-framing.test.ts).
  private pending: Buffer = Buffer.alloc(0);
  private pendingBytes = 0;
  private discarding = false; // inside a line already reported as too long
  private phase: 'environment' | 'replies' = 'environment';
  private env: Record<string, string> = {};
  private envLines = 0;
  private block: Block | undefined;

  constructor(options: { maxLineBytes?: number } = {}) {
    this.maxLineBytes = Math.max(16, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  }

  /** Bytes held while waiting for a line end (never more than maxLineBytes). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Uint8Array): AgiItem[] {
    const items: AgiItem[] = [];
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      const segment = buf.subarray(start, nl);
      start = nl + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      if (this.pendingBytes + segment.length > this.maxLineBytes) {
        this.dropPending();
        this.tooLong(items);
        continue;
      }
      const bytes = this.pendingBytes > 0 ? Buffer.concat([this.pending.subarray(0, this.pendingBytes), segment]) : segment;
      this.dropPending();
      let line = bytes.toString('utf8');
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.line(line, items);
    }
    const rest = buf.subarray(start);
    if (rest.length > 0 && !this.discarding) {
      if (this.pendingBytes + rest.length > this.maxLineBytes) {
        this.dropPending();
        this.discarding = true;
        this.tooLong(items);
      } else {
        const need = this.pendingBytes + rest.length;
        if (need > this.pending.length) {
          const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.pending.length, 256));
          this.pending.copy(grown, 0, 0, this.pendingBytes);
          this.pending = grown;
        }
        rest.copy(this.pending, this.pendingBytes);
        this.pendingBytes = need;
      }
    }
    return items;
  }

  private dropPending(): void {
    if (this.pending.length > 4096) this.pending = Buffer.alloc(0); // keep no big buffer for good
    this.pendingBytes = 0;
  }

  private tooLong(items: AgiItem[]): void {
    // A reply being assembled has lost a line: it cannot be completed.
    this.block = undefined;
    items.push({ type: 'error', reason: `line longer than ${this.maxLineBytes} bytes` });
  }

  private line(line: string, items: AgiItem[]): void {
    if (this.phase === 'environment') this.environmentLine(line, items);
    else if (this.block) this.blockLine(this.block, line, items);
    else this.replyLine(line, items);
  }

  private environmentLine(line: string, items: AgiItem[]): void {
    if (line === '') {
      items.push({ type: 'environment', env: this.env });
      this.phase = 'replies';
      this.env = {};
      this.envLines = 0;
      return;
    }
    this.envLines++;
    // Split at the first ': ' only: values such as agi_request hold ':' too.
    const sep = line.indexOf(': ');
    const key = sep >= 0 ? line.slice(0, sep) : line.endsWith(':') ? line.slice(0, -1) : undefined;
    const value = sep >= 0 ? line.slice(sep + 2) : '';
    if (key === undefined || !ENV_KEY.test(key)) {
      items.push({ type: 'error', reason: `environment line ${this.envLines} is not "agi_key: value"` });
    } else if (this.envLines > MAX_ENV_LINES) {
      if (this.envLines === MAX_ENV_LINES + 1) items.push({ type: 'error', reason: `environment longer than ${MAX_ENV_LINES} lines` });
    } else {
      this.env[key] = value;
    }
  }

  private replyLine(line: string, items: AgiItem[]): void {
    if (line === 'HANGUP') {
      items.push({ type: 'hangup' });
      return;
    }
    if (line === '') return; // harmless; never a reply
    const multi = MULTI_START.exec(line);
    if (multi) {
      this.block = { kind: 'multi', code: multi[1]!, lines: [line], bytes: Buffer.byteLength(line), overflow: false };
      return;
    }
    const parsed = parseReply(line, [line]);
    if (!parsed) {
      items.push({ type: 'error', reason: 'line is neither a reply nor HANGUP' });
    } else if (!parsed.complete) {
      this.block = { kind: 'spill', lines: [line], bytes: Buffer.byteLength(line), overflow: false };
    } else {
      items.push({ type: 'reply', reply: parsed.reply });
    }
  }

  private blockLine(block: Block, line: string, items: AgiItem[]): void {
    if (!block.overflow) {
      block.lines.push(line);
      block.bytes += Buffer.byteLength(line) + 1;
      if (block.bytes > this.maxLineBytes) {
        // Bounded like a single line: say the reply is lost, keep its end in sight.
        block.overflow = true;
        block.lines = [];
        items.push({ type: 'error', reason: `reply longer than ${this.maxLineBytes} bytes` });
      }
    }
    if (block.kind === 'multi') {
      if (!line.startsWith(block.code + ' ')) return;
      this.block = undefined;
      if (block.overflow) return;
      // data: the text of every line without the "NNN-" / "NNN " prefixes.
      const data = [block.lines[0]!.slice(4), ...block.lines.slice(1, -1), line.slice(4)].join('\n');
      items.push({ type: 'reply', reply: { code: Number(block.code), result: '', data, lines: block.lines } });
      return;
    }
    if (block.overflow) {
      if (/\)(?: |$)/.test(line)) this.block = undefined;
      return;
    }
    // Only the new line can hold the closing ")": an earlier one would have closed the reply
    // already (and a ")" before a line break is not followed by attributes). Re-parsing the
    // whole block on every line was quadratic: 60 KB of spilled empty lines took 8 s.
    if (!/\)(?: |$)/.test(line)) return;
    const parsed = parseReply(block.lines.join('\n'), block.lines);
    if (parsed?.complete) {
      this.block = undefined;
      items.push({ type: 'reply', reply: parsed.reply });
    }
  }
}

/**
 * One reply line (or a spilled reply joined with '\n'); undefined when the
 * line is not a reply (HANGUP, "520-" block starts, garbage). Data may hold
 * spaces and parentheses: `200 result=1 ("AGI Tester" <48600111222>)`.
 */
export function parseReplyLine(line: string): AgiReply | undefined {
  const text = line.replace(/\r?\n$|\r$/, '');
  return parseReply(text, [text])?.reply;
}

function parseReply(text: string, lines: string[]): { reply: AgiReply; complete: boolean } | undefined {
  const m = REPLY_START.exec(text);
  if (!m) return undefined;
  const code = Number(m[1]);
  const rest = m[2] ?? '';
  const result = /^result=(\S*)/.exec(rest);
  if (!result) {
    const reply: AgiReply = { code, result: '', lines };
    if (rest !== '') reply.data = rest;
    return { reply, complete: true };
  }
  const reply: AgiReply = { code, result: result[1]!, lines };
  let tail = rest.slice(result[0].length);
  let complete = true;
  if (tail.startsWith(' (')) {
    const close = closingParen(tail);
    if (close === -1) {
      // "(" never closed: Asterisk printed a value holding a newline.
      complete = false;
      reply.data = tail.slice(2);
      tail = '';
    } else {
      reply.data = tail.slice(2, close);
      tail = tail.slice(close + 1);
    }
  }
  const endpos = /(?:^| )endpos=(-?\d+)(?= |$)/.exec(tail);
  if (endpos) reply.endpos = Number(endpos[1]);
  return { reply, complete };
}

// The ")" that ends the data: the last one followed only by " key=value"
// attributes (endpos=…), else the first one followed by a space or the end.
// In linear time: the run of attributes that ends the tail is measured once, from the
// right, rather than matched by a regex after every ")" (60 KB of ") a=b" took 2 s;
// test/fuzz/agi-framing.test.ts checks this against that plain definition).
function closingParen(tail: string): number {
  let attrs = tail.length; // tail.slice(attrs) is the longest run of " key=value" ending the tail
  for (let sp = tail.lastIndexOf(' ', attrs - 1); sp >= 0 && ATTR.test(tail.slice(sp + 1, attrs)); sp = tail.lastIndexOf(' ', sp - 1)) {
    attrs = sp;
  }
  for (let i = tail.lastIndexOf(')'); i > 1; i = tail.lastIndexOf(')', i - 1)) {
    if (i === tail.length - 1 || (i + 1 >= attrs && tail[i + 1] === ' ')) return i;
  }
  for (let i = tail.indexOf(')', 2); i !== -1; i = tail.indexOf(')', i + 1)) {
    if (i === tail.length - 1 || tail[i + 1] === ' ') return i;
  }
  return -1;
}

/**
 * res_agi reads a command with fgets into char buf[AGI_BUF_LEN = 2048]: the
 * rest of a longer line would be read, and run, as a second command.
 */
export const MAX_COMMAND_BYTES = 2047;
const UNSAFE = /[\r\n\0]/;

/** An argument as res_agi's parse_args() reads it back: "...", with \ and " escaped. */
export function quoteArg(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/** A token that parse_args() reads back unchanged without quotes (variable names, ${EXPR}). */
export function isBareWord(value: string): boolean {
  return /^[^\s"\\\0]+$/.test(value);
}

/** `GET VARIABLE X\n`; args are quoted. Refuses CR/LF/NUL anywhere and over-long lines, before anything is written. */
export function encodeCommand(command: string, args: readonly string[] = []): string {
  if (UNSAFE.test(command)) throw new AgiUnsafeValueError('command');
  if (command.trim() === '') throw new AgiUnsafeValueError('command', 'is empty');
  args.forEach((arg, i) => {
    if (UNSAFE.test(arg)) throw new AgiUnsafeValueError(`argument ${i + 1} of ${command.split(' ')[0]}`);
  });
  const line = [command, ...args.map(quoteArg)].join(' ') + '\n';
  const bytes = Buffer.byteLength(line);
  if (bytes > MAX_COMMAND_BYTES) {
    throw new AgiUnsafeValueError('command', `is ${bytes} bytes; Asterisk reads at most ${MAX_COMMAND_BYTES}`);
  }
  return line;
}
