/**
 * `npm run test:asterisk`: sms-router end to end against a real Asterisk 20
 * (the lab of ../shared/asterisk-lab, built into SMSR_ASTERISK_LAB). Not in
 * CI, which cannot have Asterisk; the fakes in test/fakes are recorded from
 * this lab and CI tests against them.
 *
 * It starts the lab, empties its spool, runs the built daemon against the
 * lab's spool, AMI and FastAGI, drives phones with smsq and softphones with
 * the lab's SIP tools, and prints one PASS/FAIL line per scenario saying what
 * the journal recorded and what the far side received. Exit 0 only when
 * every scenario passed.
 *
 *   SMSR_ASTERISK_LAB=/path/to/lab npm run test:asterisk [-- --only WORD,WORD] [-- --record DIR]
 *
 * --only runs the scenarios whose names contain one of the words. --record
 * DIR puts relays between Asterisk and the daemon (FastAGI on 4573, AMI) and
 * writes every session byte for byte into DIR, with the daemon's mttx files
 * as app_sms read them and app_sms's log of the run: what spool-fixtures/
 * and the fakes in test/fakes are checked against.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { freePort } from '../helpers/ports.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Lab, TranscriptRelay, sipReceived, soundStats, tiffPages } from './lab.js';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { decodeSmsFile, appLogText } from '../../src/spool/sms-file.js';
import type { SmsLogEntry } from '../../src/asterisk/sms-log.js';
import { readSmsLog } from '../fakes/app-sms.js';
import { splitMessage } from '../../src/spool/encoding.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const KEEPER_DIALPLAN = fileURLToPath(new URL('../../../docs/asterisk/outcome-keeper.conf', import.meta.url));
const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ the numbers of the lab

const CENTRE = '1000';
const SENDERS = ['48600111222', '48600111333', '48600111444'];
const PHONE = '447700900123';
const BUSY = '2100';
const NO_ANSWER = '2200';
const FAX = '3001';
const NO_FAX = '3002';
const VOICE = '4001';
const SOFTPHONE = '1001';
const MSGPEER = '1002';
const COMMAND = '5000';
const DISABLED = '6001';
const UNKNOWN = '9999';
const LAB_PHONE = 'Local/phone-mt@sms-phone';

// ------------------------------------------------------------------ what the far side and the journal say

interface JournalRow {
  id: number;
  kind: string;
  source: string;
  oa: string;
  da: string;
  text: string;
  state: string;
  route: string | null;
  attempts: number;
  dcs: number | null;
  udh: string | null;
  last_error: string | null;
  detail: string | null;
}

interface PhoneFile {
  name: string;
  oa?: string;
  text: string;
  dcs?: number;
  udh?: string;
}

class Observer {
  private db: Database.Database | undefined;
  constructor(
    private readonly lab: Lab,
    private readonly dbPath: string,
    private readonly smsLogFrom: number,
  ) {}

  private open(): Database.Database {
    this.db ??= new Database(this.dbPath, { readonly: true, fileMustExist: true });
    return this.db;
  }

  rows(where: string, ...args: unknown[]): JournalRow[] {
    return this.open()
      .prepare(`SELECT id, kind, source, oa, da, text, state, route, attempts, dcs, udh, last_error, detail FROM messages WHERE ${where} ORDER BY id`)
      .all(...args) as JournalRow[];
  }

  /** The routed row of a message (a long message's joined row, not its parts). */
  message(text: string): JournalRow | undefined {
    return this.rows(`text = ? AND kind = 'message' AND (route IS NULL OR route <> 'concat')`, text).pop();
  }

  notices(to: string, contains: string): JournalRow[] {
    return this.rows(`kind = 'notice' AND da = ? AND instr(text, ?) > 0`, to, contains);
  }

  calls(messageId: number): { file_name: string; state: string; status: string | null }[] {
    return this.open().prepare(`SELECT file_name, state, status FROM calls WHERE message_id = ? ORDER BY id`).all(messageId) as never;
  }

  /** Every file the lab's phone received, decoded (app_sms writes mtrx as proper UTF-8). */
  phone(): PhoneFile[] {
    return this.lab.received().flatMap((name) => {
      const r = decodeSmsFile(readFileSync(this.lab.path('sms', 'mtrx', name)), { requireDa: false });
      return r.ok ? [{ name, oa: r.message.oa, text: r.message.text, dcs: r.message.dcs, udh: r.message.udh }] : [];
    });
  }

  /** app_sms log entries of this run (the centre's O+S lines: what the phone acknowledged). */
  smsLog(): SmsLogEntry[] {
    return readSmsLog(this.lab.logSince('sms', this.smsLogFrom));
  }

  /** The YOS/NOS lines app_sms logged for this text sent to `queue`. */
  logged(queue: string, text: string): SmsLogEntry[] {
    const want = appLogText(text);
    return this.smsLog().filter((e) => e.role === 'S' && e.direction === 'O' && e.queue === queue && e.text.equals(want));
  }

  close(): void {
    this.db?.close();
  }
}

