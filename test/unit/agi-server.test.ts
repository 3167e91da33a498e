import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { FastAgiServer, type AgiHandler, type AgiSession, type FastAgiServerOptions } from '../../src/asterisk/fastagi/server.js';
import { replyOk } from '../../src/asterisk/fastagi/framing.js';
import { answersFrom, connectFakeAgi, environmentBytes, loadTranscript, type AgiAnswer } from '../fakes/agi-client.js';

// ---------------------------------------------------------------- helpers

// A missed event fails the test instead of hanging the run.
const BOUNDED = { timeout: 30_000 };

interface LogEntry {
  level: string;
  obj: Record<string, unknown>;
  msg?: string;
}

async function startServer(t: TestContext, route: (script: string) => AgiHandler | undefined, options: Partial<FastAgiServerOptions> = {}) {
  const entries: LogEntry[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void entries.push({ level, obj: obj as Record<string, unknown>, msg });
  const server = new FastAgiServer({ host: '127.0.0.1', port: 0, logger: { info: at('info'), warn: at('warn'), debug: at('debug') }, ...options }, route);
  const { port } = await server.listen();
  t.after(() => server.close());
  return { server, port, entries };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

type Outcome<T> = { ok: true; value: T } | { ok: false; code: string };
async function settle<T>(p: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code ?? String(err) };
  }
}

/** Polls a condition the server exposes no event for (activeSessions); bounded. */
async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves on HANGUP or on the socket closing, whichever comes first. */
function hangupOrClose(session: AgiSession): Promise<unknown> {
  return session.hungUp ? Promise.resolve() : Promise.race([once(session, 'hangup'), once(session, 'close')]);
}

const FAX = loadTranscript('fastagi_sendfax_transcript.txt');
const FAX_ENV = Object.fromEntries(FAX.environment);

/** The server side of the recorded SendFAX session. */
async function driveFax(s: AgiSession) {
  await s.setVariable('FAXOPT(localstationid)', 'SMSROUTER');
  const exec = await s.exec('SendFAX', '/var/spool/fax-test/fax_good_2p_g4.tif', { timeoutMs: 60_000 });
  await hangupOrClose(s);
  return {
    exec: exec.result,
    hungUp: s.hungUp,
    status: await s.getVariable('FAXSTATUS'),
    error: await s.getVariable('FAXERROR'),
    pages: await s.getVariable('FAXPAGES'),
    bitrate: await s.getVariable('FAXBITRATE'),
  };
}

// ---------------------------------------------------------------- recorded sessions

test('the recorded SendFAX session: EXEC gives -1, HANGUP arrives, GET VARIABLE still answers', BOUNDED, async (t) => {
  const result = deferred<Awaited<ReturnType<typeof driveFax>> & { script: string }>();
  const { server, port } = await startServer(t, (script) =>
    script === 'fax/1' ? async (s) => result.resolve({ script: s.script, ...(await driveFax(s)) }) : undefined,
  );
  const fake = await connectFakeAgi({ port, env: FAX_ENV, answers: answersFrom(FAX) });
  await fake.closed;
  assert.deepEqual(await result.promise, { script: 'fax/1', exec: '-1', hungUp: true, status: 'SUCCESS', error: 'HANGUP', pages: '2', bitrate: '14400' });
  // Byte for byte what the recorded server sent.
  assert.equal(fake.received.toString('utf8'), FAX.exchanges.map((e) => e.command + '\n').join(''));
  assert.equal(fake.pipelined, 0);
  await waitFor(() => server.activeSessions === 0, 'the session to end');
});

