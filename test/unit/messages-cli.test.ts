import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/journal/store.js';
import { Journal, MESSAGE_STATES, contentHash, newMessage, type MessageRow, type MessageState, type NewMessage } from '../../src/journal/journal.js';
import { CANCELLED_ERROR, parseSince, runMessagesCommand, type CliIo } from '../../src/cli/messages.js';

const SECRET = 'PIN 4711 for the side door';
const LONG_TEXT = 'Line one\nline\ttwo\u001b[31m and a long tail that goes well past forty characters';

/** Temp directories made by the tests, removed when the file is done. */
const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smsr-msg-'));
  tempDirs.push(dir);
  return dir;
}

let serial = 0;
function message(over: Partial<NewMessage> = {}): NewMessage {
  serial++;
  const text = over.text ?? `text ${serial}`;
  return newMessage({
    kind: 'message',
    source: 'test',
    sourceName: `file-${serial}`,
    contentHash: contentHash(`${serial}:${text}`),
    oa: '2002',
    da: '2001',
    text,
    ...over,
  });
}

interface Fixture {
  /** The id of one row in each state (plus a few extra for the filters). */
  ids: Record<MessageState, number>;
  /** A received message whose parent is ids.bounced: a notice to its sender. */
  notice: number;
  /** A pending message with a long multi-line text. */
  long: number;
  /** An old message (received three days ago) from 3003 to 4004. */
  old: number;
  /** Calls of ids.delivered: one done with a status, one still pending. */
  calls: { done: string; pending: string };
}

/**
 * A temp journal with every state present, an io that records output, and an
 * opener that records the --config it was given and counts opens and closes.
 */
function harness() {
  const tmp = tempDir();
  const dbFile = path.join(tmp, 'journal.db');
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (s) => out.push(s), stderr: (s) => err.push(s) };
  const configs: (string | undefined)[] = [];
  let closes = 0;
  const open = (configPath: string | undefined) => {
    configs.push(configPath);
    const db = openDatabase(dbFile);
    return {
      db,
      close: () => {
        closes++;
        db.close();
      },
    };
  };
  const withDb = <T>(fn: (db: Db, journal: Journal) => T): T => {
    const db = openDatabase(dbFile);
    try {
      return fn(db, new Journal(db));
    } finally {
      db.close();
    }
  };

  const fixture: Fixture = withDb((db, journal) => {
    const add = (over: Partial<NewMessage>, state: MessageState, extra: Partial<Parameters<Journal['update']>[1]> = {}) => {
      const [r] = journal.recordReceived([message(over)]);
      if (state !== 'received' || Object.keys(extra).length > 0) journal.update(r!.id, { state, ...extra });
      return r!.id;
    };
    const old = add({ oa: '3003', da: '4004', text: 'from long ago' }, 'delivered', { route: 'S' });
    const ids = {
      received: add({ text: 'just arrived' }, 'received'),
      pending: add({ text: 'waiting for AMI' }, 'pending', { route: 'T', attempts: 2, nextAttemptAt: '2099-01-01T00:00:00.000Z', lastError: 'AMI not connected' }),
      spooled: add({ da: '2005', text: 'in the outgoing queue' }, 'spooled', { route: 'S', channel: 'DAHDI/5', attempts: 1 }),
      delivered: add({ da: '2007', text: 'faxed fine' }, 'delivered', { route: 'F', channel: 'PJSIP/2007', attempts: 2 }),
      failed: add({ oa: '2003', text: SECRET }, 'failed', { route: 'V', attempts: 3, lastError: 'PLAYBACKSTATUS FAILED' }),
      bounced: add({ da: '9999', text: 'Anyone?' }, 'bounced', { route: 'N', attempts: 1, lastError: 'number does not exist' }),
    } satisfies Record<MessageState, number>;
    journal.setRouteDetail(ids.delivered, { concatRef: 7, pages: 2 });
    db.prepare(`UPDATE messages SET detail = 'not json {' WHERE id = ?`).run(ids.failed);
    db.prepare(`UPDATE messages SET srr = 1 WHERE id = ?`).run(ids.delivered);
    const notice = add(
      { kind: 'notice', parentId: ids.bounced, oa: '1000', da: '2002', text: 'Cannot deliver SMS to 9999. Number does not exist.' },
      'received',
    );
    const long = add({ text: LONG_TEXT }, 'pending', { route: 'S' });
    // Three days ago, in the journal's own time format.
    db.prepare(`UPDATE messages SET received_at = ?, updated_at = ? WHERE id = ?`).run(
      new Date(Date.now() - 3 * 86_400_000).toISOString(),
      new Date(Date.now() - 3 * 86_400_000).toISOString(),
      old,
    );
    const first = journal.addCall({ service: 'F', queue: '2007', channel: 'PJSIP/2007', messageId: ids.delivered, attempt: 1 }, (id) => `smsr-F-2007-${id}.call`);
    journal.finishCallRow(first.id, 'FAILED');
    const second = journal.addCall({ service: 'F', queue: '2007', channel: 'PJSIP/2007', messageId: ids.delivered, attempt: 2 }, (id) => `smsr-F-2007-${id}.call`);
    journal.finishCallRow(second.id, 'SUCCESS');
    const third = journal.addCall({ service: 'F', queue: '2007', channel: 'PJSIP/2007', messageId: ids.delivered, attempt: 3 }, (id) => `smsr-F-2007-${id}.call`);
    // An unrelated call that must not show up under the message.
    journal.addCall({ service: 'S', queue: '2005', channel: 'DAHDI/5', messageId: ids.spooled, attempt: 1 }, (id) => `smsr-S-2005-${id}.call`);
    return { ids, notice, long, old, calls: { done: second.fileName, pending: third.fileName } };
  });

  const run = async (...args: string[]) => {
    out.length = 0;
    err.length = 0;
    return runMessagesCommand(args, io, open);
  };
  const row = (id: number): MessageRow => withDb((_db, journal) => journal.get(id)!);
  return {
    run,
    row,
    withDb,
    fixture,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    configs,
    opens: () => configs.length,
    closes: () => closes,
  };
}