// ------------------------------------------------------------------ scenarios

interface Outcome {
  pass: boolean;
  journal: string;
  far: string;
}

interface Scenario {
  name: string;
  /** Longest it may take on a loaded 2-core machine. */
  seconds: number;
  /** Runs after the others, on its own: it kills the daemon. */
  alone?: boolean;
  run(ctx: Context): Promise<Outcome>;
}

interface Context {
  lab: Lab;
  obs: Observer;
  work: string;
  sipLog: string;
  resultsFrom: number;
  sender(): string;
  daemon: DaemonProcess;
  /** Polls `probe` until it returns a value, or gives up at the scenario's deadline. */
  until<T>(probe: () => T | undefined | Promise<T | undefined>): Promise<T | undefined>;
}

const q = (s: string | undefined) => JSON.stringify(s ?? null);
const shortRow = (r: JournalRow) =>
  `#${r.id} ${r.state} route=${r.route ?? '-'} attempts=${r.attempts}${r.dcs !== null ? ` dcs=${r.dcs}` : ''}${r.last_error ? ` error=${q(r.last_error)}` : ''}`;
const final = (r: JournalRow | undefined) => (r && ['delivered', 'failed', 'bounced'].includes(r.state) ? r : undefined);
/** Failed for good: `bounced` once the sender's notice is queued. */
const failedForGood = (r: JournalRow | undefined) => r?.state === 'failed' || r?.state === 'bounced';
/** T is done when AMI answered MessageSend: Asterisk keeps no record past that, so the row stays `spooled` with the answer. */
const handedToSip = (r: JournalRow | undefined) => (r?.state === 'spooled' && r.detail?.includes('"ami":"Success"') ? r : final(r));

/** The next sender phone sends `text` to `to`; resolves with the message's row once `settled` says so. */
async function phoneSendsAndSettles(ctx: Context, to: string, text: string, settled = final): Promise<{ from: string; row: JournalRow | undefined }> {
  const from = ctx.sender();
  await ctx.lab.phoneSends(from, to, text);
  return { from, row: await ctx.until(() => settled(ctx.obs.message(text))) };
}

/** The notice "Cannot deliver SMS to `to`." delivered to `from`, and the files the sender's phone got with its text. */
async function noticeReached(ctx: Context, from: string, to: string): Promise<{ sent: JournalRow | undefined; got: PhoneFile[] }> {
  const sent = await ctx.until(() => ctx.obs.notices(from, `Cannot deliver SMS to ${to}.`).find((n) => n.state === 'delivered'));
  return { sent, got: ctx.obs.phone().filter((f) => f.text === sent?.text) };
}

/** A phone sends `text` to an S phone: delivered once, the phone gets it exactly, app_sms logged YOS for it. */
function smsScenario(name: string, text: string, expectDcs: number | null): Scenario {
  return {
    name,
    seconds: 90,
    async run(ctx) {
      const { from, row } = await phoneSendsAndSettles(ctx, PHONE, text);
      const got = ctx.obs.phone().filter((f) => f.text === text);
      const yos = ctx.obs.logged(PHONE, text);
      const morxDcs = row?.dcs ?? null;
      const pass = row?.state === 'delivered' && row.attempts === 1 && got.length === 1 && got[0]!.oa === from && yos.length === 1 && yos[0]!.status === 'Y' && morxDcs === expectDcs;
      return {
        pass,
        journal: row ? `${shortRow(row)} (from the phone: dcs=${morxDcs ?? 'default'}, want ${expectDcs ?? 'default'})` : 'no final row',
        far: `phone got ${got.length} file(s) with the exact text${got[0] ? ` (${got[0].name}, oa=${got[0].oa}, dcs=${got[0].dcs ?? 'default'})` : ''}; app_sms logged ${yos.map((e) => `${e.status}OS`).join(',') || 'nothing'} for it`,
      };
    },
  };
}

