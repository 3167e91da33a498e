/**
 * Crash safety over every service (issue 10). The built daemon runs as a
 * separate process against a real spool tree, a fake AMI (T) and a fake
 * Asterisk that plays the PBX (S calls and app_sms's log, F/V calls through
 * FastAGI, inbound SIP messages). It is SIGKILLed again and again:
 *  - at every named crash point (src/testing/crash-points.ts), at its 1st,
 *    2nd and 3rd hit, armed through `[testing] crash_at` / `crash_after`;
 *  - at seeded random moments;
 * and restarted after each kill, with fresh messages for every service
 * arriving before each run. A last, uninterrupted run drains everything.
 *
 * Then every message the phones and softphones sent must have exactly one
 * final outcome: S one mttx file per part taken by app_sms, F one SendFAX,
 * V one Playback, T one MessageSend, C one reply, N / unknown one notice
 * (each reply and notice itself delivered once), inbound SIP recorded once,
 * the parts of a long message joined once.
 *
 * Known at-least-once windows, counted and reported, never hidden: when the
 * daemon dies after Asterisk acted but before the journal recorded it, the
 * daemon cannot know that it happened, and acts again after the restart:
 *  - T: MessageSend answered by Asterisk, its response not recorded;
 *  - F/V: SendFAX / Playback done, FAXSTATUS / PLAYBACKSTATUS not recorded.
 * Such a second delivery is allowed only for an execution that happened in
 * a run killed before that message's outcome was in the journal (checked
 * after every kill); any other second delivery fails the test.
 *
 * A second, smaller run does the same with the outcome keeper on ([ami]
 * outcome_keeper; the fake Asterisk plays its hangup handler into the fake
 * AMI's AstDB): F and V traffic only, killed at the crash points of the F/V
 * path and at random moments. There the F/V window is closed: every fax and
 * voice message must be executed exactly once, the ones executed in a killed
 * run recorded from AstDB after the restart, and AstDB left empty.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { freePort } from '../helpers/ports.js';
import Database from 'better-sqlite3';
import { makeSpoolTree, spawnCli, visibleFiles, waitUntil, type Spawned } from '../helpers/spool-tree.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { FakeAsterisk } from '../fakes/asterisk.js';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { writeMorx } from '../../src/cli/send.js';
import { CRASH_POINTS, type CrashPointName } from '../../src/testing/crash-points.js';
import { mulberry32 } from '../helpers/random.js';

const SEED = 20261010;
const RANDOM_KILLS = 14;
const HITS = [1, 2, 3];


const S_PHONES = Array.from({ length: 8 }, (_, i) => `20${String(i + 1).padStart(2, '0')}`);
const FAXES = ['3001', '3002'];
const VOICES = ['4001', '4002'];
const SOFTPHONES = ['1001', '1002', '1003', '1004'];
const COMMAND = '5000';
const DISABLED = '6001';

type Kind = 'S' | 'F' | 'V' | 'C' | 'T' | 'N' | 'unknown' | 'sip' | 'concat';

interface Sent {
  kind: Kind;
  tag: string;
  from: string;
  to: string;
  text: string;
  uniqueid?: string;
  /** morx files written (a long message is several parts). */
  files?: number;
}

interface Row {
  id: number;
  kind: string;
  parent_id: number | null;
  source: string;
  source_name: string;
  oa: string;
  da: string;
  text: string;
  state: string;
  route: string | null;
  detail: string | null;
}

interface CrashRunOptions {
  seed: number;
  randomKills: number;
  /** Named points killed at, each at every hit of HITS. */
  points: readonly CrashPointName[];
  /** The services the waves of traffic send. */
  kinds: ReadonlySet<Kind>;
  /** [ami] outcome_keeper on: F/V executions in a killed run must be recorded from AstDB, never executed again. */
  keeper: boolean;
  minKills: number;
}

const ALL_KINDS: ReadonlySet<Kind> = new Set(['S', 'F', 'V', 'C', 'T', 'N', 'unknown', 'sip', 'concat']);
const KEEPER_CONTEXT = 'sms-router-outcome';

test(`SIGKILL at every named crash point and at random moments, over every service, loses nothing and duplicates nothing outside the T and F/V at-least-once windows, which it counts (seed ${SEED})`, { timeout: 600_000 }, async (t) => {
  await crashRun(t, { seed: SEED, randomKills: RANDOM_KILLS, points: Object.keys(CRASH_POINTS) as CrashPointName[], kinds: ALL_KINDS, keeper: false, minKills: 50 });
});

