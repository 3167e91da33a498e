/**
 * A fake Asterisk that plays the PBX's part on a real spool tree, for tests
 * that run the daemon as a separate process and kill it (test/integration/
 * crash-points.test.ts). It outlives the daemon, as a PBX does.
 *
 * - pbx_spool: reads our call files in outgoing/ and places the call; the
 *   file stays there until the call is over, then gets `StartRetry:` and
 *   `Status: Completed` appended and is renamed into outgoing_done/.
 * - app_sms for S (`Application: SMS`, `Data: QUEUE,s`): reads and deletes
 *   every `sms/mttx/QUEUE.*` file, as app_sms does before sending, reading it
 *   as the real one does (test/fakes/app-sms.ts: `ud=` byte by byte), and
 *   appends a YOS line for each to its log ([sms] app_log), in app_sms's
 *   low-byte form of the text it really sent.
 * - the answered F/V call (`Application: AGI`, `Data: agi://…/fax/ID`): a
 *   FastAGI session to the daemon (test/fakes/agi-client.ts) that answers
 *   every command successfully: SendFAX of a TIFF that exists, FAXSTATUS
 *   SUCCESS with as many pages as the TIFF has; Playback of a WAV that
 *   exists, PLAYBACKSTATUS SUCCESS, no digit pressed. When the daemon is not
 *   listening, or dies during the session, the call still ends `Completed`
 *   (answered), as a real one would. A SendFAX or Playback the daemon asked
 *   for is done the moment the command arrives, whatever happens to the
 *   daemon afterwards: Asterisk finishes the application without us.
 * - the outcome keeper's hangup handler (docs/asterisk/outcome-keeper.conf):
 *   when the call file sets SMSR_CALL and pushes a hangup handler, and the
 *   fake was given an AstDB (`astdb`, the fake AMI's), the end of the call
 *   (before the archive, as with AST_OUTGOING_WAIT_COMPLETE) writes
 *   `sms-router/<SMSR_CALL>` = FAXSTATUS:FAXPAGES:PLAYBACKSTATUS:FAXERROR as
 *   the channel has them: SUCCESS with the TIFF's pages after a SendFAX that
 *   ran (also when the daemon died right after asking for it), FAILED after
 *   one that could not run, empty when none was asked for; the same for
 *   Playback.
 * - inbound SIP MESSAGEs: `sendSipMessage()` hands one to the daemon's
 *   `message` script, again and again until a session sets MSG_CHAN_OPT
 *   (a dialplan that retries while AGISTATUS is not SUCCESS), with the same
 *   uniqueid each time, so the journal's dedupe sees one message.
 *
 * Everything it did is recorded: every mttx file consumed, every SendFAX and
 * Playback executed (a delivery, from the recipient's side, whatever the
 * daemon learns of it).
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config.js';
import { parseCallFile } from '../../src/asterisk/call-file.js';
import { appSmsLogLine, phoneReceives } from './app-sms.js';
import { readTiffPages } from '../../src/render/tiff-tags.js';
import { connectFakeAgi, type AgiAnswer, type ReceivedCommand } from './agi-client.js';

export interface MttxDelivery {
  /** sms/mttx file name: QUEUE.ID-PART for ours. */
  name: string;
  queue: string;
  /** Journal id and part, parsed from the name (NaN when not ours). */
  id: number;
  part: number;
  oa: string;
  da: string;
  text: string;
  /** `run` when it was taken. */
  run: number;
}

export interface CallSessionRecord {
  letter: 'F' | 'V';
  id: number;
  callFile: string;
  /** The daemon ran SendFAX / Playback: the recipient got the fax / heard the message. */
  executed: boolean;
  /** The daemon asked for SendFAX / Playback (it ran only if `executed`). */
  asked: boolean;
  /** The daemon read FAXSTATUS / PLAYBACKSTATUS. */
  outcomeRead: boolean;
  /** What the outcome keeper's hangup handler wrote into AstDB, if the call file pushed it. */
  kept?: string;
  /** false: the daemon was not listening. */
  connected: boolean;
  /** The session (or the attempt to connect) is over. */
  done: boolean;
  /** `run` when the call was taken. */
  run: number;
}

export interface SipInbound {
  from: string;
  to: string;
  body: string;
  uniqueid: string;
}