/** A long text sent as concatenated parts: joined once in the journal, re-split to the phone, every part acknowledged. */
function longScenario(name: string, text: string, reference: number): Scenario {
  return {
    name,
    seconds: 150,
    async run(ctx) {
      const from = ctx.sender();
      const parts = splitMessage(text, { reference });
      for (const part of parts) await ctx.lab.phoneSends(from, PHONE, part.text, { udh: part.udh });
      const row = await ctx.until(() => final(ctx.obs.message(text)));
      const partRows = ctx.obs.rows(`route = 'concat' AND oa = ?`, from).filter((r) => parts.some((p) => p.text === r.text));
      const got = ctx.obs.phone().filter((f) => f.udh !== undefined && text.includes(f.text) && f.oa === from);
      const bySequence = new Map(got.map((f) => [Number.parseInt(f.udh!.slice(-2), 16), f.text]));
      const joined = [...bySequence.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t).join('');
      const pass = row?.state === 'delivered' && row.attempts === 1 && partRows.length === parts.length && got.length === bySequence.size && joined === text;
      return {
        pass,
        journal: row ? `${parts.length} parts in (${partRows.length} part rows, route concat), joined as ${shortRow(row)}, ${text.length} characters` : `no final joined row (${partRows.length} part rows)`,
        far: `phone got ${got.length} part(s) (udh ${got.map((f) => f.udh).join(', ')}); joined they are ${joined === text ? 'the exact text' : `NOT the text: ${q(joined)}`}`,
      };
    },
  };
}

/** A message the centre cannot deliver: the sender's phone gets the notice. */
function noticeScenario(name: string, to: string, text: string): Scenario {
  return {
    name,
    seconds: 90,
    async run(ctx) {
      const { from, row } = await phoneSendsAndSettles(ctx, to, text);
      const { sent, got } = await noticeReached(ctx, from, to);
      return {
        pass: failedForGood(row) && sent !== undefined && got.length === 1 && got[0]!.oa === CENTRE,
        journal: `${row ? shortRow(row) : 'no final row'}; notice ${sent ? `${shortRow(sent)} ${q(sent.text)}` : 'not delivered'}`,
        far: `sender's phone got ${got.length} notice file(s)${got[0] ? ` from ${got[0].oa}: ${q(got[0].text)}` : ''}`,
      };
    },
  };
}