test('the recorded lab and playback sessions are reproduced command for command', BOUNDED, async (t) => {
  const lab = loadTranscript('fastagi_transcript.txt');
  const play = loadTranscript('fastagi_playback_transcript.txt');
  const labResult = deferred<unknown>();
  const playResult = deferred<unknown>();
  const { port } = await startServer(t, (script) => {
    if (script === 'labscript')
      return async (s) => {
        await s.verbose('hello from lab FastAGI', 1);
        const channel = await s.getVariable('CHANNEL');
        await s.setVariable('FROMAGI', 'set-by-fastagi');
        const callerId = await s.getFullVariable('${CALLERID(all)}');
        const status = await s.command('CHANNEL STATUS');
        labResult.resolve({ foo: s.query.get('foo'), arg2: s.env.agi_arg_2, channelMatches: channel === s.env.agi_channel, callerId, status: status.result });
      };
    if (script === 'voice/1')
      return async (s) => {
        const played = await s.exec('Playback', '/var/spool/voice-test/hello8k', { timeoutMs: 60_000 });
        const status = await s.getVariable('PLAYBACKSTATUS');
        const streamed = await s.streamFile('/var/spool/voice-test/hello8k', '1', { timeoutMs: 60_000 });
        await s.hangup();
        await hangupOrClose(s);
        playResult.resolve({ played: played.result, status, digit: streamed.result, endpos: streamed.endpos, hungUp: s.hungUp });
      };
    return undefined;
  });
  const labFake = await connectFakeAgi({ port, answers: answersFrom(lab) });
  const playFake = await connectFakeAgi({ port, script: 'voice/1', answers: answersFrom(play) });
  await Promise.all([labFake.closed, playFake.closed]);
  assert.deepEqual(await labResult.promise, { foo: 'bar', arg2: 'arg two', channelMatches: true, callerId: '"AGI Tester" <48600111222>', status: '6' });
  assert.deepEqual(await playResult.promise, { played: '0', status: 'SUCCESS', digit: '0', endpos: 61712, hungUp: true });
  assert.deepEqual(labFake.commands.map((c) => c.line), lab.exchanges.map((e) => e.command));
  assert.deepEqual(playFake.commands.map((c) => c.line), play.exchanges.map((e) => e.command));
});

test('the recorded MESSAGE(body) that spills over two lines does not shift the next reply', BOUNDED, async (t) => {
  const msg = loadTranscript('fastagi_inbound_message_transcript.txt');
  const result = deferred<unknown>();
  const { port } = await startServer(t, (script) =>
    script === 'message'
      ? async (s) => {
          const encoded = await s.getFullVariable('${BASE64_ENCODE(${MESSAGE(body)})}');
          const body = await s.getFullVariable('${MESSAGE(body)}');
          await s.setVariable('MSG_CHAN_OPT', 'S');
          const exten = await s.getVariable('EXTEN');
          result.resolve({ same: body === Buffer.from(encoded ?? '', 'base64').toString('utf8'), twoLines: body?.split('\n').length, exten });
        }
      : undefined,
  );
  const answers = answersFrom(msg);
  answers.set('SET VARIABLE MSG_CHAN_OPT', ['200 result=1']);
  const fake = await connectFakeAgi({ port, env: Object.fromEntries(msg.environment), answers });
  await fake.closed;
  assert.deepEqual(await result.promise, { same: true, twoLines: 2, exten: '447700900123' });
});

// ---------------------------------------------------------------- hang-ups, timeouts, hostile clients

