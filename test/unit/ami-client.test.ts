import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { AmiClient, AmiError, backoffDelay, type AmiClientOptions } from '../../src/asterisk/ami/client.js';
import type { AmiMessage } from '../../src/asterisk/ami/framing.js';
import { SmsRouterError } from '../../src/errors.js';
import { DB_TEXT, FakeAmiServer, GREETING, loadAmiTranscript, TEXT } from '../fakes/ami-server.js';
import { AmiParser } from '../../src/asterisk/ami/framing.js';

const SECRET = 'S3cr3t-must-never-be-logged';

interface LogLine {
  level: string;
  obj: object;
  msg: string;
}

function captureLogger() {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj, msg });
  return { lines, logger: { info: at('info'), warn: at('warn'), debug: at('debug') } };
}

async function setup(t: TestContext, options: Partial<AmiClientOptions> = {}) {
  const fake = await FakeAmiServer.start();
  fake.secret = SECRET;
  const log = captureLogger();
  const client = new AmiClient({
    host: fake.host,
    port: fake.port,
    username: fake.username,
    secret: SECRET,
    logger: log.logger,
    backoff: { initialMs: 10, maxMs: 40, factor: 2, jitter: 0 },
    ...options,
  });
  t.after(async () => {
    await client.stop();
    await fake.close();
  });
  return { fake, client, log };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<SmsRouterError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof SmsRouterError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** The next 'disconnected' error; fails (does not hang) if none comes within `timeoutMs`. */
function nextDisconnect(client: AmiClient, timeoutMs = 10_000): Promise<AmiError> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('disconnected', on);
      reject(new Error(`no 'disconnected' within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (err: AmiError) => {
      clearTimeout(timer);
      resolve(err);
    };
    client.once('disconnected', on);
  });
}

/** Collects the arguments of the next `n` emissions of `name`. */
function collect<T>(emitter: AmiClient, name: 'event' | 'loginFailed' | 'backoff' | 'state', n: number, timeoutMs = 5_000): Promise<T[]> {
  const seen: T[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, on);
      reject(new Error(`only ${seen.length} of ${n} '${name}' emissions`));
    }, timeoutMs);
    const on = (value: unknown) => {
      seen.push(value as T);
      if (seen.length < n) return;
      clearTimeout(timer);
      emitter.off(name, on);
      resolve(seen);
    };
    emitter.on(name, on);
  });
}

test('action() before login rejects at once with AMI_NOT_CONNECTED; login sends Events: off', async (t) => {
  const { fake, client } = await setup(t);
  await rejectsWith(client.action('Ping'), 'AMI_NOT_CONNECTED');
  await rejectsWith(client.waitConnected(), 'AMI_NOT_CONNECTED');
  client.start();
  await client.waitConnected(5_000);
  assert.equal(client.state, 'connected');
  const [login, ...more] = fake.actionsNamed('Login');
  assert.equal(more.length, 0);
  assert.equal(login?.message.get('Events'), 'off');
  assert.equal(login?.message.get('Username'), 'labami');
  assert.ok(login?.actionId, 'login carries an ActionID');
  assert.match(fake.receivedBytes().toString('utf8'), /^Action: Login\r\n(?:[A-Za-z]+: [^\r\n]*\r\n)*Events: off\r\n(?:[A-Za-z]+: [^\r\n]*\r\n)*\r\n$/);
  assert.equal(client.reconnects, 0);
  const pong = await client.action('Ping');
  assert.equal(pong.get('Ping'), 'Pong');

  // And `events: true` asks for them.
  const other = new AmiClient({ host: fake.host, port: fake.port, username: fake.username, secret: SECRET, events: true });
  t.after(() => other.stop());
  other.start();
  await other.waitConnected(5_000);
  assert.equal(fake.actionsNamed('Login').at(-1)?.message.get('Events'), 'on');
});

test('MessageSend answers come back as resolved values with the recorded texts', async (t) => {
  const { fake, client } = await setup(t);
  fake.messageSendErrors.set('sip:nosuchpeer', TEXT.failed);
  client.start();
  await client.waitConnected(5_000);
  const send = (fields: Record<string, string>) => client.action('MessageSend', { From: 'sip:labami@127.0.0.1', Body: 'hi', ...fields });
  const ok = await send({ To: 'sip:msgpeer' });
  assert.deepEqual([ok.get('Response'), ok.get('Message')], ['Success', TEXT.sent]);
  for (const [fields, text] of [
    [{ To: 'sip:nosuchpeer' }, TEXT.failed],
    [{ To: 'bogus:someone' }, TEXT.noTech],
    [{}, TEXT.noTo],
  ] as const) {
    const r = await send(fields);
    assert.deepEqual([r.get('Response'), r.get('Message')], ['Error', text]);
  }
  assert.deepEqual(
    fake.delivered.map((d) => [d.to, d.body]),
    [['sip:msgpeer', 'hi']],
  );
});

test('200 concurrent actions each get their own response, answered out of order with events between', async (t) => {
  const { fake, client } = await setup(t);
  fake.reply = (a) => (a.name === 'Ping' ? [['Response', 'Success'], ['Ping', 'Pong'], ['Echo', a.message.get('Echo') ?? '']] : undefined);
  client.start();
  await client.waitConnected(5_000);
  fake.chunking = { mode: 'batch', count: 50, reverse: true };
  fake.interleaveEvents = 1;
  const events = collect<AmiMessage>(client, 'event', 200);
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => client.action('Ping', { Echo: `n${i}` })));
  results.forEach((r, i) => assert.equal(r.get('Echo'), `n${i}`));
  const seen = await events;
  assert.ok(seen.every((e) => e.get('Event') === 'FakeTick'), 'events (even with an ActionID) are never taken for responses');
  const ids = new Set(fake.actionsNamed('Ping').map((a) => a.actionId));
  assert.equal(ids.size, 200, 'every action had its own ActionID');
});

test('responses split at any byte, or one byte per write, reach the client intact', async (t) => {
  const { fake, client } = await setup(t);
  client.start();
  await client.waitConnected(5_000);
  for (const chunking of [{ mode: 'bytes' }, { mode: 'split', at: [1, 16, 17, 18, 30] }] as const) {
    fake.chunking = chunking;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.action('MessageSend', { To: i % 2 ? 'sip:a' : 'bogus:b', Body: `b${i}` })));
    results.forEach((r, i) => assert.equal(r.get('Message'), i % 2 ? TEXT.sent : TEXT.noTech));
  }
});

test('the server dies with 100 MessageSends pending: all reject fast, the client reconnects, the resend delivers each once', async (t) => {
  const actionTimeoutMs = 10_000;
  const { fake, client } = await setup(t, { actionTimeoutMs });
  client.start();
  await client.waitConnected(5_000);
  fake.stalled.add('messagesend');
  const bodies = Array.from({ length: 100 }, (_, i) => `body ${i} zażółć`);
  const sends = bodies.map((Body) => client.action('MessageSend', { To: 'sip:msgpeer', Body }));
  await fake.waitFor(() => fake.actionsNamed('MessageSend').length === 100, 5_000, '100 MessageSends');

  const disconnected = once(client, 'disconnected');
  const started = performance.now();
  await fake.stopListening();
  const outcomes = await Promise.allSettled(sends);
  const elapsed = performance.now() - started;
  for (const o of outcomes) {
    assert.equal(o.status, 'rejected');
    assert.ok(o.reason instanceof AmiError);
    assert.equal(o.reason.code, 'AMI_DISCONNECTED');
  }
  assert.ok(elapsed < actionTimeoutMs / 4, `rejected after ${elapsed} ms, not at the action timeout`);
  const [err] = await disconnected;
  assert.equal((err as AmiError).code, 'AMI_DISCONNECTED');
  assert.notEqual(client.state, 'connected');
  await rejectsWith(client.action('Ping'), 'AMI_NOT_CONNECTED');
  assert.equal(fake.delivered.length, 0);

  // The PBX comes back on the same port: the client finds it by itself.
  fake.stalled.clear();
  const connected = once(client, 'connected');
  await fake.listen();
  await connected;
  assert.equal(client.reconnects, 1);
  const resent = await Promise.all(bodies.map((Body) => client.action('MessageSend', { To: 'sip:msgpeer', Body })));
  assert.ok(resent.every((r) => r.get('Message') === TEXT.sent));
  const counts = new Map<string, number>();
  for (const d of fake.delivered) counts.set(d.body, (counts.get(d.body) ?? 0) + 1);
  assert.equal(counts.size, 100);
  for (const body of bodies) assert.equal(counts.get(body), 1, body);
});

test('the connection drops mid-action: the PBX got it, the caller learns AMI_DISCONNECTED at once', async (t) => {
  const { fake, client } = await setup(t);
  client.start();
  await client.waitConnected(5_000);
  fake.dropAfter(3);
  const send = (i: number) => client.action('MessageSend', { To: 'sip:msgpeer', Body: `m${i}` });
  assert.equal((await send(1)).get('Message'), TEXT.sent);
  assert.equal((await send(2)).get('Message'), TEXT.sent);
  await rejectsWith(send(3), 'AMI_DISCONNECTED');
  assert.deepEqual(
    fake.actionsNamed('MessageSend').map((a) => a.message.get('Body')),
    ['m1', 'm2', 'm3'],
    'the third did reach the PBX: its outcome is unknown, not "not sent"',
  );
  assert.deepEqual(
    fake.delivered.map((d) => d.body),
    ['m1', 'm2'],
  );
  await client.waitConnected(5_000);
  assert.equal(client.reconnects, 1);
});

test('a stalled action times out with AMI_TIMEOUT and its late response is ignored', async (t) => {
  const { fake, client } = await setup(t);
  client.start();
  await client.waitConnected(5_000);
  const events: AmiMessage[] = [];
  client.on('event', (e) => events.push(e));
  fake.stalled.add('ping');
  const started = performance.now();
  const err = await rejectsWith(client.action('Ping', {}, { timeoutMs: 50 }), 'AMI_TIMEOUT');
  assert.ok(performance.now() - started >= 45);
  assert.match(err.message, /Ping/);
  fake.stalled.clear();
  fake.answerStalled(); // the late answer arrives before the next one on the same connection
  const next = await client.action('Ping');
  assert.notEqual(next.get('ActionID'), fake.actionsNamed('Ping')[0]?.actionId);
  assert.equal(events.length, 0, 'a late response is not an event');
  assert.equal(client.state, 'connected');
});

test('backoff grows by the factor, is capped, and jitter stays within bounds', () => {
  const b = { initialMs: 100, maxMs: 1_000, factor: 2, jitter: 0 };
  assert.deepEqual(
    Array.from({ length: 7 }, (_, n) => backoffDelay(n, b)),
    [100, 200, 400, 800, 1_000, 1_000, 1_000],
  );
  assert.equal(backoffDelay(10_000, b), 1_000, 'no overflow');
  const j = { ...b, jitter: 0.2 };
  for (let n = 0; n < 8; n++) {
    const base = Math.min(1_000, 100 * 2 ** n);
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const d = backoffDelay(n, j, () => r);
      assert.ok(d >= Math.floor(base * 0.8) && d <= Math.min(1_000, Math.ceil(base * 1.2)), `${n}/${r}: ${d}`);
    }
  }
  assert.equal(backoffDelay(0, {}, () => 0.5), 250, 'default initial 250 ms');
  assert.equal(backoffDelay(50, {}, () => 0.5), 30_000, 'default cap 30 s');
});

test('while the PBX is down reconnect attempts back off up to the cap, and reset after a login', async (t) => {
  const { fake, client } = await setup(t, { backoff: { initialMs: 5, maxMs: 40, factor: 2, jitter: 0 } });
  await fake.stopListening();
  const delays = collect<{ attempt: number; delayMs: number }>(client, 'backoff', 6);
  client.start();
  assert.deepEqual(
    (await delays).map((d) => [d.attempt, d.delayMs]),
    [
      [1, 5],
      [2, 10],
      [3, 20],
      [4, 40],
      [5, 40],
      [6, 40],
    ],
  );
  const connected = once(client, 'connected');
  await fake.listen();
  await connected;
  const after = collect<{ attempt: number; delayMs: number }>(client, 'backoff', 1);
  fake.dropConnections();
  assert.deepEqual(await after, [{ attempt: 1, delayMs: 5 }], 'a successful login resets the backoff');
  await client.waitConnected(5_000);
  assert.equal(client.reconnects, 1);
});

test('a wrong secret emits loginFailed and retries with growing backoff, not in a tight loop', async (t) => {
  const { fake, client } = await setup(t, { backoff: { initialMs: 20, maxMs: 80, factor: 2, jitter: 0 } });
  fake.secret = 'the-right-one';
  const failures = collect<AmiError>(client, 'loginFailed', 4);
  const delays = collect<{ delayMs: number }>(client, 'backoff', 4);
  client.start();
  for (const err of await failures) {
    assert.equal(err.code, 'AMI_LOGIN_FAILED');
    assert.match(err.message, new RegExp(TEXT.authFailed));
  }
  const planned = (await delays).map((d) => d.delayMs);
  assert.deepEqual(planned, [20, 40, 80, 80]);
  await fake.waitFor(() => fake.connections.length >= 4, 5_000, 'four login attempts');
  const opened = fake.connections.map((c) => c.openedAt);
  for (let i = 1; i < 4; i++) {
    // The gap covers the planned delay (timers never fire early by more than clock rounding).
    assert.ok(opened[i]! - opened[i - 1]! >= planned[i - 1]! - 2, `gap ${i}: ${opened[i]! - opened[i - 1]!} ms < ${planned[i - 1]} ms`);
  }
  assert.notEqual(client.state, 'connected');
  // Fix the PBX side: the client gets in by itself.
  fake.secret = SECRET;
  await client.waitConnected(5_000);
});

test('stop() sends Logoff, fails what is in flight, and nothing reconnects afterwards', async (t) => {
  const { fake, client } = await setup(t, { backoff: { initialMs: 5, maxMs: 10, factor: 2, jitter: 0 } });
  client.start();
  await client.waitConnected(5_000);
  fake.stalled.add('messagesend');
  const inFlight = client.action('MessageSend', { To: 'sip:msgpeer', Body: 'x' });
  await fake.waitFor(() => fake.actionsNamed('MessageSend').length === 1);
  const disconnected = once(client, 'disconnected');
  await Promise.all([client.stop(), client.stop()]);
  await rejectsWith(inFlight, 'AMI_DISCONNECTED');
  await disconnected;
  assert.equal(client.state, 'stopped');
  assert.equal(fake.actionsNamed('Logoff').length, 1);
  await fake.waitFor(() => fake.openConnections === 0, 5_000, 'connection closed');
  await rejectsWith(client.action('Ping'), 'AMI_NOT_CONNECTED');
  await rejectsWith(client.waitConnected(100), 'AMI_NOT_CONNECTED');
  const connections = fake.connections.length;
  const states: string[] = [];
  client.on('state', (s) => states.push(s));
  // Several full backoff periods (10 ms cap): a reconnect would have happened by now.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(fake.connections.length, connections);
  assert.deepEqual(states, []);
  await client.stop(); // idempotent once stopped
});

test('a value with CR/LF never reaches the socket, and a caller cannot set the ActionID', async (t) => {
  const { fake, client } = await setup(t);
  client.start();
  await client.waitConnected(5_000);
  const before = fake.receivedBytes().length;
  await rejectsWith(client.action('MessageSend', { To: 'sip:msgpeer', Body: 'hi\r\nAction: Originate\r\nChannel: Local/1@x' }), 'AMI_UNSAFE_VALUE');
  await rejectsWith(client.action('MessageSend', { 'To\r\nAction: Originate\r\nX': 'y' }), 'AMI_UNSAFE_VALUE');
  await rejectsWith(client.action('Originate\r\nChannel: x', {}), 'AMI_UNSAFE_VALUE');
  await rejectsWith(client.action('MessageSend', { To: 'sip:a', Body: 'nul\u0000here' }), 'AMI_UNSAFE_VALUE');
  await rejectsWith(client.action('Ping', { ActionID: 'mine' }), 'AMI_UNSAFE_VALUE');
  // Refused as unsafe even when not connected: it is permanent, retrying cannot help.
  const idle = new AmiClient({ host: fake.host, port: fake.port, username: 'u', secret: 's' });
  await rejectsWith(idle.action('MessageSend', { Body: 'a\nb' }), 'AMI_UNSAFE_VALUE');
  await rejectsWith(idle.action('MessageSend', { Body: 'a b' }), 'AMI_NOT_CONNECTED');
  await client.action('Ping'); // flushes: anything written before it has arrived
  const written = fake.receivedBytes().subarray(before).toString('utf8');
  assert.equal(fake.actionsNamed('MessageSend').length, 0);
  assert.doesNotMatch(written, /Originate|nul/);
  assert.match(written, /^Action: Ping\r\nActionID: [^\r\n]+\r\n\r\n$/);
  assert.throws(() => new AmiClient({ host: fake.host, port: fake.port, username: 'u', secret: 'x\r\nEvents: on' }), /AMI_UNSAFE_VALUE|framing/);
});

test('hostile framing from the server is skipped without crashing or disconnecting', async (t) => {
  const { fake, client, log } = await setup(t);
  client.start();
  await client.waitConnected(5_000);
  const events: AmiMessage[] = [];
  client.on('event', (e) => events.push(e));
  const disconnected: unknown[] = [];
  client.on('disconnected', (e) => disconnected.push(e));
  fake.sendHostile();
  fake.sendEvent([['Event', 'AfterTheStorm']]);
  await new Promise<void>((resolve) => client.on('event', (e) => e.get('Event') === 'AfterTheStorm' && resolve()));
  assert.deepEqual(
    events.map((e) => e.get('Event')),
    ['AfterTheStorm'],
    'the huge event is dropped, garbage is not an event',
  );
  assert.equal((await client.action('Ping')).get('Ping'), 'Pong');
  assert.equal(client.state, 'connected');
  assert.deepEqual(disconnected, []);
  assert.equal(log.lines.filter((l) => l.level === 'warn' && /skipped/.test(l.msg)).length, 1, 'warned once, not per line');
});

test('a server that does not greet, or greets as something else, is treated as down', async (t) => {
  const { fake, client } = await setup(t, { connectTimeoutMs: 50 });
  fake.greeting = null;
  client.start();
  await fake.waitFor(() => fake.connections.length >= 2 && fake.connections[0]!.closedAt !== undefined, 5_000, 'silent server dropped and retried');
  assert.equal(fake.actions.length, 0, 'no login without a greeting');
  fake.greeting = 'SSH-2.0-OpenSSH_9.6';
  const seen = fake.connections.length;
  await fake.waitFor(() => fake.connections.length >= seen + 2, 5_000, 'wrong greeting dropped and retried');
  assert.equal(fake.actions.length, 0, 'no login to a non-AMI server');
  assert.notEqual(client.state, 'connected');
  fake.greeting = GREETING;
  await client.waitConnected(5_000);
});

test('the secret never appears in anything passed to the logger', async (t) => {
  const { fake, client, log } = await setup(t, { actionTimeoutMs: 200 });
  fake.loginAccepted = false;
  const failed = collect<AmiError>(client, 'loginFailed', 2);
  client.start();
  for (const err of await failed) assert.ok(!inspect(err).includes(SECRET));
  fake.loginAccepted = true;
  await client.waitConnected(5_000);
  await rejectsWith(client.action('MessageSend', { To: 'sip:x', Body: `${SECRET}\r\n` }), 'AMI_UNSAFE_VALUE');
  await client.action('MessageSend', { To: 'sip:x', Body: SECRET });
  fake.stalled.add('ping');
  await rejectsWith(client.action('Ping', {}, { timeoutMs: 20 }), 'AMI_TIMEOUT');
  fake.sendHostile(1000);
  fake.dropConnections();
  await once(client, 'connected');
  await client.stop();
  assert.ok(log.lines.length >= 8, 'the scenario did log');
  assert.ok(log.lines.some((l) => l.level === 'debug'));
  for (const line of log.lines) {
    const text = inspect(line, { depth: 20 }) + JSON.stringify(line.obj);
    assert.ok(!text.includes(SECRET), `leaked in ${line.msg}`);
  }
  assert.ok(fake.receivedBytes().includes(`Secret: ${SECRET}\r\n`), 'the secret did go to the PBX, and only there');
});

test('a blackholed connection: the timed-out actions bring one Ping, its silence closes the connection as AMI_UNRESPONSIVE, warned once, and the client reconnects', { timeout: 30_000 }, async (t) => {
  const { fake, client, log } = await setup(t, { actionTimeoutMs: 200, keepaliveMs: 0 });
  client.start();
  await client.waitConnected(5_000);
  const disconnected = nextDisconnect(client);
  fake.blackhole(); // held open, nothing answered: only the client can notice
  const sends = [1, 2, 3].map((i) => client.action('MessageSend', { To: 'sip:msgpeer', Body: `into the void ${i}` }));
  for (const send of sends) await rejectsWith(send, 'AMI_TIMEOUT');

  const err = await disconnected;
  assert.equal(err.code, 'AMI_DISCONNECTED');
  assert.ok(err.cause instanceof AmiError, String(err.cause));
  assert.equal(err.cause.code, 'AMI_UNRESPONSIVE');
  const first = fake.connections[0]!;
  await fake.waitFor(() => first.closedAt !== undefined, 5_000, 'the client closed the blackholed connection');
  assert.equal(fake.actionsNamed('Ping').filter((a) => a.conn === first.id).length, 1, 'three timeouts, one Ping at a time');

  await client.waitConnected(5_000);
  assert.equal(client.reconnects, 1);
  assert.equal((await client.action('MessageSend', { To: 'sip:msgpeer', Body: 'after the reconnect' })).get('Message'), TEXT.sent);
  assert.deepEqual(
    fake.delivered.map((d) => [d.conn, d.body]),
    [[2, 'after the reconnect']],
  );
  const warnings = log.lines.filter((l) => l.level === 'warn');
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0]!.msg, /unresponsive/);
  assert.equal((warnings[0]!.obj as { code?: string }).code, 'AMI_UNRESPONSIVE');
});

test('a stalled action whose Ping is answered keeps the connection: slow is not dead', { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t, { actionTimeoutMs: 100, keepaliveMs: 0 });
  client.start();
  await client.waitConnected(5_000);
  const disconnects: unknown[] = [];
  client.on('disconnected', (e) => disconnects.push(e));
  fake.stalled.add('messagesend');
  await rejectsWith(client.action('MessageSend', { To: 'sip:msgpeer', Body: 'slow' }), 'AMI_TIMEOUT');
  await fake.waitFor(() => fake.actionsNamed('Ping').length === 1, 5_000, 'the liveness Ping');
  // Longer than the Ping's own timeout: had its answer not counted, the connection would be gone by now.
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(client.state, 'connected');
  assert.deepEqual(disconnects, []);
  assert.equal(fake.connections.length, 1);
  assert.equal(fake.openConnections, 1);
  fake.stalled.clear();
  assert.equal((await client.action('MessageSend', { To: 'sip:msgpeer', Body: 'fast again' })).get('Message'), TEXT.sent);
  assert.equal(client.reconnects, 0);
});

test('an idle connection is pinged every keepalive interval without disturbing actions, events or the connection', { timeout: 30_000 }, async (t) => {
  const { fake, client, log } = await setup(t, { keepaliveMs: 40, actionTimeoutMs: 2_000 });
  client.start();
  await client.waitConnected(5_000);
  const events: AmiMessage[] = [];
  client.on('event', (e) => events.push(e));
  await fake.waitFor(() => fake.actionsNamed('Ping').length >= 3, 10_000, 'three idle Pings');
  // Actions and events alongside the keepalive.
  const bodies = Array.from({ length: 20 }, (_, i) => `alongside ${i}`);
  const results = await Promise.all(bodies.map((Body) => client.action('MessageSend', { To: 'sip:msgpeer', Body })));
  assert.ok(results.every((r) => r.get('Message') === TEXT.sent));
  fake.sendEvent([['Event', 'StillHere']]);
  const pings = fake.actionsNamed('Ping').length;
  await fake.waitFor(() => fake.actionsNamed('Ping').length >= pings + 3, 10_000, 'more idle Pings');
  assert.deepEqual(
    fake.delivered.map((d) => d.body),
    bodies,
  );
  assert.deepEqual(
    events.map((e) => e.get('Event')),
    ['StillHere'],
    'a Pong is never taken for an event',
  );
  assert.equal(fake.connections.length, 1);
  assert.equal(client.state, 'connected');
  assert.equal(client.reconnects, 0);
  assert.deepEqual(
    log.lines.filter((l) => l.level === 'warn'),
    [],
  );
});

test('an idle blackholed connection is found by the keepalive Ping alone; stop() during a Ping leaves nothing behind', { timeout: 30_000 }, async (t) => {
  const { fake, client } = await setup(t, { keepaliveMs: 50, actionTimeoutMs: 200 });
  client.start();
  await client.waitConnected(5_000);
  const disconnected = nextDisconnect(client);
  fake.blackhole();
  const err = await disconnected;
  assert.equal((err.cause as AmiError).code, 'AMI_UNRESPONSIVE');
  await client.waitConnected(5_000);
  assert.equal(client.reconnects, 1);

  // Blackholed again, and stopped while its Ping is in flight.
  fake.blackhole();
  const second = fake.connections[1]!;
  await fake.waitFor(() => fake.actionsNamed('Ping').some((a) => a.conn === second.id), 5_000, 'a Ping on the second connection');
  await client.stop();
  assert.equal(client.state, 'stopped');
  await fake.waitFor(() => fake.openConnections === 0, 5_000, 'closed by stop()');
  const connections = fake.connections.length;
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(fake.connections.length, connections, 'no reconnect after stop()');
});

// ─── response lists and AstDB (DBGet, DBDel) ─────────────────────────────────

/** setup(), with the client logged in. */
async function connected(t: TestContext, options: Partial<AmiClientOptions> = {}) {
  const s = await setup(t, options);
  s.client.start();
  await s.client.waitConnected(5_000);
  return s;
}

test('DBGet is a response list: the value comes from its DBGetResponse, intact (colons, spaces), and the list is never emitted as events', async (t) => {
  const { fake, client } = await connected(t);
  const events: AmiMessage[] = [];
  client.on('event', (e) => events.push(e));
  fake.astdb.set('sms-router/smsr-F-12-a1', 'SUCCESS:2::HANGUP');
  fake.astdb.set('sms-router/smsr-F-13-a1', 'FAILED:0::The call dropped prematurely');
  assert.equal(await client.dbGet('sms-router', 'smsr-F-12-a1'), 'SUCCESS:2::HANGUP');
  assert.equal(await client.dbGet('sms-router', 'smsr-F-13-a1'), 'FAILED:0::The call dropped prematurely');
  const list = await client.actionList('DBGet', { Family: 'sms-router', Key: 'smsr-F-12-a1' });
  assert.deepEqual(
    [list.response.get('Response'), list.response.get('EventList'), list.response.get('Message')],
    ['Success', 'start', DB_TEXT.follows],
  );
  assert.deepEqual(list.events.map((e) => e.get('Event')), ['DBGetResponse', 'DBGetComplete']);
  assert.ok(list.events.every((e) => e.get('ActionID') === list.response.get('ActionID')));
  assert.equal(events.length, 0, 'list events belong to their action, not to the event stream');
  // The same, one byte per write, with foreign events (carrying the ActionID, before the response) in between.
  fake.chunking = { mode: 'bytes' };
  fake.interleaveEvents = 2;
  assert.equal(await client.dbGet('sms-router', 'smsr-F-12-a1'), 'SUCCESS:2::HANGUP');
  assert.equal(events.length, 2, 'the events before the response are still events');
});

test('many DBGets at once, their lists packed together into a few chunks, each get their own value', async (t) => {
  const { fake, client } = await connected(t);
  for (let i = 0; i < 60; i++) fake.astdb.set(`f/k${i}`, `v${i}`);
  // Each DBGet writes three messages; a chunk ends anywhere among them (a list's own order is Asterisk's: one session writes it in order).
  fake.chunking = { mode: 'batch', count: 5 }; // 180 messages: 36 chunks, most lists cut across two
  const got = await Promise.all(Array.from({ length: 60 }, (_, i) => client.dbGet('f', `k${i}`)));
  assert.deepEqual(got, Array.from({ length: 60 }, (_, i) => `v${i}`));
});

test('DBGet of a missing key is undefined; DBDel deletes (true) and then finds nothing (false)', async (t) => {
  const { fake, client } = await connected(t);
  assert.equal(await client.dbGet('sms-router', 'nothing-here'), undefined);
  const missing = await client.actionList('DBGet', { Family: 'sms-router', Key: 'nothing-here' });
  assert.deepEqual([missing.response.get('Response'), missing.response.get('Message'), missing.events.length], ['Error', DB_TEXT.notFound, 0]);
  fake.astdb.set('sms-router/smsr-V-3-a2', '::SUCCESS:');
  assert.equal(await client.dbDel('sms-router', 'smsr-V-3-a2'), true);
  assert.equal(fake.astdb.size, 0);
  assert.equal(await client.dbDel('sms-router', 'smsr-V-3-a2'), false);
  assert.equal(await client.dbGet('sms-router', 'smsr-V-3-a2'), undefined);
});

test('DBGet and DBDel refused by Asterisk (no write class) reject AMI_ACTION_FAILED with its reason; a list that names another key is AMI_PROTOCOL', async (t) => {
  const { fake, client } = await connected(t);
  fake.astdb.set('f/k', 'v');
  fake.denied.add('dbget').add('dbdel');
  const get = await rejectsWith(client.dbGet('f', 'k'), 'AMI_ACTION_FAILED');
  assert.match(get.message, /DBGet refused: Permission denied/);
  await rejectsWith(client.dbDel('f', 'k'), 'AMI_ACTION_FAILED');
  assert.equal(fake.astdb.get('f/k'), 'v');
  fake.denied.clear();
  fake.reply = (a) => {
    if (a.name !== 'DBGet') return undefined;
    // Answered for another key: never taken for the value asked for.
    fake.sendRaw(`Response: Success\r\nActionID: ${a.actionId}\r\nEventList: start\r\nMessage: Result will follow\r\n\r\n`);
    fake.sendRaw(`Event: DBGetResponse\r\nFamily: f\r\nKey: other\r\nVal: x\r\nActionID: ${a.actionId}\r\n\r\n`);
    fake.sendRaw(`Event: DBGetComplete\r\nActionID: ${a.actionId}\r\nEventList: Complete\r\nListItems: 1\r\n\r\n`);
    return 'stall';
  };
  await rejectsWith(client.dbGet('f', 'k'), 'AMI_PROTOCOL');
  assert.equal(client.state, 'connected');
});

test('DBGet while AMI is down rejects AMI_NOT_CONNECTED; a connection lost inside the list rejects AMI_DISCONNECTED at once', async (t) => {
  const { fake, client } = await setup(t, { actionTimeoutMs: 10_000 });
  await rejectsWith(client.dbGet('f', 'k'), 'AMI_NOT_CONNECTED');
  client.start();
  await client.waitConnected(5_000);
  fake.astdb.set('f/k', 'v');
  // The response and the first event arrive, then the PBX dies before DBGetComplete.
  fake.reply = (a) => {
    if (a.name !== 'DBGet') return undefined;
    fake.sendRaw(`Response: Success\r\nActionID: ${a.actionId}\r\nEventList: start\r\nMessage: Result will follow\r\n\r\n`);
    fake.sendRaw(`Event: DBGetResponse\r\nFamily: f\r\nKey: k\r\nVal: v\r\nActionID: ${a.actionId}\r\n\r\n`);
    return 'drop';
  };
  const started = performance.now();
  await rejectsWith(client.dbGet('f', 'k'), 'AMI_DISCONNECTED');
  assert.ok(performance.now() - started < 2_500, 'not at the action timeout');
  await rejectsWith(client.dbDel('f', 'k'), 'AMI_NOT_CONNECTED');
});

test('a list that never completes times out with AMI_TIMEOUT (the timeout covers the whole list); its late end is dropped', async (t) => {
  const { fake, client } = await connected(t);
  let late: (() => void) | undefined;
  fake.reply = (a) => {
    if (a.name !== 'DBGet') return undefined;
    late = () => fake.sendRaw(`Event: DBGetComplete\r\nActionID: ${a.actionId}\r\nEventList: Complete\r\nListItems: 1\r\n\r\n`);
    return [['Response', 'Success'], ['EventList', 'start'], ['Message', DB_TEXT.follows]];
  };
  const err = await rejectsWith(client.dbGet('f', 'k', { timeoutMs: 80 }), 'AMI_TIMEOUT');
  assert.match(err.message, /DBGet/);
  const events: AmiMessage[] = [];
  client.on('event', (e) => events.push(e));
  late!();
  fake.reply = undefined;
  fake.astdb.set('f/k', 'v');
  assert.equal(await client.dbGet('f', 'k'), 'v', 'the next DBGet is not confused by the late end of the last one');
  assert.deepEqual(events.map((e) => e.get('Event')), ['DBGetComplete'], 'a late list end is only an event');
  assert.equal(client.state, 'connected');
});

// ─── the recorded DBPut / DBGet / DBDel session of a real Asterisk 20 ────────

const DB_TRANSCRIPT = loadAmiTranscript('ami_dbget_transcript.txt');

/** Resolves with everything received once at least `n` bytes are there; rejects when the socket closes or 5 s pass first. */
function readBytes(socket: Socket, received: { buf: Buffer }, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (received.buf.length < n) return;
      cleanup();
      const text = received.buf.subarray(0, n).toString('utf8');
      received.buf = received.buf.subarray(n);
      resolve(text);
    };
    const closed = () => {
      cleanup();
      reject(new Error(`closed with ${received.buf.length} of ${n} bytes: ${JSON.stringify(received.buf.toString('utf8'))}`));
    };
    const timer = setTimeout(closed, 5_000);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', check);
      socket.off('close', closed);
    };
    socket.on('data', check);
    socket.on('close', closed);
    check();
  });
}

test('the recorded Asterisk 20 session replayed against the fake AMI gets the same answers byte for byte (DBPut, the DBGet list, DBDel, missing keys)', async (t) => {
  const fake = await FakeAmiServer.start();
  t.after(() => fake.close());
  assert.deepEqual(
    DB_TRANSCRIPT.filter((x) => x.from === 'client').map((x) => /^Action: (\w+)/.exec(x.text)?.[1]),
    ['Login', 'DBPut', 'DBGet', 'DBDel', 'DBGet', 'DBDel', 'Logoff'],
    'the transcript is the session this test is about',
  );
  const socket = connect({ host: fake.host, port: fake.port });
  t.after(() => socket.destroy());
  const received = { buf: Buffer.alloc(0) };
  socket.on('data', (chunk: Buffer) => (received.buf = Buffer.concat([received.buf, chunk])));
  for (const turn of DB_TRANSCRIPT) {
    if (turn.from === 'client') socket.write(turn.text);
    else assert.equal(await readBytes(socket, received, Buffer.byteLength(turn.text)), turn.text);
  }
  await once(socket, 'close'); // after Goodbye, as Asterisk does
  assert.equal(received.buf.length, 0, 'nothing more than the recording');
  assert.equal(fake.astdb.size, 0);
});

test('the client reads the recorded answers of a real Asterisk 20: the value, deleted, then missing for both', async (t) => {
  // A server that answers each action with what Asterisk answered the same action (by name and turn), under the client's ActionID.
  const answers = new Map<string, string[]>();
  let greeting = '';
  DB_TRANSCRIPT.forEach((turn, i) => {
    if (turn.from !== 'server') return;
    const asked = DB_TRANSCRIPT[i - 1];
    if (!asked) {
      greeting = turn.text;
      return;
    }
    const name = /^Action: (\w+)/.exec(asked.text)![1]!;
    const id = /\r\nActionID: ([^\r]*)\r\n/.exec(asked.text)?.[1];
    const answer = id === undefined ? turn.text : turn.text.split(`ActionID: ${id}\r\n`).join('ActionID: {id}\r\n');
    answers.set(name, [...(answers.get(name) ?? []), answer]);
  });
  const server = createServer((socket) => {
    const parser = new AmiParser({ expectGreeting: false });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of parser.push(chunk)) {
        if (frame.type !== 'message') continue;
        const name = frame.message.get('Action')!;
        const reply = answers.get(name)?.shift();
        if (reply) socket.write(reply.split('{id}').join(frame.message.get('ActionID') ?? ''));
        if (name === 'Logoff') socket.end();
      }
    });
    socket.write(greeting);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = new AmiClient({ host: '127.0.0.1', port: (server.address() as { port: number }).port, username: 'labami', secret: 'labsecret123' });
  t.after(() => client.stop());
  client.start();
  await client.waitConnected(5_000);
  assert.equal(await client.dbGet('sms-router', 'smsr-F-12-a1'), 'SUCCESS:2::HANGUP');
  assert.equal(await client.dbDel('sms-router', 'smsr-F-12-a1'), true);
  assert.equal(await client.dbGet('sms-router', 'smsr-F-12-a1'), undefined);
  assert.equal(await client.dbDel('sms-router', 'smsr-F-12-a1'), false);
});