const SCENARIOS: Scenario[] = [
  smsScenario('S GSM-7', 'l01 Hello from a real FSK phone: @£$¥ èéùìò ÄÖÑÜ§ ΔΦΓΛΩ!', null),
  smsScenario('S GSM-7 extension table', 'l02 ^{}[]~|\\ and €5 go as escapes', null),
  smsScenario('S 8-bit', 'l03 8-bit: Ça coûte 5¤ «naïve» ±½', 245),
  smsScenario('S UCS-2 Polish', 'l04 Real FSK loop zażółć gęślą jaźń €', 8),
  smsScenario('S UCS-2 Cyrillic', 'l05 Привет, мир! Съешь же ещё', 8),
  longScenario('S long GSM-7 (2 parts, joined and re-split)', `l06 ${'A long GSM-7 message from the phone, split by the phone in two parts. '.repeat(4)}end`, 0x61),
  longScenario('S long UCS-2 (2 parts, joined and re-split)', `l07 ${'Zażółć gęślą jaźń, długa wiadomość. '.repeat(3)}koniec`, 0x62),
  noticeScenario('N (disabled) notice', DISABLED, 'l08 to a number that disabled messaging'),
  noticeScenario('unknown number notice', UNKNOWN, 'l09 to a number nobody has'),
  {
    name: 'C command reply',
    seconds: 90,
    async run(ctx) {
      const { from, row } = await phoneSendsAndSettles(ctx, COMMAND, 'PING l10 from the lab');
      const reply = await ctx.until(() => ctx.obs.rows(`da = ? AND instr(text, 'PONG') > 0 AND instr(text, 'l10') > 0 AND state = 'delivered'`, from).pop());
      const got = ctx.obs.phone().filter((f) => f.text === reply?.text);
      return {
        pass: row?.state === 'delivered' && reply !== undefined && got.length === 1,
        journal: `${row ? shortRow(row) : 'no final row'}; reply ${reply ? `${shortRow(reply)} ${q(reply.text)}` : 'not delivered'}`,
        far: `sender's phone got ${got.length} reply file(s)${got[0] ? ` from ${got[0].oa}: ${q(got[0].text)}` : ''}`,
      };
    },
  },
  {
    name: 'F fax received (FAXSTATUS=SUCCESS, page count)',
    seconds: 240,
    async run(ctx) {
      const text = 'l11 A fax from the lab: one SMS (smsq sends at most 160 characters) becomes one page, with its header line.';
      const { row } = await phoneSendsAndSettles(ctx, FAX, text);
      const detail = row?.detail ? (JSON.parse(row.detail) as { faxStatus?: string; faxPages?: number; expectedPages?: number }) : {};
      const received = await ctx.until(() => ctx.lab.results(ctx.resultsFrom).find((r) => r.kind === 'RECEIVEFAX'));
      const file = received?.fields.file;
      const pages = file && existsSync(file) ? await tiffPages(file) : 0;
      return {
        pass:
          row?.state === 'delivered' && detail.faxStatus === 'SUCCESS' && detail.faxPages === detail.expectedPages && received?.fields.FAXSTATUS === 'SUCCESS' && Number(received.fields.FAXPAGES) === detail.expectedPages && pages === detail.expectedPages,
        journal: row ? `${shortRow(row)} FAXSTATUS=${detail.faxStatus} FAXPAGES=${detail.faxPages} of ${detail.expectedPages}` : 'no final row',
        far: received ? `ReceiveFAX: FAXSTATUS=${received.fields.FAXSTATUS} FAXPAGES=${received.fields.FAXPAGES} FAXBITRATE=${received.fields.FAXBITRATE}; its TIFF has ${pages} page(s)` : 'no ReceiveFAX result',
      };
    },
  },
  {
    name: 'F to a line without fax (failed, sender told)',
    seconds: 300,
    async run(ctx) {
      const { from, row } = await phoneSendsAndSettles(ctx, NO_FAX, 'l12 A fax to a line that answers without a fax machine');
      const { sent, got } = await noticeReached(ctx, from, NO_FAX);
      const calls = row ? ctx.obs.calls(row.id) : [];
      return {
        pass: failedForGood(row) && row!.attempts === 2 && calls.length === 2 && calls.every((c) => c.status === 'Completed') && sent !== undefined && got.length === 1,
        journal: `${row ? shortRow(row) : 'no final row'}; calls ${calls.map((c) => `${c.file_name}=${c.status}`).join(', ')}; notice ${sent ? q(sent.text) : 'not delivered'}`,
        far: `sender's phone got ${got.length} notice file(s)`,
      };
    },
  },
  {
    name: 'V spoken call (the recording holds the speech)',
    seconds: 180,
    async run(ctx) {
      const text = 'l13 This is a spoken message from the laboratory. One two three four five.';
      const { row } = await phoneSendsAndSettles(ctx, VOICE, text);
      const recorded = await ctx.until(() => ctx.lab.results(ctx.resultsFrom).find((r) => r.kind === 'RECORD'));
      const file = recorded?.fields.file;
      const played = row ? path.join(ctx.lab.path('voice'), `${row.id}.wav`) : '';
      const rec = file && existsSync(file) ? await soundStats(file) : undefined;
      const ours = played && existsSync(played) ? await soundStats(played) : undefined;
      const pass = row?.state === 'delivered' && rec !== undefined && ours !== undefined && rec.seconds >= ours.seconds - 1.5 && rec.rms > ours.rms * 0.3 && rec.max > 0.05;
      return {
        pass,
        journal: row ? `${shortRow(row)} ${row.detail ?? ''}` : 'no final row',
        far: rec && ours ? `recorded ${rec.seconds.toFixed(2)} s, RMS ${rec.rms.toFixed(4)}, peak ${rec.max.toFixed(3)} (played ${ours.seconds.toFixed(2)} s, RMS ${ours.rms.toFixed(4)}); RECORD_STATUS=${recorded?.fields.RECORD_STATUS}` : `no recording (${recorded?.raw ?? 'no RECORD line'})`,
      };
    },
  },
  {
    name: 'T SIP MESSAGE (byte-exact on the wire)',
    seconds: 60,
    async run(ctx) {
      const text = 'l14 SIP out: zażółć € ✓ Привет';
      const { row } = await phoneSendsAndSettles(ctx, MSGPEER, text, handedToSip);
      const got = await ctx.until(() => sipReceived(ctx.sipLog).find((m) => m.body === text));
      return {
        pass: row?.state === 'spooled' && got !== undefined && got.bytes === Buffer.byteLength(text) && sipReceived(ctx.sipLog).filter((m) => m.body === text).length === 1,
        journal: row ? `${shortRow(row)} ${row.detail}` : 'no final row',
        far: got ? `msgpeer got one MESSAGE ${got.ruri} from ${got.from}, ${got.content_type}, ${got.bytes} bytes = the UTF-8 text` : 'msgpeer got nothing',
      };
    },
  },
  {
    name: 'inbound SIP to an S phone',
    seconds: 90,
    async run(ctx) {
      const text = 'l15 Cześć z softphone: żółw €';
      const answer = await ctx.lab.softphoneSends(SOFTPHONE, PHONE, text, 5097);
      const row = await ctx.until(() => final(ctx.obs.message(text)));
      const got = ctx.obs.phone().filter((f) => f.text === text);
      return {
        pass: row?.state === 'delivered' && row.source === 'sip' && got.length === 1 && got[0]!.oa === SOFTPHONE,
        journal: row ? `${shortRow(row)} source=${row.source} oa=${row.oa}` : 'no final row',
        far: `Asterisk answered ${q(answer)}; phone got ${got.length} file(s)${got[0] ? ` from ${got[0].oa}` : ''} with the exact text`,
      };
    },
  },
  {
    name: 'inbound SIP to a T softphone',
    seconds: 60,
    async run(ctx) {
      const text = 'l16 softphone to softphone: ñ € żółw';
      const answer = await ctx.lab.softphoneSends(SOFTPHONE, MSGPEER, text, 5096);
      const row = await ctx.until(() => handedToSip(ctx.obs.message(text)));
      const got = await ctx.until(() => sipReceived(ctx.sipLog).find((m) => m.body === text));
      return {
        pass: row?.state === 'spooled' && row.source === 'sip' && got !== undefined && got.bytes === Buffer.byteLength(text),
        journal: row ? `${shortRow(row)} source=${row.source} ${row.detail}` : 'no final row',
        far: `Asterisk answered ${q(answer)}; ${got ? `msgpeer got it from ${got.from}, ${got.bytes} bytes, exact` : 'msgpeer got nothing'}`,
      };
    },
  },
  {
    name: 'F exactly once: the daemon SIGKILLed in the middle of SendFAX, restarted (outcome keeper)',
    seconds: 300,
    alone: true,
    async run(ctx) {
      // Sixty-odd short lines: two SMS parts, a two-page fax.
      const text = `l18 sent while the daemon dies\n${Array.from({ length: 64 }, (_, i) => `p${i + 1}`).join('\n')}`;
      const from = ctx.sender();
      const resultsFrom = ctx.lab.offset('results.log');
      for (const part of splitMessage(text, { reference: 0x63 })) await ctx.lab.phoneSends(from, FAX, part.text, { udh: part.udh });
      // pbx_exec names the application a channel runs, also one that FastAGI's EXEC started.
      const sending = await ctx.until(async () => (/!SendFAX!/.test(await ctx.lab.rx('core show channels concise')) ? true : undefined));
      if (!sending) return { pass: false, journal: '-', far: 'SendFAX never started' };
      await tick(5_000); // a page takes about ten seconds: this is in the first of two
      const killed = await ctx.daemon.kill();
      const stillSending = /!SendFAX!/.test(await ctx.lab.rx('core show channels concise'));
      await ctx.daemon.start();
      const row = await ctx.until(() => final(ctx.obs.message(text)));
      const detail = row?.detail ? (JSON.parse(row.detail) as { faxStatus?: string; faxPages?: number; expectedPages?: number; outcomeFrom?: string }) : {};
      // Long enough for a second attempt's fax to have come through, had there been one.
      await tick(row?.state === 'delivered' ? 20_000 : 0);
      const received = ctx.lab.results(resultsFrom).filter((r) => r.kind === 'RECEIVEFAX');
      const calls = row ? ctx.obs.calls(row.id) : [];
      const kept = await ctx.lab.rx('database show sms-router');
      const pass =
        killed &&
        detail.expectedPages === 2 &&
        row?.state === 'delivered' &&
        detail.outcomeFrom === 'outcome-keeper' &&
        detail.faxStatus === 'SUCCESS' &&
        detail.faxPages === detail.expectedPages &&
        calls.length === 1 &&
        received.length === 1 &&
        received[0]!.fields.FAXSTATUS === 'SUCCESS' &&
        Number(received[0]!.fields.FAXPAGES) === detail.expectedPages &&
        !kept.includes(calls[0]?.file_name.replace(/\.call$/, '') ?? '?');
      return {
        pass,
        journal: row
          ? `${shortRow(row)} FAXSTATUS=${detail.faxStatus} FAXPAGES=${detail.faxPages} of ${detail.expectedPages}, outcome from ${detail.outcomeFrom ?? 'the FastAGI session'}; calls ${calls.map((c) => `${c.file_name}=${c.status}`).join(', ')}; AstDB key ${kept.includes(calls[0]?.file_name.replace(/\.call$/, '') ?? '?') ? 'still there' : 'deleted'}`
          : 'no final row',
        far: `daemon SIGKILLed with SendFAX running (still running after the kill: ${stillSending}); the receiver got ${received.length} fax(es): ${received.map((r) => `FAXSTATUS=${r.fields.FAXSTATUS} FAXPAGES=${r.fields.FAXPAGES}`).join('; ')}`,
      };
    },
  },
  ...[
    ['S to a busy line (retried, then a notice)', BUSY],
    ['S to an unanswered line (retried, then a notice)', NO_ANSWER],
  ].map(
    ([name, to]): Scenario => ({
      name: name!,
      seconds: 180,
      async run(ctx) {
        const { from, row } = await phoneSendsAndSettles(ctx, to!, `l17 to ${to}, a line that cannot take it`);
        const { sent, got } = await noticeReached(ctx, from, to!);
        // The daemon moves archived call files it has read into [spool] call_archive.
        const archived = readdirSync(ctx.lab.path('sms-router-calls'))
          .filter((n) => n.startsWith(`smsr-S-${to}-`))
          .map((n) => /Status: (\w+)/.exec(readFileSync(ctx.lab.path('sms-router-calls', n), 'utf8'))?.[1] ?? '?');
        return {
          pass: failedForGood(row) && row!.attempts === 2 && archived.length === 2 && archived.every((s) => s === 'Expired') && sent !== undefined && got.length === 1,
          journal: `${row ? shortRow(row) : 'no final row'}; notice ${sent ? q(sent.text) : 'not delivered'}`,
          far: `calls archived ${archived.join(', ') || 'none'}; sender's phone got ${got.length} notice file(s)`,
        };
      },
    }),
  ),
];