const FV_POINTS: readonly CrashPointName[] = ['call.after-commit', 'call.after-call-file', 'render.fax', 'render.voice', 'agi.session', 'agi.outcome'];

test(`with the outcome keeper on, SIGKILL at the F/V crash points and at random moments delivers every fax and voice message exactly once: no second delivery, even in the F/V window (seed ${SEED})`, { timeout: 600_000 }, async (t) => {
  await crashRun(t, { seed: SEED, randomKills: 6, points: FV_POINTS, kinds: new Set(['F', 'V']), keeper: true, minKills: 24 });
});

async function crashRun(t: TestContext, options: CrashRunOptions): Promise<void> {
  const { kinds } = options;
  const random = mulberry32(options.seed);
  const ami = await FakeAmiServer.start();
  const agiPort = await freePort();
  const tree = makeSpoolTree(
    [
      `[spool]\nroot = "spool"\nfsync = false\nrescan_interval = 1\nbatch_size = 4\n`,
      `[agi]\nlisten = "127.0.0.1:${agiPort}"\n`,
      `[ami]\nenabled = true\nhost = "127.0.0.1"\nport = ${ami.port}\nusername = "labami"\nsecret = "labsecret123"\naction_timeout = 5\n`,
      options.keeper ? `outcome_keeper = "${KEEPER_CONTEXT}"\n` : '',
      `[sms]\napp_log = "log/sms"\nretry_delay = 1\nretry_backoff = 1\nmax_attempts = 100\n`,
      `[fax]\nretry_delay = 1\nretry_backoff = 1\nmax_attempts = 100\nmax_concurrent_calls = 4\nresolution = "standard"\n`,
      `[voice]\nretry_delay = 1\nretry_backoff = 1\nmax_attempts = 100\nmax_concurrent_calls = 4\nrepeats = 0\n`,
      `[commands]\nper_sender_per_minute = 1000\n`,
    ].join(''),
  );
  const baseToml = readFileSync(tree.configPath, 'utf8');
  const asterisk = new FakeAsterisk({ config: tree.config, agiPort, astdb: ami.astdb });
  const keeperKeys = () => [...ami.astdb.keys()].filter((k) => k.startsWith('sms-router/'));
  /** Every stdout line of every daemon run. */
  const daemonLines: string[] = [];
  let daemon: Spawned | undefined;
  try {
    {
      const db = openDatabase(tree.dbPath);
      const dir = new RecipientDirectory(db);
      S_PHONES.forEach((n, i) => dir.add({ number: n, service: 'S', channel: `DAHDI/${i + 1}` }));
      FAXES.forEach((n) => dir.add({ number: n, service: 'F', channel: `PJSIP/fax${n}`, faxResolution: 'standard' }));
      VOICES.forEach((n) => dir.add({ number: n, service: 'V', channel: `PJSIP/${n}` }));
      SOFTPHONES.forEach((n) => dir.add({ number: n, service: 'T', channel: `PJSIP/${n}` }));
      dir.add({ number: COMMAND, service: 'C' });
      dir.add({ number: DISABLED, service: 'N' });
      db.close();
    }
    asterisk.start();

    // ---- the traffic: every wave has every service; the point under test gets more of its own
    const sent: Sent[] = [];
    let serial = 0;
    let concatClock = Date.UTC(2026, 0, 1, 12, 0, 0);
    const phone = () => S_PHONES[serial % S_PHONES.length]!;
    const otherPhone = (from: string) => S_PHONES[(S_PHONES.indexOf(from) + 1 + (serial % 3)) % S_PHONES.length]!;
    function send(kind: Kind, to: string, body: (tag: string) => string, from = phone()) {
      const tag = `m${++serial}`;
      const text = body(tag);
      if (kind === 'sip') {
        const uniqueid = `1700000000.${serial}`;
        sent.push({ kind, tag, from, to, text, uniqueid });
        asterisk.sendSipMessage({ from, to, body: text, uniqueid });
        return;
      }
      // Long messages: one reference (the clock's low byte) per set, so sets never share a key.
      const now = kind === 'concat' ? new Date((concatClock += 1000)) : undefined;
      const files = writeMorx(tree.morx, { from, to, text, now }, false).length;
      sent.push({ kind, tag, from, to, text, files });
    }
    function wave(focus: string | undefined, extra: number) {
      for (let i = 0; i < 2 && kinds.has('S'); i++) {
        const from = phone();
        send('S', otherPhone(from), (tag) => `S ${tag} to a phone`, from);
      }
      const more = (p: string) => (focus?.startsWith(p) ? extra : 0);
      const callFocus = focus === 'agi.session' || focus === 'agi.outcome' || focus?.startsWith('call.') ? extra : 0;
      for (let i = 0; i < 1 + more('render.fax') + callFocus && kinds.has('F'); i++) send('F', FAXES[serial % 2]!, (tag) => `Fax ${tag}: the plumber comes on Thursday.`);
      for (let i = 0; i < 1 + more('render.voice') + callFocus && kinds.has('V'); i++) send('V', VOICES[serial % 2]!, (tag) => `Voice ${tag}, call me back.`);
      if (kinds.has('C')) send('C', COMMAND, (tag) => `PING ${tag}`);
      for (let i = 0; i < 1 + more('sip.') && kinds.has('T'); i++) send('T', SOFTPHONES[serial % 4]!, (tag) => `T ${tag} to a softphone`);
      if (kinds.has('N')) send('N', DISABLED, (tag) => `N ${tag} to a disabled number`);
      if (kinds.has('unknown')) send('unknown', `7${String(serial).padStart(3, '0')}`, (tag) => `U ${tag} to nobody`);
      for (let i = 0; i < 1 + more('agi.message') && kinds.has('sip'); i++) send('sip', phone(), (tag) => `SIP ${tag} from a softphone`, SOFTPHONES[serial % 4]!);
      for (let i = 0; i < (focus === 'reassembly.join' ? extra + 1 : serial % 2) && kinds.has('concat'); i++) {
        const from = phone();
        send('concat', otherPhone(from), (tag) => `Long ${tag} ` + 'Ala ma kota, a kot ma Alę. '.repeat(8), from);
      }
    }

    // ---- the kill schedule: every named point at hits 1..3, random kills in between
    const plan: Array<{ point?: CrashPointName; hit: number }> = [];
    for (const hit of HITS) for (const point of options.points) plan.push({ point, hit });
    for (let i = 0; i < options.randomKills; i++) plan.splice(Math.floor(random() * (plan.length + 1)), 0, { hit: 0 });

    const reader = () => new Database(tree.dbPath, { readonly: true });
    const killsAt = new Map<string, number>();
    const labels: string[] = [];
    const unreached: string[] = [];
    /** F/V executions and T sends that happened in a run killed before the journal recorded their outcome. */
    const windowExec = new Map<string, number>();
    let amiSeen = 0;
    let sessionsSeen = 0;

    for (const [run, step] of plan.entries()) {
      wave(step.point, step.hit);
      const testing = step.point ? `[testing]\ncrash_at = "${step.point}"\ncrash_after = ${step.hit}\n` : '';
      writeFileSync(tree.configPath, baseToml + testing);
      asterisk.run = run;
      daemon = spawnCli(['run', '--config', tree.configPath]);
      let label: string;
      if (step.point) {
        const reached = await Promise.race([daemon.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
        label = `${step.point} (hit ${step.hit})`;
        if (!reached) {
          unreached.push(label);
          label = `random: ${step.point} not reached in 20 s`;
          daemon.child.kill('SIGKILL');
        } else {
          assert.match(daemon.stderr.join(''), new RegExp(`CRASH_POINT ${step.point.replace('.', '\\.')}`), `run ${run}: killed at ${label}`);
        }
      } else {
        await daemon.waitForLine((l) => l.includes('"starting"'));
        const delay = Math.floor(random() * 900);
        await new Promise((r) => setTimeout(r, delay));
        label = 'random';
        daemon.child.kill('SIGKILL');
      }
      const exit = await daemon.exited;
      assert.equal(exit.signal, 'SIGKILL', `run ${run} (${label}) ended by SIGKILL, not ${JSON.stringify(exit)}: ${daemon.stderr.join('')}`);
      daemonLines.push(...daemon.lines);
      daemon = undefined;
      labels.push(label);
      killsAt.set(step.point && !label.startsWith('random') ? step.point : 'random', (killsAt.get(step.point && !label.startsWith('random') ? step.point : 'random') ?? 0) + 1);

      // What Asterisk did in this run that the journal does not know: inside the at-least-once windows.
      const db = reader();
      try {
        const state = (sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { state: string } | undefined)?.state;
        for (const d of ami.delivered.slice(amiSeen)) {
          const row = state(`SELECT state FROM messages WHERE text = ? AND route = 'T' AND state = 'spooled'`, d.body);
          if (row === undefined) windowExec.set(`T:${d.body}`, (windowExec.get(`T:${d.body}`) ?? 0) + 1);
        }
        amiSeen = ami.delivered.length;
        // Sessions of this run are over: the daemon is dead. (A new one cannot start before the next spawn.)
        await waitUntil(() => asterisk.sessions.slice(sessionsSeen).every((s) => s.done), 10_000, 'sessions of the killed run to end');
        for (const s of asterisk.sessions.slice(sessionsSeen)) {
          if (s.executed && state(`SELECT state FROM messages WHERE id = ?`, s.id) !== 'delivered') {
            windowExec.set(`${s.letter}:${s.id}`, (windowExec.get(`${s.letter}:${s.id}`) ?? 0) + 1);
          }
        }
        sessionsSeen = asterisk.sessions.length;
      } finally {
        db.close();
      }
    }

    // ---- the last run, uninterrupted, drains everything
    writeFileSync(tree.configPath, baseToml);
    daemon = spawnCli(['run', '--config', tree.configPath]);
    const finalStates = new Set(['delivered', 'bounced', 'failed']);
    await waitUntil(
      () => {
        if (!asterisk.idle) return false;
        const db = reader();
        try {
          const open = db
            .prepare(`SELECT count(*) AS n FROM messages WHERE state NOT IN ('delivered','bounced','failed') AND NOT (state = 'spooled' AND route = 'T')`)
            .get() as { n: number };
          const morx = db.prepare(`SELECT count(*) AS n FROM messages`).get() as { n: number };
          // With the keeper: also every archived call read and its AstDB key deleted.
          const settled = !options.keeper || (keeperKeys().length === 0 && visibleFiles(tree.config.spool.outgoingDone).length === 0);
          return open.n === 0 && morx.n > 0 && settled;
        } finally {
          db.close();
        }
      },
      120_000,
      'every message final',
    );
    daemon.child.kill('SIGTERM');
    const last = await daemon.exited;
    assert.equal(last.code, 0, daemon.stderr.join(''));
    daemonLines.push(...daemon.lines);
    daemon = undefined;
    await asterisk.stop();

    // ---- the accounting
    const db = reader();
    const rows = db.prepare(`SELECT id, kind, parent_id, source, source_name, oa, da, text, state, route, detail FROM messages ORDER BY id`).all() as Row[];
    db.close();
    const byId = new Map(rows.map((r) => [r.id, r]));
    const childrenOf = (id: number, source: string) => rows.filter((r) => r.parent_id === id && r.source === source);
    const mttxFor = (id: number) => asterisk.mttx.filter((m) => m.id === id);
    const problems: string[] = [];
    const outcomes = new Map<string, number>();
    const count = (o: string) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    let windowDuplicates = 0;
    /** With the keeper: executions in a killed run before the outcome was recorded, recorded from AstDB instead of executed again. */
    let keptByKeeper = 0;

    /** An S delivery: every part taken by app_sms exactly once, and the row delivered. */
    function deliveredToPhone(row: Row, what: string): boolean {
      const got = mttxFor(row.id);
      const parts = new Map<number, number>();
      for (const m of got) parts.set(m.part, (parts.get(m.part) ?? 0) + 1);
      if (got.length === 0) problems.push(`${what} #${row.id}: never reached the phone (state ${row.state})`);
      for (const [part, n] of parts) {
        if (n !== 1) problems.push(`${what} #${row.id}: part ${part} went to the phone ${n} times (in runs ${got.filter((g) => g.part === part).map((g) => `${g.run} after ${labels[g.run - 1] ?? '-'}, killed ${labels[g.run] ?? 'never'}`).join('; ')})`);
      }
      if (row.state !== 'delivered') problems.push(`${what} #${row.id}: state ${row.state}, expected delivered`);
      return got.length > 0 && [...parts.values()].every((n) => n === 1);
    }
    function oneChild(row: Row, source: string, what: string): Row | undefined {
      const c = childrenOf(row.id, source);
      if (c.length !== 1) problems.push(`${what} #${row.id}: ${c.length} ${source} rows, expected 1`);
      return c[0];
    }
    function rowOf(m: Sent): Row | undefined {
      if (m.kind === 'sip') return rows.find((r) => r.source === 'sip' && r.source_name === `sip-${m.uniqueid}`);
      return rows.find((r) => r.source === 'morx' && r.text === m.text && r.kind === 'message');
    }
    const calls = (letter: 'F' | 'V', id: number) => asterisk.sessions.filter((s) => s.letter === letter && s.id === id && s.executed).length;

    for (const m of sent) {
      const what = `${m.kind} ${m.tag}`;
      if (m.kind === 'concat') {
        const joined = rows.filter((r) => r.source === 'concat' && r.text === m.text);
        if (joined.length !== 1) {
          problems.push(`${what}: joined ${joined.length} times`);
          continue;
        }
        const parts = rows.filter((r) => r.route === 'concat' && r.source === 'morx' && r.detail !== null && (JSON.parse(r.detail) as { joinedInto?: number }).joinedInto === joined[0]!.id);
        if (parts.length !== m.files || parts.some((p) => p.state !== 'delivered')) problems.push(`${what}: parts ${JSON.stringify(parts.map((p) => [p.id, p.source_name, p.state, p.detail]))}`);
        if (deliveredToPhone(joined[0]!, what)) count('concat: joined once, delivered to the phone');
        continue;
      }
      const rowsFor = m.kind === 'sip' ? rows.filter((r) => r.source === 'sip' && r.source_name === `sip-${m.uniqueid}`) : rows.filter((r) => r.source === 'morx' && r.text === m.text);
      if (rowsFor.length !== 1) {
        problems.push(`${what}: ${rowsFor.length} journal rows (${m.kind === 'sip' ? 'lost by the centre' : 'morx file lost or read twice'})`);
        continue;
      }
      const row = rowOf(m)!;
      switch (m.kind) {
        case 'S':
        case 'sip':
          if (deliveredToPhone(row, what)) count(`${m.kind}: delivered to the phone once`);
          break;
        case 'F':
        case 'V': {
          const n = calls(m.kind, row.id);
          const inWindow = windowExec.get(`${m.kind}:${row.id}`) ?? 0;
          if (row.state !== 'delivered') problems.push(`${what} #${row.id}: state ${row.state}`);
          if (n === 0) problems.push(`${what} #${row.id}: never ${m.kind === 'F' ? 'faxed' : 'played'}`);
          else if (options.keeper) {
            // The window is closed: an execution in a killed run is recorded from AstDB, never repeated.
            if (n !== 1) problems.push(`${what} #${row.id}: ${m.kind === 'F' ? 'faxed' : 'played'} ${n} times with the outcome keeper on (${inWindow} in a killed run before the outcome was recorded)`);
            else {
              count(`${m.kind}: ${m.kind === 'F' ? 'faxed' : 'played'} once${inWindow ? ' (executed in a killed run, recorded from AstDB)' : ''}`);
              keptByKeeper += inWindow;
            }
          } else if (n - inWindow !== 1) problems.push(`${what} #${row.id}: ${m.kind === 'F' ? 'faxed' : 'played'} ${n} times, ${inWindow} of them in a killed run before the outcome was recorded`);
          else {
            count(`${m.kind}: ${m.kind === 'F' ? 'faxed' : 'played'} once${inWindow ? ' (+ again after a kill in the window)' : ''}`);
            windowDuplicates += inWindow;
          }
          break;
        }
        case 'T': {
          const n = ami.delivered.filter((d) => d.body === m.text).length;
          const inWindow = windowExec.get(`T:${m.text}`) ?? 0;
          if (row.state !== 'spooled') problems.push(`${what} #${row.id}: state ${row.state}`);
          if (n === 0) problems.push(`${what} #${row.id}: no MessageSend`);
          else if (n - inWindow !== 1) problems.push(`${what} #${row.id}: ${n} MessageSends, ${inWindow} of them in a killed run before the response was recorded`);
          else {
            count(`T: one MessageSend${inWindow ? ' (+ again after a kill in the window)' : ''}`);
            windowDuplicates += inWindow;
          }
          break;
        }
        case 'C': {
          const reply = oneChild(row, 'command', what);
          if (row.state !== 'delivered') problems.push(`${what} #${row.id}: state ${row.state}`);
          if (reply && deliveredToPhone(reply, `${what} reply`)) count('C: answered once, the reply delivered once');
          break;
        }
        case 'N':
        case 'unknown': {
          const notice = oneChild(row, 'notice', what);
          if (row.state !== 'bounced') problems.push(`${what} #${row.id}: state ${row.state}, expected bounced`);
          if (notice && deliveredToPhone(notice, `${what} notice`)) count(`${m.kind}: one notice, delivered once`);
          break;
        }
      }
    }
    // Nothing the daemon made up: every notice and reply belongs to a message that asked for it once.
    for (const r of rows.filter((x) => x.kind === 'notice')) {
      const parent = r.parent_id === null ? undefined : byId.get(r.parent_id);
      if (!parent) problems.push(`notice #${r.id} without a parent`);
    }

    const lost = problems.filter((p) => /never|lost|no MessageSend|0 journal rows|0 command rows|0 notice rows/.test(p)).length;
    const summary = [
      `kills: ${plan.length} (${[...killsAt].map(([p, n]) => `${p} ${n}`).join(', ')})`,
      `named points not reached: ${unreached.length ? unreached.join(', ') : 'none'}`,
      `messages: ${sent.length}; outcomes: ${[...outcomes].map(([o, n]) => `${o}: ${n}`).join('; ')}`,
      `journal rows: ${rows.length}; mttx files taken: ${asterisk.mttx.length}; F/V sessions: ${asterisk.sessions.length}; MessageSends: ${ami.delivered.length}`,
      `lost: ${lost}; duplicated outside the known windows: ${problems.length - lost}`,
      `second deliveries inside the known at-least-once windows (T answered / F,V executed, then killed before the journal recorded it): ${windowDuplicates}`,
    ];
    const keeperLines = daemonLines.filter((l) => l.includes('outcome read from the outcome keeper')).length;
    if (options.keeper) {
      summary.push(
        `outcome keeper: F/V executed in a killed run before the journal recorded it, then recorded from AstDB instead of executed again: ${keptByKeeper}; outcomes read from AstDB (log lines): ${keeperLines}; AstDB keys left: ${keeperKeys().length}`,
      );
    }
    for (const line of summary) t.diagnostic(line);
    assert.deepEqual(problems, [], summary.join('\n'));
    assert.deepEqual(unreached, [], 'every named crash point was reached');
    assert.ok(plan.length >= options.minKills, `${plan.length} kills`);
    if (options.keeper) {
      assert.equal(windowDuplicates, 0, 'no second F/V delivery with the keeper on');
      assert.ok(keptByKeeper > 0, 'the F/V window was hit (agi.outcome kills after SendFAX / Playback), so the keeper was put to work');
      assert.ok(keeperLines >= keptByKeeper, `${keeperLines} outcomes read from AstDB for ${keptByKeeper} executions in killed runs`);
      assert.deepEqual(keeperKeys(), [], 'every AstDB key deleted once its outcome was committed');
    }
  } finally {
    daemon?.child.kill('SIGKILL');
    await asterisk.stop();
    await ami.close();
    tree.cleanup();
  }
}

test('[testing] crash_at takes crash point names only (one, or several separated by commas); empty by default', async () => {
  const { parseConfig } = await import('../../src/config.js');
  const min = '[centre]\nreceive_number = "1000"\nsend_number = "1000"\n';
  assert.deepEqual(parseConfig('/x.toml', min).testing, { crashAt: [], crashAfter: 1 });
  assert.deepEqual(parseConfig('/x.toml', `${min}[testing]\ncrash_at = "ingest.after-commit, sip.after-send"\ncrash_after = 3\n`).testing, {
    crashAt: ['ingest.after-commit', 'sip.after-send'],
    crashAfter: 3,
  });
  assert.throws(() => parseConfig('/x.toml', `${min}[testing]\ncrash_at = "ingest.after-comit"\n`), /testing\.crash_at.*unknown: ingest\.after-comit/);
  assert.throws(() => parseConfig('/x.toml', `${min}[testing]\ncrash_after = 0\n`), /testing\.crash_after/);
});