export interface FakeAsteriskOptions {
  config: Config;
  /** Where the daemon's FastAGI service listens (fixed across restarts). */
  agiPort: number;
  pollMs?: number;
  /** Asterisk's database (the fake AMI's `astdb`): where the outcome keeper's hangup handler writes. */
  astdb?: Map<string, string>;
}

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FakeAsterisk {
  readonly mttx: MttxDelivery[] = [];
  readonly sessions: CallSessionRecord[] = [];
  readonly archived: string[] = [];
  /** Inbound messages whose session set MSG_CHAN_OPT, and how many sessions each took. */
  readonly sipAccepted = new Map<string, number>();
  private readonly inbound: SipInbound[] = [];
  private readonly running = new Set<Promise<void>>();
  /** Call files whose call is going on. */
  private readonly taken = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private busy = false;
  private logSeq = 0;
  /** A label the test sets (e.g. which daemon process runs), copied into every record. */
  run = 0;

  constructor(private readonly options: FakeAsteriskOptions) {
    mkdirSync(options.config.spool.outgoingDone, { recursive: true });
    mkdirSync(path.dirname(options.config.sms.appLog), { recursive: true });
  }

  start(): void {
    this.timer = setInterval(() => this.poll(), this.options.pollMs ?? 20);
  }

  /** Stops taking calls; resolves when every call and inbound session in hand has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Nothing in hand: no call file waiting in outgoing/, no call or inbound session running. */
  get idle(): boolean {
    return this.running.size === 0 && this.inbound.length === 0 && ourCalls(this.options.config.spool.outgoing).length === 0;
  }

  /** A softphone sends a SIP MESSAGE: handed to the daemon until it takes it. */
  sendSipMessage(message: SipInbound): void {
    this.inbound.push(message);
  }

  private poll(): void {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      for (const name of ourCalls(this.options.config.spool.outgoing)) this.take(name);
      while (this.inbound.length > 0) this.track(this.deliverInbound(this.inbound.shift()!));
    } finally {
      this.busy = false;
    }
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private take(name: string): void {
    if (this.taken.has(name)) return; // its call is still going on
    let text: string;
    try {
      text = readFileSync(path.join(this.options.config.spool.outgoing, name), 'utf8');
    } catch {
      return; // gone meanwhile
    }
    this.taken.add(name);
    const call = parseCallFile(text);
    const app = call.get('Application');
    const data = call.get('Data') ?? '';
    if (app === 'SMS') {
      this.runSms(data.split(',')[0]!);
      this.archive(name);
    } else if (app === 'AGI') {
      const url = new URL(data);
      const m = /^\/(fax|voice)\/(\d+)$/.exec(url.pathname);
      if (!m) throw new Error(`fake Asterisk: unexpected AGI call ${data}`);
      this.track(this.runCallSession(m[1] === 'fax' ? 'F' : 'V', Number(m[2]), name, url.pathname.slice(1), keeperKeyOf(call)).finally(() => this.archive(name)));
    } else {
      throw new Error(`fake Asterisk: unexpected call file ${name}: Application ${app}`);
    }
  }

  /** app_sms SMS(QUEUE,s): every queued file is read (deleted first), sent, and logged YOS. */
  private runSms(queue: string): void {
    const { mttx } = this.options.config.spool;
    const names = readdirSync(mttx).filter((n) => !n.startsWith('.') && n.startsWith(`${queue}.`)).sort();
    for (const name of names) {
      const file = path.join(mttx, name);
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
        rmSync(file);
      } catch {
        continue;
      }
      const decoded = phoneReceives(bytes);
      if (!decoded.ok) throw new Error(`fake Asterisk: unreadable mttx file ${name}: ${decoded.error.message}`);
      const m = /^[^.]+\.(\d+)-(\d+)$/.exec(name);
      const { oa = '', da = '', text } = decoded.message;
      this.mttx.push({ name, queue, id: m ? Number(m[1]) : NaN, part: m ? Number(m[2]) : NaN, oa, da, text, run: this.run });
      const time = new Date(Date.UTC(2026, 10, 22, 4, 0, 0) + ++this.logSeq * 1000).toISOString().slice(0, 19);
      appendFileSync(this.options.config.sms.appLog, appSmsLogLine(time, 'Y', queue, oa, da, text));
    }
  }

  private async runCallSession(letter: 'F' | 'V', id: number, callFile: string, script: string, keeperKey: string | undefined): Promise<void> {
    const record: CallSessionRecord = { letter, id, callFile, executed: false, asked: false, outcomeRead: false, connected: false, done: false, run: this.run };
    this.sessions.push(record);
    const channel = { executed: false, dead: false };
    const world = { exists: existsSync, faxPages: () => this.faxPages(id) };
    const answers = (cmd: ReceivedCommand): AgiAnswer => {
      const [verb, second] = cmd.argv;
      if (verb === 'EXEC' && (second === 'SendFAX' || second === 'Playback')) record.asked = true;
      const answer = answerCallCommand(cmd.argv, channel, world);
      record.executed = channel.executed;
      if (cmd.argv[0] === 'GET' && (cmd.argv[2] === 'FAXSTATUS' || cmd.argv[2] === 'PLAYBACKSTATUS')) record.outcomeRead = true;
      return answer;
    };
    try {
      const client = await connectFakeAgi({ port: this.options.agiPort, script, answers, env: { agi_channel: `PJSIP/fake-${id}`, agi_uniqueid: `${callFile}` } });
      record.connected = true;
      await client.closed;
    } catch {
      /* not listening: AGI() fails, the answered call ends */
    } finally {
      // The channel hangs up: its hangup handler runs before pbx_spool archives the call file.
      if (keeperKey !== undefined && this.options.astdb) {
        const status = record.executed ? 'SUCCESS' : record.asked ? 'FAILED' : '';
        record.kept =
          letter === 'F' ? `${status}:${record.asked ? (record.executed ? this.faxPages(id) : 0) : ''}::${record.asked ? 'HANGUP' : ''}` : `::${status}:`;
        this.options.astdb.set(`sms-router/${keeperKey}`, record.kept);
      }
      record.done = true;
    }
  }

  private faxPages(id: number): number {
    try {
      return readTiffPages(readFileSync(path.join(this.options.config.fax.dir, `${id}.tif`))).length;
    } catch {
      return 0;
    }
  }

  /** One inbound MESSAGE, retried (same uniqueid) until a session tells the dialplan MSG_CHAN_OPT. */
  private async deliverInbound(message: SipInbound): Promise<void> {
    const answers = inboundMessageAnswers(message);
    for (let attempt = 1; ; attempt++) {
      try {
        const client = await connectFakeAgi({
          port: this.options.agiPort,
          script: 'message',
          env: {
            agi_channel: 'Message/ast_msg_queue',
            agi_type: 'Message',
            agi_uniqueid: message.uniqueid,
            agi_callerid: 'unknown',
            agi_calleridname: 'unknown',
            agi_context: 'sip-messages',
            agi_extension: message.to,
          },
          answers,
        });
        await client.closed;
        if (client.commands.some((c) => c.line.startsWith('SET VARIABLE MSG_CHAN_OPT'))) {
          this.sipAccepted.set(message.uniqueid, attempt);
          return;
        }
      } catch {
        /* not listening */
      }
      if (this.stopped) return;
      await tick(50);
    }
  }

  /**
   * pbx_spool with Archive: yes. The call file stays in outgoing/ for the whole call (what the
   * daemon relies on to know a call is still going on); at the end pbx_spool appends its retry and
   * Status lines to it and renames it into outgoing_done.
   */
  private archive(name: string): void {
    const { outgoing, outgoingDone } = this.options.config.spool;
    appendFileSync(path.join(outgoing, name), `StartRetry: 4242 1 (${Math.floor(Date.now() / 1000)})\nStatus: Completed\n`);
    renameSync(path.join(outgoing, name), path.join(outgoingDone, name));
    this.taken.delete(name);
    this.archived.push(name);
  }
}

