/**
 * The real-Asterisk lab (../shared/asterisk-lab, built into SMSR_ASTERISK_LAB)
 * as seen by `npm run test:asterisk`: its spool and logs, its phones (smsq),
 * its softphones (the lab's SIP tools), its CLI. Only files and programs of
 * the lab are used; every program runs with an argument array, no shell.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A file the lab's dialplan wrote a result line into (results.log: RECEIVEFAX, RECORD, HANGUPHANDLER). */
export interface ResultLine {
  kind: string;
  fields: Record<string, string>;
  raw: string;
}

export class Lab {
  readonly spool: string;
  readonly logDir: string;
  readonly smsq: string;
  private readonly locks = new Map<string, Promise<void>>();

  constructor(readonly dir: string) {
    this.spool = path.join(dir, 'inst', 'spool');
    this.logDir = path.join(dir, 'inst', 'log');
    this.smsq = path.join(dir, 'ast', 'sbin', 'smsq');
    for (const f of ['start.sh', 'rx.sh', 'tools/sip_send.py', 'tools/sip_listener.py', 'ast/sbin/smsq']) {
      if (!existsSync(path.join(dir, f))) throw new Error(`${dir} is not a built lab (no ${f}): see ../shared/asterisk-lab/README.md`);
    }
  }

  path(...parts: string[]): string {
    return path.join(this.spool, ...parts);
  }

  /** Starts Asterisk (a no-op when it runs) and returns its version line. */
  async start(): Promise<string> {
    await run(path.join(this.dir, 'start.sh'), [], { timeout: 120_000 });
    return (await this.rx('core show version')).trim();
  }

  async rx(command: string): Promise<string> {
    const { stdout } = await run(path.join(this.dir, 'rx.sh'), [command], { timeout: 30_000 });
    return stdout;
  }

  /**
   * Adds a dialplan file of ours (docs/asterisk/…) to the lab as an operator
   * would: copied beside extensions.conf, `#include`d once, `dialplan reload`.
   * lay.sh lays extensions.conf anew from the recipe; this adds it back.
   */
  async includeDialplan(file: string): Promise<void> {
    const etc = path.join(this.dir, 'inst', 'etc');
    const name = path.basename(file);
    copyFileSync(file, path.join(etc, name));
    const extensions = path.join(etc, 'extensions.conf');
    const line = `#include "${name}"`;
    if (!readFileSync(extensions, 'utf8').split('\n').includes(line)) appendFileSync(extensions, `\n; added by sms-router's test:asterisk\n${line}\n`);
    await this.rx('dialplan reload');
  }

  /**
   * Empties what a run reads (messages, calls, faxes, recordings), so that every
   * file found afterwards was made by this run. The logs are appended to, never
   * truncated: readers start at their size now (offset()).
   */
  clean(): void {
    for (const d of ['sms/morx', 'sms/mttx', 'sms/mtrx', 'sms/motx', 'outgoing', 'outgoing_done', 'tmp', 'fax-in', 'rec', 'fax', 'voice', 'sms-router-calls']) {
      const dir = this.path(d);
      mkdirSync(dir, { recursive: true });
      for (const name of readdirSync(dir)) rmSync(path.join(dir, name), { recursive: true, force: true });
    }
  }

  /** Bytes in a log file now (app_sms's `sms`, `results.log`, `full`). */
  offset(name: string): number {
    try {
      return statSync(path.join(this.logDir, name)).size;
    } catch {
      return 0;
    }
  }

  /** A log file from `from` on, as bytes (app_sms's log is not UTF-8). */
  logSince(name: string, from: number): Buffer {
    try {
      return readFileSync(path.join(this.logDir, name)).subarray(from);
    } catch {
      return Buffer.alloc(0);
    }
  }

  /** results.log lines since `from`: `TIME KIND key=value ...` (FAXERROR's value may hold spaces). */
  results(from: number): ResultLine[] {
    return this.logSince('results.log', from)
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((raw) => {
        const [, kind = '', rest = ''] = /^\S+ (\S+) (.*)$/.exec(raw) ?? [];
        const fields: Record<string, string> = {};
        const re = /(\w+)=(.*?)(?= \w+=|$)/g;
        for (let m = re.exec(rest); m; m = re.exec(rest)) fields[m[1]!] = m[2]!;
        return { kind, fields, raw };
      });
  }

