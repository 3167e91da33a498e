/**
 * app_sms's own log, `<astlogdir>/sms`: the only place where the phone's
 * answer to an SMS we sent is recorded (app_sms deletes the mttx file before
 * sending and sets no channel variable). One line per message, written by
 * sms_log() with a single open(O_APPEND)/write()/close():
 *
 *   2026-11-22T04:17:17 YOS 48600111222 447700900123 - Hello phone, …
 *   <local time> <Y|N|?><I|O><S|M>[mr as %02X] <queue> <oa|-> <da|-> <text>
 *
 * The text is each UTF-16 unit's low byte (so the file is not UTF-8), with
 * `\` `LF` `CR` escaped and other controls as 0xBF, or `udl=N` with the `n`
 * option. Two consequences of writing low bytes with strlen():
 *  - a character whose low byte is 0x00 (一 U+4E00, Ā U+0100, U+3000 …) ends
 *    the write there: the line is cut and has no '\n', so app_sms's NEXT log
 *    line is glued onto it. splitLogLine() cuts such a line apart again.
 *  - a character whose low byte is 0x0A (上 U+4E0A, Ċ U+010A …) is a raw LF:
 *    the line is split in two; the first half parses (with a cut text), the
 *    rest is not a log line. The matcher compares against the same cut form.
 * Raw CR bytes (č U+010D → 0x0D) are part of the text and are never stripped.
 */