/** Table rows after the header, split on runs of two or more spaces. */
function tableRows(stdout: string): { header: string[]; rows: string[][] } {
  const lines = stdout.split('\n').filter((l) => l !== '');
  const [head, ...body] = lines;
  return { header: head!.split(/\s{2,}/), rows: body.map((l) => l.split(/\s{2,}/)) };
}

function idsOf(stdout: string): number[] {
  return tableRows(stdout).rows.map((r) => Number(r[0]));
}

function assertOneErrorLine(stderr: string, pattern: RegExp) {
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /^sms-router messages: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

test('list: an aligned table with a header, every row, newest first, each state present', async () => {
  const h = harness();
  assert.equal(await h.run('list'), 0);
  const { header, rows } = tableRows(h.stdout());
  assert.deepEqual(header, ['ID', 'STATE', 'ROUTE', 'FROM', 'TO', 'ATTEMPTS', 'UPDATED', 'TEXT']);
  const all = h.withDb((db) => (db.prepare('SELECT id FROM messages ORDER BY id DESC').all() as Array<{ id: number }>).map((r) => r.id));
  assert.deepEqual(idsOf(h.stdout()), all);
  const states = new Set(rows.map((r) => r[1]));
  for (const s of MESSAGE_STATES) assert.ok(states.has(s), `state ${s} listed`);

  // Aligned: every column starts at the same offset in every line.
  const lines = h.stdout().split('\n').filter((l) => l !== '');
  const stateAt = lines[0]!.indexOf('STATE');
  const updatedAt = lines[0]!.indexOf('UPDATED');
  for (const l of lines.slice(1)) {
    assert.match(l.slice(stateAt), /^(received|pending|spooled|delivered|failed|bounced)\b/);
    assert.match(l.slice(updatedAt), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/);
  }

  const failed = rows.find((r) => Number(r[0]) === h.fixture.ids.failed)!;
  const f = h.row(h.fixture.ids.failed);
  assert.deepEqual(failed.slice(0, 6), ['' + f.id, 'failed', 'V', '2003', '2001', '3']);
  assert.equal(failed[7], SECRET);
  // No route yet: a dash, not an empty cell that would shift the columns.
  assert.equal(rows.find((r) => Number(r[0]) === h.fixture.ids.received)![2], '-');
  assert.equal(h.stderr(), '');
  assert.equal(h.opens(), 1);
  assert.equal(h.closes(), 1);
});

test('list: the text column is the first 40 characters with control characters as spaces', async () => {
  const h = harness();
  assert.equal(await h.run('list', '--state', 'pending'), 0);
  const line = h.stdout().split('\n').find((l) => l.startsWith(`${h.fixture.long} `))!;
  const expected = Array.from(LONG_TEXT).slice(0, 40).join('').replace(/[\u0000-\u001f]/g, ' ').trimEnd();
  assert.ok(line.endsWith(expected), line);
  assert.doesNotMatch(h.stdout(), /[\u0000-\u0009\u000b-\u001f]/);
  assert.ok(!h.stdout().includes('forty characters'));
});

test('list: filters by state, recipient, sender and time received', async () => {
  const h = harness();
  const { ids } = h.fixture;
  const all = h.withDb((db) => db.prepare('SELECT id, state, oa, da FROM messages ORDER BY id DESC').all() as Array<{ id: number; state: string; oa: string; da: string }>);

  assert.equal(await h.run('list', '--state', 'failed'), 0);
  assert.deepEqual(idsOf(h.stdout()), [ids.failed]);

  assert.equal(await h.run('list', '--state', 'pending'), 0);
  assert.deepEqual(idsOf(h.stdout()), all.filter((r) => r.state === 'pending').map((r) => r.id));

  assert.equal(await h.run('list', '--state', 'Failed,bounced'), 0);
  assert.deepEqual(idsOf(h.stdout()), [ids.bounced, ids.failed]);

  assert.equal(await h.run('list', '--to', '2001'), 0);
  assert.deepEqual(idsOf(h.stdout()), all.filter((r) => r.da === '2001').map((r) => r.id));
  assert.ok(idsOf(h.stdout()).length >= 3);

  assert.equal(await h.run('list', '--from', '3003'), 0);
  assert.deepEqual(idsOf(h.stdout()), [h.fixture.old]);

  assert.equal(await h.run('list', '--from', '2002', '--state', 'received'), 0);
  assert.deepEqual(idsOf(h.stdout()), [ids.received]);

  // The old row was received three days ago: 2d leaves it out, 4d takes it in.
  assert.equal(await h.run('list', '--since', '2d'), 0);
  assert.deepEqual(idsOf(h.stdout()), all.filter((r) => r.id !== h.fixture.old).map((r) => r.id));
  assert.equal(await h.run('list', '--since', '4d'), 0);
  assert.deepEqual(idsOf(h.stdout()), all.map((r) => r.id));
  assert.equal(await h.run('list', '--since', '90m', '--to', '4004'), 0);
  assert.equal(h.stdout(), 'no messages match\n');

  // An absolute time, with a zone and without one.
  const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000).toISOString();
  assert.equal(await h.run('list', '--since', twoDaysAgo, '--from', '3003'), 0);
  assert.equal(h.stdout(), 'no messages match\n');
  const fourDaysAgo = new Date(Date.now() - 4 * 86_400_000);
  const localDate = `${fourDaysAgo.getFullYear()}-${String(fourDaysAgo.getMonth() + 1).padStart(2, '0')}-${String(fourDaysAgo.getDate()).padStart(2, '0')}`;
  assert.equal(await h.run('list', '--since', localDate, '--from', '3003'), 0);
  assert.deepEqual(idsOf(h.stdout()), [h.fixture.old]);

  // A future time matches nothing.
  assert.equal(await h.run('list', '--since', '2099-01-01T00:00Z'), 0);
  assert.equal(h.stdout(), 'no messages match\n');
});