/** What the channel of an answered F/V call has been through, as far as its FastAGI session goes. */
export interface CallChannelState {
  /** SendFAX of a TIFF that exists, or Playback of a WAV that exists, ran: the recipient got it. */
  executed: boolean;
  /** The far end hung up: the session is dead AGI from here. */
  dead: boolean;
}

/**
 * How Asterisk 20 answers the daemon's commands on an answered F/V call whose
 * far end takes the fax or hears the message, as recorded on the lab
 * (spool-fixtures/lab/run/fastagi_sendfax.txt, fastagi_playback.txt; checked
 * by test/unit/lab-recordings.test.ts):
 *  - SendFAX: `200 result=-1` and an unsolicited `HANGUP` (the receiver hangs
 *    up at the end of a good fax); FAXSTATUS SUCCESS, FAXERROR HANGUP,
 *    FAXPAGES the TIFF's pages, FAXBITRATE 14400, still readable when dead;
 *  - Playback: `200 result=0`, PLAYBACKSTATUS SUCCESS;
 *  - HANGUP: `200 result=1` on a live channel, `511 Command Not Permitted on
 *    a dead channel or intercept routine` on a dead one;
 *  - SET VARIABLE and the rest: `200 result=1`; an unset variable `200 result=0`.
 */
export function answerCallCommand(argv: readonly string[], channel: CallChannelState, world: { exists(file: string): boolean; faxPages(): number }): AgiAnswer {
  const [verb, second, arg] = argv;
  if (verb === 'EXEC' && second === 'SendFAX') {
    if (!world.exists(arg!)) return ['200 result=-1'];
    channel.executed = true;
    channel.dead = true;
    return ['200 result=-1', 'HANGUP'];
  }
  if (verb === 'EXEC' && second === 'Playback') {
    if (!world.exists(`${arg!}.wav`)) return ['200 result=-1'];
    channel.executed = true;
    return ['200 result=0'];
  }
  if (verb === 'GET' && second === 'VARIABLE') {
    switch (arg) {
      case 'FAXSTATUS':
      case 'PLAYBACKSTATUS':
        return [channel.executed ? '200 result=1 (SUCCESS)' : '200 result=1 (FAILED)'];
      case 'FAXPAGES':
        return [`200 result=1 (${world.faxPages()})`];
      case 'FAXERROR':
        return ['200 result=1 (HANGUP)'];
      case 'FAXBITRATE':
        return ['200 result=1 (14400)'];
    }
    return ['200 result=0'];
  }
  if (verb === 'STREAM') return ['200 result=0 endpos=8000'];
  if (verb === 'HANGUP') {
    if (channel.dead) return ['511 Command Not Permitted on a dead channel or intercept routine'];
    channel.dead = true;
    return ['200 result=1'];
  }
  return ['200 result=1'];
}