// ------------------------------------------------------------------ the run

function config(lab: Lab, work: string, httpPort: number, ports: { agi: number; ami: number }): string {
  const s = (v: string) => JSON.stringify(v);
  return `# written by test/asterisk/run.ts for the lab at ${lab.dir}
[spool]
root = ${s(lab.spool)}
rescan_interval = 2
[database]
path = ${s(path.join(work, 'lab.db'))}
[centre]
receive_number = "${CENTRE}"
send_number = "${CENTRE}"
[sms]
app_log = ${s(path.join(lab.logDir, 'sms'))}
max_retries = 0
wait_time = 10
max_attempts = 2
retry_delay = 3
retry_backoff = 1
[fax]
max_retries = 0
wait_time = 20
max_attempts = 2
retry_delay = 3
retry_backoff = 1
keep = true
[voice]
max_retries = 0
wait_time = 20
max_attempts = 2
retry_delay = 3
retry_backoff = 1
keep = true
repeats = 0
[agi]
listen = "127.0.0.1:${ports.agi}"
advertise = "127.0.0.1:4573"
[ami]
enabled = true
host = "127.0.0.1"
port = ${ports.ami}
username = "labami"
secret = "labsecret123"
outcome_keeper = "sms-router-outcome"
[commands]
per_sender_per_minute = 100
[http]
listen = "127.0.0.1:${httpPort}"
`;
}