import { closeSync, fstatSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface SmsLogEntry {
  /** app_sms's local time, YYYY-MM-DDTHH:MM:SS, no zone. */
  time: string;
  /** Y = acknowledged, N = refused or failed, ? = incomplete at hang-up. */
  status: 'Y' | 'N' | '?';
  /** O = sent by Asterisk, I = received by Asterisk. */
  direction: 'I' | 'O';
  /** S = Asterisk was the SMS centre, M = Asterisk was the phone. */
  role: 'S' | 'M';
  mr: number | undefined;
  queue: string;
  oa: string | undefined;
  da: string | undefined;
  /** Raw bytes of the text field (low bytes, escaped), a view into `raw`. */
  text: Buffer;
  /** The whole line, without its '\n'. */
  raw: Buffer;
}

// Header up to the text. Tokens are "anything but a space": app_sms writes the
// queue as [A-Za-z0-9-] and addresses as '+'/digits (or ':'..'?' for nibbles
// A-F of a received address), none of which can contain a space.
const HEADER = '(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d) ([YN?])([IO])([SM])([0-9A-F]{2})? ([^ ]+) ([^ ]+) ([^ ]+)(?: |$)';
const HEADER_AT_START = new RegExp(`^${HEADER}`);

/** Parses one log line (without '\n'); undefined for anything else. Never throws. */
export function parseSmsLogLine(line: Buffer): SmsLogEntry | undefined {
  try {
    // latin1 maps bytes 1:1 to characters, so string offsets are byte offsets.
    const m = HEADER_AT_START.exec(line.toString('latin1'));
    if (!m) return undefined;
    const raw = Buffer.from(line); // own copy: callers may reuse their read buffer
    const dash = (s: string | undefined): string | undefined => (s === undefined || s === '-' ? undefined : s);
    return {
      time: m[1]!,
      status: m[2] as SmsLogEntry['status'],
      direction: m[3] as SmsLogEntry['direction'],
      role: m[4] as SmsLogEntry['role'],
      mr: m[5] === undefined ? undefined : parseInt(m[5], 16),
      queue: m[6]!,
      oa: dash(m[7]),
      da: dash(m[8]),
      text: raw.subarray(m[0].length),
      raw,
    };
  } catch {
    return undefined;
  }
}

/**
 * Cuts a line into the log lines it holds: after a text cut short by a 0x00
 * low byte, app_sms's next line follows without a '\n'. A new header is looked
 * for only inside the text field; a user text that itself contains a complete
 * log header would be cut too, which we accept as far less likely than 一.
 */
export function splitLogLine(line: Buffer): Buffer[] {
  const s = line.toString('latin1');
  const first = HEADER_AT_START.exec(s);
  if (!first) return [line];
  const out: Buffer[] = [];
  const again = new RegExp(HEADER, 'g');
  let start = 0;
  again.lastIndex = first[0].length;
  for (let m = again.exec(s); m; m = again.exec(s)) {
    out.push(line.subarray(start, m.index));
    start = m.index;
    again.lastIndex = m.index + m[0].length; // the next one must be in this entry's text
  }
  out.push(line.subarray(start));
  return out;
}

// ------------------------------------------------------------------ follower

export interface FollowPosition {
  inode: number;
  offset: number;
}

/** Where reading stopped; the daemon keeps it in SQLite so a restart resumes exactly there. */
export interface FollowStore {
  load(): FollowPosition | undefined;
  save(p: FollowPosition): void;
}

export interface SmsLogFollowerOptions {
  file: string;
  store: FollowStore;
  onEntries: (entries: SmsLogEntry[]) => void;
  pollMs?: number;
  log?: { warn(o: object, m: string): void };
}

const CHUNK = 64 * 1024;
/** A real line is under 1000 bytes (app_sms's buffer); far longer is garbage. */
const MAX_LINE = 64 * 1024;

/** Stored when the followed file vanished for good: the next file is read from 0. No file has inode 0. */
const GONE = 0;

const inodeOf = (file: string): number | undefined => {
  try {
    return statSync(file).ino;
  } catch {
    return undefined;
  }
};

/**
 * Follows the log: each complete line is handed to onEntries exactly once,
 * across restarts (the stored position is saved only after onEntries
 * returned; if it throws, the same lines come again) and across rotation.
 * Known limits: lines written to a rotated file that is not at `file.1`
 * (compressed at once, dateext) before we read them are lost, with a warning;
 * with copytruncate, lines written between logrotate's copy and truncate are
 * lost by logrotate itself; a line cut by a 0x00 low byte is seen only when
 * app_sms writes its next line.
 */
export class SmsLogFollower {
  private readonly file: string;
  private readonly store: FollowStore;
  private readonly onEntries: (entries: SmsLogEntry[]) => void;
  private readonly pollMs: number;
  private readonly log: { warn(o: object, m: string): void } | undefined;
  /** null = not loaded from the store yet. */
  private pos: FollowPosition | undefined | null = null;
  /** Inside an over-long line: drop bytes up to its '\n'. Memory only. */
  private skipping = false;
  private reading = false;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private scheduled = false;

  constructor(options: SmsLogFollowerOptions) {
    this.file = options.file;
    this.store = options.store;
    this.onEntries = options.onEntries;
    this.pollMs = options.pollMs ?? 2000;
    this.log = options.log;
  }

  /** Reads every complete new line; returns how many entries were delivered. */
  readNew(): number {
    if (this.reading) return 0; // onEntries called us back: the outer call carries on
    this.reading = true;
    try {
      if (this.pos === null) this.pos = this.store.load();
      const current = inodeOf(this.file);
      let count = 0;
      const pos = this.pos;
      if (pos !== undefined && pos.inode !== GONE && pos.inode !== current) {
        // Rotated (or removed): finish the old file first, it may hold lines we have not read.
        const rest = this.finishRotated(pos);
        // Not found: it is gone for good, so whatever file comes next is read from 0,
        // even if it reuses the old inode number (tmpfs and ext4 do reuse them).
        if (rest === undefined) this.moveTo({ inode: GONE, offset: 0 });
        else count += rest;
        if (current === undefined) return count; // not recreated yet: app_sms creates it on its next line
        this.moveTo({ inode: current, offset: 0 });
      }
      if (current === undefined) return count;
      return count + this.readFile(this.file, false);
    } finally {
      this.reading = false;
    }
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.safeRead(), this.pollMs);
    this.timer.unref();
    // Watch the directory, not the file: the file may not exist yet and is replaced on rotation.
    const base = path.basename(this.file);
    try {
      this.watcher = watch(path.dirname(this.file), (_event, name) => {
        if (name === null || name === base || name === `${base}.1`) this.schedule();
      });
      this.watcher.on('error', (err) => {
        this.log?.warn({ err, file: this.file }, 'watching the app_sms log directory failed; polling only');
        this.watcher?.close();
        this.watcher = undefined;
      });
      this.watcher.unref();
    } catch (err) {
      this.log?.warn({ err, file: this.file }, 'cannot watch the app_sms log directory; polling only');
    }
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Coalesces a burst of watch events into one read. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.timer) this.safeRead();
    });
  }

  private safeRead(): void {
    try {
      this.readNew();
    } catch (err) {
      this.log?.warn({ err, file: this.file }, 'reading the app_sms log failed; will retry');
    }
  }

  private moveTo(p: FollowPosition): void {
    this.skipping = false;
    this.store.save(p);
    this.pos = p;
  }

  /** logrotate leaves the old file beside the new one as `file.1`; undefined when it is not there. */
  private finishRotated(old: FollowPosition): number | undefined {
    const rotated = `${this.file}.1`;
    if (inodeOf(rotated) !== old.inode) {
      this.log?.warn({ file: this.file, inode: old.inode, offset: old.offset }, 'app_sms log was replaced and the old file is not at .1; lines written to it since the last read are lost');
      return undefined;
    }
    // app_sms opens the log by name for every line, so a renamed file never grows again:
    // a last line without '\n' is complete (cut by a 0x00 low byte) and is read as it is.
    return this.readFile(rotated, true);
  }

  /** Reads from this.pos in chunks; delivers and saves after each chunk with complete lines. */
  private readFile(file: string, final: boolean): number {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return 0; // gone between stat and open: the next call sees the new state
    }
    try {
      const st = fstatSync(fd);
      let pos = this.pos ?? undefined;
      if (pos === undefined || pos.inode === GONE) {
        // First run: the whole log (old lines match nothing pending, so this is harmless);
        // or the file after one that vanished: all of it is new.
        if (final) return 0;
        pos = { inode: st.ino, offset: 0 };
        this.moveTo(pos);
      } else if (pos.inode !== st.ino) {
        return 0; // replaced between stat and open: the next call finishes the old one first
      } else if (st.size < pos.offset) {
        this.log?.warn({ file, offset: pos.offset, size: st.size }, 'app_sms log is shorter than our position (copytruncate); reading it from the start');
        pos = { inode: st.ino, offset: 0 };
        this.moveTo(pos);
      }
      const buf = Buffer.allocUnsafe(CHUNK);
      let count = 0;
      let readAt = pos.offset; // next byte to read
      let consumed = pos.offset; // first byte not yet handed over (start of a partial line)
      let carry: Buffer[] = []; // the partial line, at most MAX_LINE bytes
      let carryLen = 0;
      // Committed to this.skipping only with the position: if onEntries throws, both stay as saved.
      let skipping = this.skipping;
      for (;;) {
        const n = readSync(fd, buf, 0, CHUNK, readAt);
        const chunk = buf.subarray(0, n);
        const lines: Buffer[] = [];
        let start = 0;
        for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
          if (skipping || carryLen + nl - start > MAX_LINE) {
            skipping = false;
            this.log?.warn({ file, endsAt: readAt + nl }, `skipped a line longer than ${MAX_LINE} bytes in the app_sms log`);
          } else {
            lines.push(carryLen ? Buffer.concat([...carry, chunk.subarray(start, nl)]) : chunk.subarray(start, nl));
          }
          carry = [];
          carryLen = 0;
          start = nl + 1;
          consumed = readAt + nl + 1;
        }
        const rest = chunk.subarray(start);
        if (n === 0 && final && !skipping && carryLen > 0) {
          lines.push(Buffer.concat(carry)); // see finishRotated
          consumed = readAt;
          carry = [];
          carryLen = 0;
        } else if (skipping) {
          consumed = readAt + n;
        } else if (rest.length > 0) {
          carry.push(Buffer.from(rest)); // copy: buf is reused for the next chunk
          carryLen += rest.length;
          if (carryLen > MAX_LINE) {
            // Drop it and remember (in memory) to drop the rest up to its '\n'.
            skipping = true;
            carry = [];
            carryLen = 0;
            consumed = readAt + n;
          }
        }
        readAt += n;
        const entries = this.parse(lines, file);
        if (consumed !== pos.offset) {
          if (entries.length > 0) this.onEntries(entries);
          pos = { inode: st.ino, offset: consumed };
          this.store.save(pos); // only now: a crash before this re-reads, never skips
          this.pos = pos;
          this.skipping = skipping;
          count += entries.length;
        }
        if (n === 0) return count;
      }
    } finally {
      closeSync(fd);
    }
  }

  private parse(lines: Buffer[], file: string): SmsLogEntry[] {
    const entries: SmsLogEntry[] = [];
    for (const line of lines) {
      for (const part of splitLogLine(line)) {
        const entry = parseSmsLogLine(part);
        if (entry) entries.push(entry);
        else if (part.length > 0) this.log?.warn({ file, line: part.toString('latin1').slice(0, 200) }, 'not an app_sms log line; ignored');
      }
    }
    return entries;
  }
}