/**
 * How Asterisk 20 answers the daemon's reads of an inbound SIP MESSAGE in the
 * message context (chan_sip, recorded on the lab: spool-fixtures/lab/run/
 * fastagi_message.txt): MESSAGE(from) with the display name chan_sip puts
 * there, MESSAGE(to) with Asterisk's own address, the body base64-encoded.
 */
export function inboundMessageAnswers(message: { from: string; to: string; body: string }): Record<string, AgiAnswer> {
  return {
    'GET FULL VARIABLE ${MESSAGE(from)}': [`200 result=1 ("${message.from}" <sip:${message.from}@127.0.0.1>)`],
    'GET FULL VARIABLE ${MESSAGE(to)}': [`200 result=1 (sip:${message.to}@127.0.0.1:5060)`],
    'GET FULL VARIABLE ${BASE64_ENCODE(${MESSAGE(body)})}': [`200 result=1 (${Buffer.from(message.body, 'utf8').toString('base64')})`],
  };
}

/** SMSR_CALL, when the call file also pushes a hangup handler (the outcome keeper's lines). */
function keeperKeyOf(call: ReturnType<typeof parseCallFile>): string | undefined {
  const sets = call.fields.filter(([k]) => k.toLowerCase() === 'set').map(([, v]) => v);
  const key = sets.find((v) => v.startsWith('SMSR_CALL='))?.slice('SMSR_CALL='.length);
  return key !== undefined && sets.some((v) => /^CHANNEL\(hangup_handler_push\)=[A-Za-z0-9_-]+,s,1$/.test(v)) ? key : undefined;
}

function ourCalls(outgoing: string): string[] {
  try {
    return readdirSync(outgoing).filter((n) => n.startsWith('smsr-') && n.endsWith('.call')).sort();
  } catch {
    return [];
  }
}