function seed(dbPath: string): void {
  const db = openDatabase(dbPath);
  const dir = new RecipientDirectory(db);
  for (const n of [...SENDERS, PHONE]) dir.add({ number: n, service: 'S', channel: LAB_PHONE });
  dir.add({ number: BUSY, service: 'S', channel: 'Local/phone-busy@sms-phone' });
  dir.add({ number: NO_ANSWER, service: 'S', channel: 'Local/phone-noanswer@sms-phone' });
  dir.add({ number: FAX, service: 'F', channel: 'Local/receive@fax' });
  dir.add({ number: NO_FAX, service: 'F', channel: 'Local/nofax@fax' });
  dir.add({ number: VOICE, service: 'V', channel: 'Local/record@voice' });
  dir.add({ number: SOFTPHONE, service: 'T', channel: 'SIP/softphone' });
  dir.add({ number: MSGPEER, service: 'T', channel: 'SIP/msgpeer' });
  dir.add({ number: COMMAND, service: 'C' });
  dir.add({ number: DISABLED, service: 'N' });
  db.close();
}

function copyDir(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) copyFileSync(path.join(from, name), path.join(to, name));
}

/** Copies every file that appears in `from` (dot-files excepted) into `to`, as soon as it appears. */
function watchCopies(from: string, to: string): FSWatcher {
  mkdirSync(to, { recursive: true });
  return watch(from, (_event, name) => {
    if (!name || name.startsWith('.')) return;
    try {
      copyFileSync(path.join(from, name), path.join(to, name));
    } catch {
      /* already taken by app_sms */
    }
  });
}