test('list --limit: the newest N, and a note on stderr when more match', async () => {
  const h = harness();
  const all = h.withDb((db) => (db.prepare('SELECT id FROM messages ORDER BY id DESC').all() as Array<{ id: number }>).map((r) => r.id));
  assert.equal(await h.run('list', '--limit', '2'), 0);
  assert.deepEqual(idsOf(h.stdout()), all.slice(0, 2));
  assert.match(h.stderr(), /newest 2; more match/);
  assert.equal(await h.run('list', '--limit', String(all.length)), 0);
  assert.deepEqual(idsOf(h.stdout()), all);
  assert.equal(h.stderr(), '');
});

test('list: the default limit is 50', async () => {
  const h = harness();
  h.withDb((_db, journal) => journal.recordReceived(Array.from({ length: 55 }, () => message({ oa: '5005' }))));
  assert.equal(await h.run('list', '--from', '5005'), 0);
  assert.equal(idsOf(h.stdout()).length, 50);
  assert.match(h.stderr(), /newest 50/);
});

test('list --json: full rows in camelCase, detail parsed when it is JSON', async () => {
  const h = harness();
  const { ids } = h.fixture;
  assert.equal(await h.run('list', '--json', '--state', 'delivered,failed'), 0);
  const rows = JSON.parse(h.stdout()) as Array<Record<string, unknown>>;
  assert.deepEqual(rows.map((r) => r['id']), h.withDb((db) => (db.prepare(`SELECT id FROM messages WHERE state IN ('delivered','failed') ORDER BY id DESC`).all() as Array<{ id: number }>).map((r) => r.id)));

  const delivered = rows.find((r) => r['id'] === ids.delivered)!;
  const journalRow = h.row(ids.delivered);
  // Every MessageRow field, with the same values, except detail which is parsed.
  assert.deepEqual({ ...delivered, detail: JSON.stringify(delivered['detail']) }, { ...journalRow });
  assert.deepEqual(delivered['detail'], { concatRef: 7, pages: 2 });
  assert.equal(delivered['srr'], true);
  assert.equal(delivered['rp'], false);
  assert.equal(delivered['nextAttemptAt'], null);

  const failed = rows.find((r) => r['id'] === ids.failed)!;
  assert.equal(failed['detail'], 'not json {');
  assert.equal(failed['text'], SECRET);
  assert.equal(failed['lastError'], 'PLAYBACKSTATUS FAILED');
  for (const key of Object.keys(failed)) assert.doesNotMatch(key, /_/);

  assert.equal(await h.run('list', '--json', '--to', '0000'), 0);
  assert.deepEqual(JSON.parse(h.stdout()), []);
});