test('a client that closes the socket at any step: AGI_CLOSED or completion, and the server keeps serving', BOUNDED, async (t) => {
  const outcomes: Array<Outcome<unknown>> = [];
  const { server, port } = await startServer(t, () => async (s) => void outcomes.push(await settle(driveFax(s))));
  const steps = FAX.exchanges.length;
  const answers = answersFrom(FAX);
  for (let k = 0; k <= steps; k++) {
    // Closed after answering k commands, or at command k+1 without answering it.
    const variants = [{ closeAfter: k }, { answers: (c: { index: number; line: string }): AgiAnswer | undefined => (c.index === k + 1 ? 'close' : answers.get(c.line)) }];
    for (const variant of variants) {
      const before = outcomes.length;
      const fake = await connectFakeAgi({ port, env: FAX_ENV, answers, ...variant });
      await fake.closed;
      await waitFor(() => outcomes.length > before && server.activeSessions === 0, `step ${k}`);
      const outcome = outcomes.at(-1)!;
      if (k >= steps) assert.equal(outcome.ok, true, `step ${k}`);
      else assert.deepEqual(outcome, { ok: false, code: 'AGI_CLOSED' }, `step ${k} ${JSON.stringify(variant)}`);
    }
  }
  // An unsolicited HANGUP after any reply leaves the dialogue in step (dead AGI).
  for (let k = 1; k <= steps; k++) {
    const fake = await connectFakeAgi({ port, env: FAX_ENV, answers, hangupAfter: k });
    await fake.closed;
    await waitFor(() => outcomes.length === 2 * (steps + 1) + k, `hangupAfter ${k}`);
    assert.deepEqual(outcomes.at(-1), { ok: true, value: { exec: '-1', hungUp: true, status: 'SUCCESS', error: 'HANGUP', pages: '2', bitrate: '14400' } });
  }
});

test('a command that gets no reply times out with AGI_TIMEOUT and ends the session', BOUNDED, async (t) => {
  const outcomes = deferred<Array<Outcome<unknown>>>();
  const { port } = await startServer(
    t,
    () => async (s) => {
      const started = Date.now();
      const first = await settle(s.getVariable('SLOW'));
      const elapsed = Date.now() - started;
      outcomes.resolve([first, { ok: true, value: elapsed >= 150 }, await settle(s.getVariable('AFTER'))]);
    },
    { commandTimeoutMs: 200 },
  );
  const fake = await connectFakeAgi({ port, answers: { 'GET VARIABLE SLOW': 'stall' } });
  await fake.closed;
  assert.deepEqual(await outcomes.promise, [{ ok: false, code: 'AGI_TIMEOUT' }, { ok: true, value: true }, { ok: false, code: 'AGI_CLOSED' }]);
  assert.deepEqual(fake.commands.map((c) => c.line), ['GET VARIABLE SLOW'], 'nothing is sent after a timeout: a late reply would shift');

  // A per-command timeout overrides the default, both ways.
  const perCommand = deferred<Array<Outcome<unknown>>>();
  const second = await startServer(
    t,
    () => async (s) => perCommand.resolve([await settle(s.exec('SendFAX', 'x', { timeoutMs: 5_000 })), await settle(s.exec('Wait', '1', { timeoutMs: 100 }))]),
    { commandTimeoutMs: 50 },
  );
  const slow = await connectFakeAgi({
    port: second.port,
    answers: (c) => {
      if (c.argv[1] !== 'SendFAX') return undefined;
      // Answered after the default 50 ms but well within its own 5 s; then stalled for good.
      setTimeout(() => slow.send('200 result=0\n'), 120);
      return 'stall';
    },
  });
  await slow.closed;
  const [fax, wait] = await perCommand.promise;
  assert.deepEqual(fax, { ok: true, value: { code: 200, result: '0', lines: ['200 result=0'] } });
  assert.deepEqual(wait, { ok: false, code: 'AGI_TIMEOUT' }, 'the fake is stalled for good after SendFAX');
});

test('a client that connects and never speaks is dropped after environmentTimeoutMs', BOUNDED, async (t) => {
  let routed = 0;
  const { server, port, entries } = await startServer(t, () => (routed++, async () => undefined), { environmentTimeoutMs: 150 });
  const started = Date.now();
  const silent = await connectFakeAgi({ port, environment: false });
  const half = await connectFakeAgi({ port, environment: 'agi_network: yes\nagi_request: agi://127.0.0.1/x\n' });
  await Promise.all([silent.closed, half.closed]);
  assert.ok(Date.now() - started >= 140);
  assert.equal(routed, 0);
  await waitFor(() => server.activeSessions === 0, 'the connections to be forgotten');
  assert.equal(entries.filter((e) => e.level === 'warn' && /no environment/.test(e.msg ?? '')).length, 2);
});