async function healthy(port: number, daemon: ChildProcess): Promise<void> {
  for (const start = Date.now(); Date.now() - start < 60_000; await tick(250)) {
    if (daemon.exitCode !== null) throw new Error(`the daemon exited with ${daemon.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
  }
  throw new Error('the daemon did not become healthy in 60 s');
}

/** The built daemon as a child process on the lab's config; its output is appended to one log file. */
class DaemonProcess {
  private child: ChildProcess | undefined;
  private readonly log: ReturnType<typeof createWriteStream>;
  constructor(
    private readonly configPath: string,
    private readonly httpPort: number,
    logFile: string,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [MAIN, 'run', '--config', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    this.child = child;
    await healthy(this.httpPort, child);
  }

  /** SIGKILL, as a crash; true once it is dead. */
  async kill(): Promise<boolean> {
    return this.end('SIGKILL');
  }

  /** SIGTERM, as systemd stops it. */
  async stop(): Promise<boolean> {
    return this.end('SIGTERM');
  }

  private async end(signal: NodeJS.Signals): Promise<boolean> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return true;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
    return true;
  }
}

async function main(): Promise<number> {
  const labDir = process.env.SMSR_ASTERISK_LAB;
  if (!labDir) {
    process.stderr.write('set SMSR_ASTERISK_LAB to a lab built by ../shared/asterisk-lab/build.sh (README: "Testing against a real Asterisk")\n');
    return 2;
  }
  const args = process.argv.slice(2);
  const onlyArg = args.indexOf('--only');
  const only = onlyArg >= 0 ? (args[onlyArg + 1] ?? '').split(',') : undefined;
  const chosen = only ? SCENARIOS.filter((s) => only.some((o) => s.name.toLowerCase().includes(o.toLowerCase()))) : SCENARIOS;

  const lab = new Lab(path.resolve(labDir));
  const version = await lab.start();
  console.log(`lab: ${lab.dir}: ${version.split('\n')[0]}`);
  if (existsSync(lab.path('outgoing')) && readdirSync(lab.path('outgoing')).length > 0) await tick(5_000); // let a previous run's calls end
  lab.clean();
  // The outcome keeper's dialplan, exactly as docs/asterisk gives it to operators.
  await lab.includeDialplan(KEEPER_DIALPLAN);
  const work = mkdtempSync(path.join(tmpdir(), 'smsr-lab-'));
  const httpPort = await freePort();
  const configPath = path.join(work, 'lab.toml');
  const recordArg = args.indexOf('--record');
  const recordDir = recordArg >= 0 ? path.resolve(args[recordArg + 1] ?? 'lab-record') : undefined;
  // The lab's dialplan sends SIP messages to agi://127.0.0.1:4573; recording puts a relay there.
  const ports = recordDir ? { agi: await freePort(), ami: await freePort() } : { agi: 4573, ami: 5038 };
  const relays = recordDir
    ? [
        new TranscriptRelay({ name: 'fastagi', listen: 4573, target: ports.agi, dir: recordDir, asteriskConnects: true }),
        new TranscriptRelay({ name: 'ami', listen: ports.ami, target: 5038, dir: recordDir, asteriskConnects: false }),
      ]
    : [];
  for (const relay of relays) await relay.start();
  // The daemon's mttx files live only until app_sms reads them (seconds later, when the call is up): copy each as it appears.
  const mttxWatch = recordDir ? watchCopies(lab.path('sms', 'mttx'), path.join(recordDir, 'mttx')) : undefined;
  writeFileSync(configPath, config(lab, work, httpPort, ports));
  seed(path.join(work, 'lab.db'));
  const smsLogFrom = lab.offset('sms');
  const resultsFrom = lab.offset('results.log');
  const sipLog = path.join(work, 'msgpeer.log');
  const listener = lab.sipListener(5099, sipLog, 900);

  const daemon = new DaemonProcess(configPath, httpPort, path.join(work, 'daemon.log'));
  const obs = new Observer(lab, path.join(work, 'lab.db'), smsLogFrom);
  let failed = 0;
  try {
    await daemon.start();
    console.log(`daemon: pid ${daemon.pid}, config ${configPath}, log ${path.join(work, 'daemon.log')}`);
    let next = 0;
    const started = Date.now();
    const runOne = async (scenario: Scenario) => {
      const deadline = Date.now() + scenario.seconds * 1000;
      const ctx: Context = {
        lab,
        obs,
        work,
        sipLog,
        resultsFrom,
        sender: () => SENDERS[next++ % SENDERS.length]!,
        daemon,
        async until(probe) {
          for (;;) {
            const v = await probe();
            if (v !== undefined || Date.now() > deadline) return v;
            await tick(500);
          }
        },
      };
      const t0 = Date.now();
      try {
        const outcome = await scenario.run(ctx);
        return { scenario, outcome, seconds: (Date.now() - t0) / 1000 };
      } catch (err) {
        return { scenario, outcome: { pass: false, journal: '-', far: `error: ${(err as Error).message}` }, seconds: (Date.now() - t0) / 1000 };
      }
    };
    const results = await Promise.all(chosen.filter((sc) => !sc.alone).map(runOne));
    for (const scenario of chosen.filter((sc) => sc.alone)) results.push(await runOne(scenario));
    for (const { scenario, outcome, seconds } of results) {
      if (!outcome.pass) failed++;
      console.log(`${outcome.pass ? 'PASS' : 'FAIL'} ${scenario.name} (${seconds.toFixed(1)} s)\n     journal: ${outcome.journal}\n     far side: ${outcome.far}`);
    }
    console.log(`${results.length - failed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    obs.close();
    await daemon.stop();
    listener.kill('SIGTERM');
    for (const relay of relays) await relay.stop();
    mttxWatch?.close();
    if (recordDir) {
      writeFileSync(path.join(recordDir, 'app_sms.log'), lab.logSince('sms', smsLogFrom));
      writeFileSync(path.join(recordDir, 'results.log'), lab.logSince('results.log', resultsFrom));
      copyDir(lab.path('sms', 'mtrx'), path.join(recordDir, 'mtrx'));
      copyDir(lab.path('sms-router-calls'), path.join(recordDir, 'calls'));
      copyFileSync(path.join(work, 'daemon.log'), path.join(recordDir, 'daemon.log'));
      console.log(`recorded into ${recordDir}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main().catch((err: Error) => {
  console.error(`test:asterisk: ${err.message}`);
  return 2;
});