test('list --no-text hides every text, in the table and in JSON', async () => {
  const h = harness();
  assert.equal(await h.run('list', '--no-text'), 0);
  const { header, rows } = tableRows(h.stdout());
  assert.deepEqual(header, ['ID', 'STATE', 'ROUTE', 'FROM', 'TO', 'ATTEMPTS', 'UPDATED']);
  assert.ok(rows.length >= 8);
  for (const r of rows) assert.equal(r.length, 7, r.join('|'));
  assert.ok(!h.stdout().includes(SECRET));
  assert.ok(!h.stdout().includes('Anyone?'));

  assert.equal(await h.run('list', '--json', '--no-text'), 0);
  const json = JSON.parse(h.stdout()) as Array<Record<string, unknown>>;
  assert.ok(json.length >= 8);
  for (const r of json) assert.ok(!('text' in r));
  assert.ok(!h.stdout().includes(SECRET));
});

test('show: every field, the calls with their outcome, the parent and the notices', async () => {
  const h = harness();
  const { ids } = h.fixture;
  assert.equal(await h.run('show', String(ids.delivered)), 0);
  const out = h.stdout();
  const r = h.row(ids.delivered);
  for (const key of Object.keys(r)) assert.match(out, new RegExp(`^  ${key}: `, 'm'), `field ${key}`);
  assert.match(out, new RegExp(`^  state: +delivered$`, 'm'));
  assert.match(out, new RegExp(`^  channel: +PJSIP/2007$`, 'm'));
  assert.match(out, new RegExp(`^  receivedAt: +${r.receivedAt.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(out, /^  text: +"faxed fine"$/m);
  assert.match(out, /^parent: none$/m);
  assert.match(out, /^calls \(3\):$/m);
  assert.match(out, /^notices and replies: none$/m);

  const calls = h.withDb((db) => db.prepare('SELECT * FROM calls WHERE message_id = ? ORDER BY id').all(ids.delivered) as Array<{ file_name: string; attempt: number; status: string | null; finished_at: string | null }>);
  for (const c of calls) {
    const line = out.split('\n').find((l) => l.includes(c.file_name));
    assert.ok(line, `call ${c.file_name} shown`);
    const cells = line.trim().split(/\s{2,}/);
    assert.equal(cells[3], String(c.attempt));
    if (c.status === null) {
      assert.equal(cells[4], 'pending');
      assert.equal(cells[5], '(waiting)');
      assert.equal(cells[7], '-');
    } else {
      assert.equal(cells[4], 'done');
      assert.equal(cells[5], c.status);
      assert.equal(cells[7], c.finished_at!.replace(/\.\d+Z$/, 'Z'));
    }
  }
  assert.ok(out.includes(h.fixture.calls.done));
  assert.ok(out.includes(h.fixture.calls.pending));
  // The spooled message's call is not this message's.
  assert.doesNotMatch(out, /smsr-S-2005/);
});

test('show: a bounced message lists its notice; the notice names its parent', async () => {
  const h = harness();
  const { ids, notice } = h.fixture;
  assert.equal(await h.run('show', String(ids.bounced)), 0);
  assert.match(h.stdout(), /^notices and replies \(1\):$/m);
  assert.match(h.stdout(), new RegExp(`^  #${notice} notice received 1000 -> 2002 updated \\S+  "Cannot deliver SMS to 9999\\. Number doe`, 'm'));
  assert.match(h.stdout(), /^  lastError: +number does not exist$/m);
  assert.match(h.stdout(), /^calls: none$/m);

  assert.equal(await h.run('show', String(notice)), 0);
  assert.match(h.stdout(), new RegExp(`^parent: #${ids.bounced} message bounced 2002 -> 9999 updated \\S+  "Anyone\\?"$`, 'm'));
  assert.match(h.stdout(), new RegExp(`^  parentId: +${ids.bounced}$`, 'm'));
  assert.match(h.stdout(), /^  kind: +notice$/m);
});

test('show: control characters in the text are escaped, --no-text hides texts', async () => {
  const h = harness();
  assert.equal(await h.run('show', String(h.fixture.long)), 0);
  assert.match(h.stdout(), /^  text: +"Line one\\nline\\ttwo\\u001b\[31m and a long tail/m);
  assert.doesNotMatch(h.stdout(), /\u001b/);

  assert.equal(await h.run('show', String(h.fixture.ids.bounced), '--no-text'), 0);
  assert.doesNotMatch(h.stdout(), /^  text:/m);
  assert.ok(!h.stdout().includes('Anyone?'));
  assert.ok(!h.stdout().includes('Cannot deliver'));
  assert.match(h.stdout(), new RegExp(`^  #${h.fixture.notice} notice received 1000 -> 2002 updated \\S+$`, 'm'));
});

test('show --json: the message, its calls, parent and notices', async () => {
  const h = harness();
  const { ids, notice } = h.fixture;
  assert.equal(await h.run('show', '--json', String(ids.delivered)), 0);
  const shown = JSON.parse(h.stdout()) as { message: Record<string, unknown>; calls: Array<Record<string, unknown>>; parent: unknown; notices: unknown[] };
  assert.equal(shown.message['id'], ids.delivered);
  assert.deepEqual(shown.message['detail'], { concatRef: 7, pages: 2 });
  assert.equal(shown.parent, null);
  assert.deepEqual(shown.notices, []);
  const calls = h.withDb((db) => db.prepare('SELECT id, file_name, attempt, state, status, created_at, finished_at FROM calls WHERE message_id = ? ORDER BY id').all(ids.delivered) as Array<Record<string, unknown>>);
  assert.deepEqual(
    shown.calls.map((c) => [c['id'], c['fileName'], c['attempt'], c['state'], c['status'], c['createdAt'], c['finishedAt']]),
    calls.map((c) => [c['id'], c['file_name'], c['attempt'], c['state'], c['status'], c['created_at'], c['finished_at']]),
  );

  assert.equal(await h.run('show', String(notice), '--json'), 0);
  const n = JSON.parse(h.stdout()) as { message: Record<string, unknown>; parent: Record<string, unknown> };
  assert.equal(n.parent['id'], ids.bounced);
  assert.equal(n.parent['state'], 'bounced');
  assert.equal(n.message['parentId'], ids.bounced);

  assert.equal(await h.run('show', String(ids.bounced), '--json'), 0);
  assert.deepEqual((JSON.parse(h.stdout()) as { notices: Array<{ id: number }> }).notices.map((x) => x.id), [notice]);
});

test('show: an unknown id is exit 1 with one line', async () => {
  const h = harness();
  const missing = h.withDb((db) => (db.prepare('SELECT max(id) + 100 AS id FROM messages').get() as { id: number }).id);
  assert.equal(await h.run('show', String(missing)), 1);
  assertOneErrorLine(h.stderr(), new RegExp(`no message ${missing}`));
  assert.equal(h.stdout(), '');
  assert.equal(h.closes(), h.opens());
});

test('retry: failed, bounced and pending become pending, due now, attempts and last error kept', async () => {
  const h = harness();
  const { ids } = h.fixture;
  for (const state of ['failed', 'bounced', 'pending'] as const) {
    const id = ids[state];
    const before = h.row(id);
    const t0 = new Date().toISOString();
    assert.equal(await h.run('retry', String(id)), 0, h.stderr());
    const t1 = new Date().toISOString();
    const after = h.row(id);
    assert.equal(after.state, 'pending');
    assert.ok(after.nextAttemptAt !== null && after.nextAttemptAt >= t0 && after.nextAttemptAt <= t1, `${after.nextAttemptAt} in [${t0}, ${t1}]`);
    assert.equal(after.attempts, before.attempts);
    assert.equal(after.lastError, before.lastError);
    assert.equal(after.route, before.route);
    assert.equal(after.text, before.text);
    const out = h.stdout();
    assert.match(out, new RegExp(`^message ${id}: retry scheduled$`, 'm'));
    if (before.state !== 'pending') assert.match(out, new RegExp(`^  state: ${before.state} -> pending$`, 'm'));
    else assert.doesNotMatch(out, /state:/);
    assert.match(out, new RegExp(`^  next attempt: ${before.nextAttemptAt ?? '-'} -> ${after.nextAttemptAt}$`, 'm'));
    assert.match(out, new RegExp(`attempts kept at ${before.attempts}`));
    assert.match(out, new RegExp(`last error kept: ${before.lastError}`));
    assert.equal(h.stderr(), '');
  }
  // Other rows untouched.
  assert.equal(h.row(ids.delivered).state, 'delivered');
  assert.equal(h.row(ids.spooled).state, 'spooled');
});

test('retry --reset-attempts starts the count again', async () => {
  const h = harness();
  const id = h.fixture.ids.failed;
  assert.equal(h.row(id).attempts, 3);
  assert.equal(await h.run('retry', '--reset-attempts', String(id)), 0);
  const after = h.row(id);
  assert.equal(after.attempts, 0);
  assert.equal(after.state, 'pending');
  assert.equal(after.lastError, 'PLAYBACKSTATUS FAILED');
  assert.match(h.stdout(), /^  attempts: 3 -> 0$/m);
});

test('retry refuses delivered, spooled and received messages, changing nothing', async () => {
  const h = harness();
  const { ids } = h.fixture;
  const reasons: Partial<Record<MessageState, RegExp>> = { delivered: /already delivered/, spooled: /Asterisk/, received: /not routed it yet/ };
  for (const state of ['delivered', 'spooled', 'received'] as const) {
    const before = h.row(ids[state]);
    assert.equal(await h.run('retry', String(ids[state]), '--reset-attempts'), 1);
    assertOneErrorLine(h.stderr(), new RegExp(`cannot retry message ${ids[state]}: it is ${state}: .*nothing changed`));
    assert.match(h.stderr(), reasons[state]!);
    assert.equal(h.stdout(), '');
    assert.deepEqual(h.row(ids[state]), before);
  }
  const missing = h.withDb((db) => (db.prepare('SELECT max(id) + 1 AS id FROM messages').get() as { id: number }).id);
  assert.equal(await h.run('retry', String(missing)), 1);
  assertOneErrorLine(h.stderr(), /no message/);
  assert.equal(h.closes(), h.opens());
});

test('cancel: received, pending and spooled become failed, CANCELLED by operator, no next attempt', async () => {
  const h = harness();
  const { ids } = h.fixture;
  for (const state of ['received', 'pending', 'spooled'] as const) {
    const id = ids[state];
    const before = h.row(id);
    assert.equal(await h.run('cancel', String(id)), 0, h.stderr());
    const after = h.row(id);
    assert.equal(after.state, 'failed');
    assert.equal(after.lastError, CANCELLED_ERROR);
    assert.equal(after.nextAttemptAt, null);
    assert.equal(after.attempts, before.attempts);
    assert.equal(after.route, before.route);
    assert.ok(after.updatedAt >= before.updatedAt);
    assert.match(h.stdout(), new RegExp(`^message ${id}: cancelled$`, 'm'));
    assert.match(h.stdout(), new RegExp(`^  state: ${state} -> failed$`, 'm'));
    assert.match(h.stdout(), new RegExp(`^  last error: ${before.lastError ?? '-'} -> ${CANCELLED_ERROR}$`, 'm'));
    if (state === 'spooled') assert.match(h.stdout(), /already been handed to Asterisk/);
    else assert.doesNotMatch(h.stdout(), /Asterisk/);
  }
  assert.match(h.stdout(), /CANCELLED by operator/);
  // A cancelled message can be retried later (it is failed now).
  assert.equal(await h.run('retry', String(ids.received)), 0);
  assert.equal(h.row(ids.received).state, 'pending');
  assert.equal(h.row(ids.received).lastError, CANCELLED_ERROR);
});

test('cancel refuses delivered, failed and bounced messages, changing nothing', async () => {
  const h = harness();
  const { ids } = h.fixture;
  for (const state of ['delivered', 'failed', 'bounced'] as const) {
    const before = h.row(ids[state]);
    assert.equal(await h.run('cancel', String(ids[state])), 1);
    assertOneErrorLine(h.stderr(), new RegExp(`cannot cancel message ${ids[state]}: it is ${state}: .*nothing changed`));
    assert.equal(h.stdout(), '');
    assert.deepEqual(h.row(ids[state]), before);
  }
  // Cancelling twice: the second is refused, since the first made it failed.
  assert.equal(await h.run('cancel', String(ids.pending)), 0);
  assert.equal(await h.run('cancel', String(ids.pending)), 1);
  assert.match(h.stderr(), /it is failed/);
});

test('a change made by the daemon in between is not overwritten: the guard decides', async () => {
  const h = harness();
  const { ids } = h.fixture;
  // The daemon delivers the pending message before the operator's retry lands.
  h.withDb((_db, journal) => journal.update(ids.pending, { state: 'spooled', attempts: 3, nextAttemptAt: null }));
  const before = h.row(ids.pending);
  assert.equal(await h.run('retry', String(ids.pending)), 1);
  assert.deepEqual(h.row(ids.pending), before);
  h.withDb((_db, journal) => journal.update(ids.pending, { state: 'delivered' }));
  const delivered = h.row(ids.pending);
  assert.equal(await h.run('cancel', String(ids.pending)), 1);
  assert.deepEqual(h.row(ids.pending), delivered);
});

test('--config is passed to the opener wherever it stands; the journal is always closed', async () => {
  const h = harness();
  const { ids } = h.fixture;
  assert.equal(await h.run('--config', '/etc/a.toml', 'list'), 0);
  assert.equal(await h.run('show', '--config=/etc/b.toml', String(ids.failed)), 0);
  assert.equal(await h.run('retry', String(ids.failed), '--config', '/etc/c.toml'), 0);
  assert.equal(await h.run('cancel', String(ids.received)), 0);
  assert.equal(await h.run('cancel', String(ids.delivered), '--config', '/etc/d.toml'), 1);
  assert.deepEqual(h.configs, ['/etc/a.toml', '/etc/b.toml', '/etc/c.toml', undefined, '/etc/d.toml']);
  assert.equal(h.closes(), h.opens());
});

test('usage errors: exit 2, one line, the journal is not opened', async () => {
  const h = harness();
  const cases: Array<[string[], RegExp]> = [
    [[], /missing subcommand/],
    [['purge'], /unknown subcommand "purge"/],
    [['list', 'extra'], /list takes no arguments/],
    [['show'], /show takes ID, got none/],
    [['retry', '1', '2'], /retry takes ID/],
    [['show', 'abc'], /"abc" is not a message id/],
    [['cancel', '0'], /"0" is not a message id/],
    [['retry', '-5'], /./],
    [['cancel', '1.5'], /not a message id/],
    [['list', '--state', 'lost'], /"lost" is not a state/],
    [['list', '--state', 'failed,'], /"" is not a state/],
    [['list', '--since', 'yesterday'], /--since "yesterday"/],
    [['list', '--since', '2024-02-30'], /--since/],
    [['list', '--since', '2024-05-01T25:00'], /--since/],
    [['list', '--since', '15x'], /--since/],
    [['list', '--limit', '0'], /--limit "0"/],
    [['list', '--limit', 'ten'], /--limit/],
    [['list', '--to', ''], /--to needs a number/],
    [['list', '--since'], /--since/],
    [['list', '--color'], /color/],
    [['show', '1', '--state', 'failed'], /show does not take --state/],
    [['retry', '1', '--json'], /retry does not take --json/],
    [['cancel', '1', '--reset-attempts'], /cancel does not take --reset-attempts/],
    [['list', '--json', '--json'], /--json given more than once/],
    [['list', '--config', 'a', '--config', 'b'], /--config given more than once/],
  ];
  for (const [args, pattern] of cases) {
    assert.equal(await h.run(...args), 2, args.join(' '));
    assertOneErrorLine(h.stderr(), pattern);
    assert.equal(h.stdout(), '');
  }
  assert.equal(h.opens(), 0);
});

test('--help prints the usage and exits 0 without opening the journal', async () => {
  const h = harness();
  assert.equal(await h.run('--help'), 0);
  assert.match(h.stdout(), /sms-router messages list/);
  assert.match(h.stdout(), /sms-router messages retry ID \[--reset-attempts\]/);
  assert.equal(await h.run('cancel', '-h'), 0);
  assert.equal(h.opens(), 0);
});

test('an error opening the journal is exit 1 with one line', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (s) => out.push(s), stderr: (s) => err.push(s) };
  const tmp = tempDir();
  const notADb = path.join(tmp, 'garbage.db');
  fs.writeFileSync(notADb, 'this is not a SQLite database, not at all, and long enough to have a header'.repeat(20));
  const code = await runMessagesCommand(['list'], io, () => {
    const db = openDatabase(notADb);
    return { db, close: () => db.close() };
  });
  assert.equal(code, 1);
  assertOneErrorLine(err.join(''), /garbage\.db/);
  assert.deepEqual(out, []);
});

test('parseSince: ages, ISO times with and without a zone, and bad values', () => {
  const now = new Date('2024-05-10T12:00:00.000Z');
  assert.equal(parseSince('15m', now).toISOString(), '2024-05-10T11:45:00.000Z');
  assert.equal(parseSince('2h', now).toISOString(), '2024-05-10T10:00:00.000Z');
  assert.equal(parseSince('3d', now).toISOString(), '2024-05-07T12:00:00.000Z');
  assert.equal(parseSince('30s', now).toISOString(), '2024-05-10T11:59:30.000Z');
  assert.equal(parseSince('1w', now).toISOString(), '2024-05-03T12:00:00.000Z');
  assert.equal(parseSince('2024-05-01T10:20:30Z', now).toISOString(), '2024-05-01T10:20:30.000Z');
  assert.equal(parseSince('2024-05-01T10:20:30.250Z', now).toISOString(), '2024-05-01T10:20:30.250Z');
  assert.equal(parseSince('2024-05-01T12:00+02:00', now).toISOString(), '2024-05-01T10:00:00.000Z');
  assert.equal(parseSince('2024-05-01T12:00-0130', now).toISOString(), '2024-05-01T13:30:00.000Z');
  // Without a zone: local time, as the operator means it.
  assert.equal(parseSince('2024-05-01', now).getTime(), new Date(2024, 4, 1).getTime());
  assert.equal(parseSince('2024-05-01 08:15', now).getTime(), new Date(2024, 4, 1, 8, 15).getTime());
  assert.equal(parseSince('2024-02-29', now).getTime(), new Date(2024, 1, 29).getTime());
  for (const bad of ['', 'now', '15', 'm15', '2024-13-01', '2023-02-29', '2024-05-01Z', '2024-05-01T10:61', '2024-05-01T10:00+25:00', '2024/05/01', '99999999999999999999d']) {
    assert.throws(() => parseSince(bad, now), /--since/, bad);
  }
});