test('an unknown script is closed without a word', BOUNDED, async (t) => {
  const asked: string[] = [];
  const { port, entries } = await startServer(t, (script) => (asked.push(script), undefined));
  const fake = await connectFakeAgi({ port, script: 'nope/1?x=y' });
  await fake.closed;
  assert.deepEqual(asked, ['nope/1']);
  assert.equal(fake.received.length, 0);
  assert.ok(entries.some((e) => e.level === 'warn' && e.obj.script === 'nope/1'));

  // Garbage instead of an environment is dropped too, before any routing.
  const garbage = await connectFakeAgi({ port, environment: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' });
  await garbage.closed;
  assert.deepEqual(asked, ['nope/1']);
});

test('a handler that throws or rejects is logged and the next session is served', BOUNDED, async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const served = deferred<string | undefined>();
  const handlers: Record<string, AgiHandler> = {
    'throw-sync': (() => {
      throw new Error('sync');
    }) as AgiHandler,
    reject: async () => {
      throw new Error('async');
    },
    'reject-after-command': async (s) => {
      await s.getVariable('X');
      throw Object.assign(new Error('later'), { code: 'SOMETHING' });
    },
    'listener-throws': async (s) => {
      s.on('hangup', () => {
        throw new Error('listener');
      });
      await s.getVariable('X'); // answered with a reply and a HANGUP
      await hangupOrClose(s);
      await s.getVariable('Y');
    },
    good: async (s) => served.resolve(await s.getVariable('X')),
  };
  const { server, port, entries } = await startServer(t, (script) => {
    if (script === 'route-throws') throw new Error('route');
    return handlers[script];
  });
  for (const script of ['throw-sync', 'reject', 'reject-after-command', 'route-throws']) {
    const fake = await connectFakeAgi({ port, script });
    await fake.closed;
  }
  const listener = await connectFakeAgi({ port, script: 'listener-throws', answers: { 'GET VARIABLE X': ['200 result=1 (x)', 'HANGUP'] } });
  await listener.closed;
  const good = await connectFakeAgi({ port, script: 'good', answers: { 'GET VARIABLE X': ['200 result=1 (fine)'] } });
  await good.closed;
  assert.equal(await served.promise, 'fine');
  assert.deepEqual(listener.commands.map((c) => c.line), ['GET VARIABLE X', 'GET VARIABLE Y'], 'a throwing hangup listener does not break the session');
  assert.equal(entries.filter((e) => e.msg === 'FastAGI handler failed').length, 3);
  assert.ok(entries.some((e) => e.msg === 'FastAGI route lookup failed'));
  assert.ok(entries.some((e) => e.msg === 'AGI session listener threw'));
  await waitFor(() => server.activeSessions === 0, 'sessions to end');
  assert.deepEqual(unhandled, []);
});

test('50 concurrent sessions each get their own answers', BOUNDED, async (t) => {
  const n = 50;
  let arrived = 0;
  const all = deferred<void>();
  const results: string[] = [];
  let peak = 0;
  const { server, port } = await startServer(t, (script) =>
    script.startsWith('fax/')
      ? async (s) => {
          if (++arrived === n) all.resolve();
          await all.promise; // every session is open at once
          peak = Math.max(peak, server.activeSessions);
          const id = await s.getVariable('ID');
          await s.setVariable('RESULT', `done ${id}`);
          results.push(`${s.script}=${id}`);
        }
      : undefined,
  );
  const fakes = await Promise.all(
    Array.from({ length: n }, (_, i) => connectFakeAgi({ port, script: `fax/${i}`, answers: { 'GET VARIABLE ID': [`200 result=1 (${i})`] } })),
  );
  await Promise.all(fakes.map((f) => f.closed));
  assert.equal(peak, n);
  assert.deepEqual(results.sort(), Array.from({ length: n }, (_, i) => `fax/${i}=${i}`).sort());
  fakes.forEach((f, i) => assert.deepEqual(f.commands.map((c) => c.line), ['GET VARIABLE ID', `SET VARIABLE RESULT "done ${i}"`]));
  await waitFor(() => server.activeSessions === 0, 'all sessions to end');
});

test('CR, LF or NUL in a value never reaches the socket', BOUNDED, async (t) => {
  const outcomes = deferred<Array<Outcome<unknown>>>();
  const { port } = await startServer(t, () => async (s) => {
    const attempts: Array<() => Promise<unknown>> = [
      () => s.setVariable('X', 'a\nEXEC System rm -rf /'),
      () => s.setVariable('X\nEXEC System', 'v'),
      () => s.getVariable('A\r\nB'),
      () => s.getFullVariable('${X}\n'),
      () => s.exec('System', 'a\nb'),
      () => s.exec('System', ['ok', 'b\r']),
      () => s.exec('Sys tem'),
      () => s.verbose('hi\n'),
      () => s.streamFile('f\u0000', '1'),
      () => s.command('EXEC\nSystem'),
      () => s.command('SET VARIABLE X', ['a\rb']),
    ];
    const results: Array<Outcome<unknown>> = [];
    for (const attempt of attempts) results.push(await settle(attempt()));
    results.push(await settle(s.setVariable('SAFE', 'ok')));
    outcomes.resolve(results);
  });
  const fake = await connectFakeAgi({ port });
  await fake.closed;
  const results = await outcomes.promise;
  assert.deepEqual(results.slice(0, -1), Array.from({ length: results.length - 1 }, () => ({ ok: false, code: 'AGI_UNSAFE_VALUE' })));
  assert.deepEqual(results.at(-1), { ok: true, value: undefined }, 'the session is still usable');
  assert.equal(fake.received.toString('utf8'), 'SET VARIABLE SAFE "ok"\n');
});

test('non-2xx replies: 511 on a dead channel, 510, unset variables', BOUNDED, async (t) => {
  const outcomes = deferred<Array<Outcome<unknown>>>();
  const { port } = await startServer(t, () => async (s) => {
    const raw = await s.command('GET VARIABLE DEAD');
    outcomes.resolve([
      { ok: true, value: [raw.code, replyOk(raw)] },
      await settle(s.getVariable('DEAD')),
      await settle(s.setVariable('BAD', 'x')),
      await settle(s.getVariable('UNSET')),
      await settle(s.getVariable('EMPTY')),
    ]);
  });
  const fake = await connectFakeAgi({
    port,
    answers: {
      'GET VARIABLE DEAD': ['511 Command Not Permitted on a dead channel or intercept routine'],
      'SET VARIABLE BAD': ['510 Invalid or unknown command'],
      'GET VARIABLE UNSET': ['200 result=0'],
      'GET VARIABLE EMPTY': ['200 result=1 ()'],
    },
  });
  await fake.closed;
  assert.deepEqual(await outcomes.promise, [
    { ok: true, value: [511, false] },
    { ok: false, code: 'AGI_HANGUP' },
    { ok: false, code: 'AGI_PROTOCOL' },
    { ok: true, value: undefined },
    { ok: true, value: '' },
  ]);
});

test('commands called together go out one at a time, in call order', BOUNDED, async (t) => {
  const values = deferred<unknown>();
  const { port } = await startServer(t, () => async (s) => {
    values.resolve(await Promise.all([s.getVariable('A'), s.getVariable('B'), s.command('CHANNEL STATUS'), s.getVariable('C')]).then((r) => [r[0], r[1], r[2].result, r[3]]));
  });
  const fake = await connectFakeAgi({ port, answers: (c) => [c.argv[0] === 'CHANNEL' ? '200 result=6' : `200 result=1 (${c.argv[2]})`] });
  await fake.closed;
  assert.deepEqual(await values.promise, ['A', 'B', '6', 'C']);
  assert.deepEqual(fake.commands.map((c) => c.line), ['GET VARIABLE A', 'GET VARIABLE B', 'CHANNEL STATUS', 'GET VARIABLE C']);
  assert.equal(fake.pipelined, 0);
});

test('unreadable replies end the session with AGI_PROTOCOL; the server carries on', BOUNDED, async (t) => {
  const outcomes: Array<Outcome<unknown>> = [];
  const { server, port } = await startServer(t, () => async (s) => void outcomes.push(await settle(s.getVariable('X'))), { maxLineBytes: 1024 });
  const hostile: AgiAnswer[] = [
    { raw: 'garbage\n' },
    { raw: 'x'.repeat(5000) + '\n' },
    { raw: '\u0000\u00ff\u0001\n' },
    ['520-Invalid command syntax.  Proper usage follows:', ...Array.from({ length: 200 }, () => 'usage '.repeat(10))], // never ends, bounded
  ];
  for (const answer of hostile) {
    const fake = await connectFakeAgi({ port, answers: { 'GET VARIABLE X': answer } });
    await fake.closed;
  }
  await waitFor(() => outcomes.length === hostile.length, 'every handler to finish');
  assert.deepEqual(outcomes, hostile.map(() => ({ ok: false, code: 'AGI_PROTOCOL' })));
  const fine = await connectFakeAgi({ port, answers: { 'GET VARIABLE X': ['200 result=1 (ok)'] } });
  await fine.closed;
  await waitFor(() => outcomes.length === hostile.length + 1, 'the good session');
  assert.deepEqual(outcomes.at(-1), { ok: true, value: 'ok' });
  await waitFor(() => server.activeSessions === 0, 'sessions to end');
});

test('the session timeout bounds a session whatever it waits for', BOUNDED, async (t) => {
  const outcome = deferred<Outcome<unknown>>();
  const { server, port } = await startServer(t, () => async (s) => outcome.resolve(await settle(s.exec('SendFAX', 'x', { timeoutMs: 60_000 }))), {
    sessionTimeoutMs: 200,
  });
  const fake = await connectFakeAgi({ port, answers: { 'EXEC SendFAX': 'stall' } });
  await fake.closed;
  assert.deepEqual(await outcome.promise, { ok: false, code: 'AGI_TIMEOUT' });
  await waitFor(() => server.activeSessions === 0, 'the session to end');
});

test('close() lets running sessions finish within the grace period, then destroys the rest', BOUNDED, async (t) => {
  // A session that finishes during the grace period.
  const gate = deferred<void>();
  const finished = deferred<Outcome<unknown>>();
  const stuck = deferred<Outcome<unknown>>();
  const reached = deferred<void>();
  const { server, port } = await startServer(
    t,
    (script) =>
      script === 'polite'
        ? async (s) => {
            reached.resolve();
            await gate.promise;
            finished.resolve(await settle(s.getVariable('X')));
          }
        : async (s) => stuck.resolve(await settle(s.getVariable('STUCK'))),
    { closeGraceMs: 1_000, commandTimeoutMs: 60_000 },
  );
  const polite = await connectFakeAgi({ port, script: 'polite', answers: { 'GET VARIABLE X': ['200 result=1 (done)'] } });
  const stalled = await connectFakeAgi({ port, script: 'stalled', answers: { 'GET VARIABLE STUCK': 'stall' } });
  const silent = await connectFakeAgi({ port, environment: false });
  await reached.promise;
  await stalled.waitForCommands(1);
  const closing = server.close();
  gate.resolve();
  await closing;
  assert.deepEqual(await finished.promise, { ok: true, value: 'done' });
  assert.deepEqual(await stuck.promise, { ok: false, code: 'AGI_CLOSED' });
  await Promise.all([polite.closed, stalled.closed, silent.closed]);
  assert.equal(server.activeSessions, 0);
  await server.close(); // twice is fine
  const refused = net.connect({ host: '127.0.0.1', port });
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});