  /** Files the lab's phone received (sms/mtrx/phone.*), oldest first. */
  received(): string[] {
    const dir = this.path('sms', 'mtrx');
    return readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .map((n) => ({ n, t: statSync(path.join(dir, n)).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.n.localeCompare(b.n))
      .map(({ n }) => n);
  }

  /**
   * A phone sends an SMS into the centre, as the README shows: smsq writes the
   * motx file (`-x`: no call yet), then places the phone's call. One call per
   * queue at a time (smsq links the same call-file name every time): sends
   * from one queue wait for each other.
   */
  async phoneSends(queue: string, da: string, text: string, options: { udh?: string; callerId?: string } = {}): Promise<void> {
    const before = this.locks.get(queue) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.locks.set(queue, before.then(() => mine));
    await before;
    try {
      const base = ['--spool-dir', this.spool, '--mo', '--tx'];
      const write = [...base, '-x', '--queue', queue, '--da', da, '--ud', text];
      if (options.udh) write.push('--udh', options.udh);
      await run(this.smsq, write, { timeout: 30_000 });
      const call = [...base, '--queue', queue, '--motx-channel', 'Local/smsc-mo@sms-smsc', '--motx-retries', '0', '--motx-wait', '20'];
      if (options.callerId) call.push('--motx-callerid', options.callerId);
      await run(this.smsq, call, { timeout: 30_000 });
      await this.waitForSmsqCall(`smsq.motx.${queue}.1`);
    } finally {
      release();
    }
  }

  /**
   * Waits until pbx_spool has taken and finished smsq's call. The file is only
   * stat()ed: pbx_spool takes a created-but-never-opened file for a hard link
   * and, if anything opens it within 2 s, waits forever for a close (lab
   * README); it can also miss one, so after 5 s it is nudged with an
   * open-for-append and close, which releases it.
   */
  private async waitForSmsqCall(name: string): Promise<void> {
    const file = this.path('outgoing', name);
    const start = Date.now();
    let nudged = false;
    while (existsSync(file)) {
      if (!nudged && Date.now() - start > 5_000) {
        nudged = true;
        try {
          closeSync(openSync(file, 'a'));
        } catch {
          /* taken meanwhile */
        }
      }
      if (Date.now() - start > 90_000) throw new Error(`smsq's call ${name} did not finish in 90 s`);
      await tick(200);
    }
  }

  /** A softphone sends an out-of-call SIP MESSAGE into Asterisk (tools/sip_send.py). */
  async softphoneSends(from: string, to: string, text: string, localPort: number): Promise<string> {
    const { stdout } = await run('python3', [path.join(this.dir, 'tools', 'sip_send.py'), from, to, text, '--local-port', String(localPort)], {
      timeout: 30_000,
    });
    return stdout.trim();
  }

  /** A SIP user agent on 127.0.0.1:port that answers MESSAGE 200 and logs each (tools/sip_listener.py). */
  sipListener(port: number, logFile: string, seconds: number): ChildProcess {
    return spawn('python3', [path.join(this.dir, 'tools', 'sip_listener.py'), '--port', String(port), '--seconds', String(seconds), '--log', logFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }
}

/** One MESSAGE the listener logged: its JSON line. */
export interface SipReceived {
  time: string;
  ruri: string;
  from: string;
  to: string;
  content_type: string;
  bytes: number;
  body: string;
}

export function sipReceived(logFile: string): SipReceived[] {
  try {
    return readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('JSON '))
      .map((l) => JSON.parse(l.slice(5)) as SipReceived);
  } catch {
    return [];
  }
}

/** `sox FILE -n stat`: length in seconds, RMS and maximum amplitude (0..1). */
export async function soundStats(file: string): Promise<{ seconds: number; rms: number; max: number }> {
  const { stderr } = await run('sox', [file, '-n', 'stat'], { timeout: 30_000 });
  const value = (label: string) => Number(new RegExp(`^${label}:\\s+(\\S+)`, 'm').exec(stderr)?.[1] ?? NaN);
  return { seconds: value('Length \\(seconds\\)'), rms: value('RMS\\s+amplitude'), max: value('Maximum amplitude') };
}

/** Pages of a TIFF, by tiffinfo (libtiff-tools), as a fax machine would count them. */
export async function tiffPages(file: string): Promise<number> {
  const { stdout } = await run('tiffinfo', [file], { timeout: 30_000 });
  return (stdout.match(/^TIFF Directory at offset/gm) ?? []).length;
}

/**
 * A TCP relay that records both directions of every connection byte for byte,
 * between Asterisk and the daemon (FastAGI: Asterisk -> relay -> daemon; AMI:
 * daemon -> relay -> Asterisk). What it writes is what the fakes are checked
 * against: `<name>-<n>.jsonl` (one chunk a line: time, direction, base64) and
 * `<name>-<n>.txt` (readable: `<` from Asterisk, `>` to Asterisk).
 */
export class TranscriptRelay {
  private server: import('node:net').Server | undefined;
  private count = 0;

  constructor(
    private readonly options: { name: string; listen: number; target: number; dir: string; asteriskConnects: boolean },
  ) {}

  async start(): Promise<void> {
    const net = await import('node:net');
    const fs = await import('node:fs');
    mkdirSync(this.options.dir, { recursive: true });
    this.server = net.createServer((inbound) => {
      const n = ++this.count;
      const base = path.join(this.options.dir, `${this.options.name}-${n}`);
      const jsonl = fs.createWriteStream(`${base}.jsonl`);
      const text = fs.createWriteStream(`${base}.txt`);
      const outbound = net.connect(this.options.target, '127.0.0.1');
      // Asterisk is the one who connects for FastAGI, the daemon for AMI.
      const [fromAsterisk, toAsterisk] = this.options.asteriskConnects ? [inbound, outbound] : [outbound, inbound];
      const record = (direction: '<' | '>', chunk: Buffer) => {
        jsonl.write(`${JSON.stringify({ t: new Date().toISOString(), dir: direction === '<' ? 'from-asterisk' : 'to-asterisk', b64: chunk.toString('base64') })}\n`);
        for (const line of chunk.toString('latin1').split('\n').slice(0, chunk.at(-1) === 0x0a ? -1 : undefined)) {
          text.write(`${direction} ${JSON.stringify(line).slice(1, -1)}\n`);
        }
      };
      fromAsterisk.on('data', (c: Buffer) => record('<', c));
      toAsterisk.on('data', (c: Buffer) => record('>', c));
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      const end = () => {
        inbound.destroy();
        outbound.destroy();
        jsonl.end();
        text.end();
      };
      inbound.on('close', end).on('error', end);
      outbound.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.options.listen, '127.0.0.1', () => resolve()));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
