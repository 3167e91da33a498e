import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase, schemaVersion } from '../../src/journal/store.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/journal/migrations.js';
import { DatabaseError } from '../../src/errors.js';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'smsr-'));
}

function tableNames(db: import('better-sqlite3').Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
    (r) => r.name,
  );
}

test('a new database gets its parent directory, every migration and the latest version', () => {
  const file = path.join(tempDir(), 'nested', 'deeper', 'smsr.db');
  const db = openDatabase(file);
  try {
    assert.ok(fs.existsSync(file));
    assert.equal(schemaVersion(db), SCHEMA_VERSION);
    assert.equal(SCHEMA_VERSION, MIGRATIONS[MIGRATIONS.length - 1]!.version);
    for (const t of ['recipients', 'messages', 'calls', 'concat_refs']) assert.ok(tableNames(db).includes(t), t);
  } finally {
    db.close();
  }
});

test('reopening runs no migration again and keeps data and version', () => {
  const file = path.join(tempDir(), 'smsr.db');
  const first = openDatabase(file);
  first.prepare("INSERT INTO recipients (number, service, channel) VALUES ('1001', 'S', 'DAHDI/1')").run();
  const tablesBefore = tableNames(first);
  first.close();

  // Migration 1 is plain CREATE TABLE: running it a second time would throw.
  for (let i = 0; i < 3; i++) {
    const again = openDatabase(file);
    try {
      assert.equal(schemaVersion(again), SCHEMA_VERSION);
      assert.deepEqual(tableNames(again), tablesBefore);
      assert.deepEqual(again.prepare('SELECT number, service, channel FROM recipients').all(), [
        { number: '1001', service: 'S', channel: 'DAHDI/1' },
      ]);
    } finally {
      again.close();
    }
  }
});

test('two connections to the same file both work', () => {
  const file = path.join(tempDir(), 'smsr.db');
  const a = openDatabase(file);
  const b = openDatabase(file);
  try {
    a.prepare("INSERT INTO recipients (number, service) VALUES ('7', 'N')").run();
    assert.equal((b.prepare('SELECT count(*) AS n FROM recipients').get() as { n: number }).n, 1);
  } finally {
    a.close();
    b.close();
  }
});

test('durability pragmas are set: WAL, synchronous FULL, foreign keys, busy timeout', () => {
  const db = openDatabase(path.join(tempDir(), 'smsr.db'));
  try {
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 2); // 2 = FULL
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
  } finally {
    db.close();
  }
});

test('a database from a newer sms-router is refused, naming the path and both versions', () => {
  const file = path.join(tempDir(), 'future.db');
  const newer = SCHEMA_VERSION + 3;
  const raw = new Database(file);
  raw.pragma(`user_version = ${newer}`);
  raw.close();

  assert.throws(
    () => openDatabase(file),
    (err: unknown) => {
      assert.ok(err instanceof DatabaseError);
      assert.equal(err.code, 'DATABASE');
      assert.ok(err.message.includes(file), err.message);
      assert.ok(err.message.includes(String(newer)), err.message);
      assert.ok(err.message.includes(String(SCHEMA_VERSION)), err.message);
      return true;
    },
  );
  // Refusing must not have touched the file.
  const check = new Database(file);
  assert.equal(check.pragma('user_version', { simple: true }), newer);
  check.close();
});

test('an unopenable path gives a DatabaseError naming the path and the cause', () => {
  const dir = tempDir();
  const plainFile = path.join(dir, 'not-a-directory');
  fs.writeFileSync(plainFile, 'x');
  const under = path.join(plainFile, 'smsr.db');
  assert.throws(
    () => openDatabase(under),
    (err: unknown) => {
      assert.ok(err instanceof DatabaseError);
      assert.ok(err.message.includes(under), err.message);
      assert.match(err.message, /not a directory/i);
      assert.ok(err.cause instanceof Error);
      return true;
    },
  );
});

test('a file that is not a database is refused with its path', () => {
  const file = path.join(tempDir(), 'garbage.db');
  fs.writeFileSync(file, Buffer.alloc(4096, 0x41));
  assert.throws(
    () => openDatabase(file),
    (err: unknown) => err instanceof DatabaseError && err.message.includes(file) && /not a database/i.test(err.message),
  );
});

test('a failing migration is rolled back as a whole and named', () => {
  const file = path.join(tempDir(), 'clash.db');
  const raw = new Database(file);
  // A stray table with the same name makes migration 1 fail halfway.
  raw.exec('CREATE TABLE calls (x INTEGER)');
  raw.close();
  assert.throws(
    () => openDatabase(file),
    (err: unknown) =>
      err instanceof DatabaseError && err.message.includes(file) && err.message.includes(`migration ${MIGRATIONS[0]!.version}`),
  );
  const check = new Database(file);
  try {
    assert.equal(check.pragma('user_version', { simple: true }), 0);
    // recipients and messages were created before the failure: the rollback removed them.
    assert.deepEqual(tableNames(check), ['calls']);
  } finally {
    check.close();
  }
});

test('read-only opening: needs an existing, migrated file and cannot write', () => {
  const dir = tempDir();
  const missing = path.join(dir, 'missing', 'smsr.db');
  assert.throws(() => openDatabase(missing, { readonly: true }), (err: unknown) => err instanceof DatabaseError && err.message.includes(missing));
  assert.equal(fs.existsSync(path.dirname(missing)), false);

  const stale = path.join(dir, 'stale.db');
  new Database(stale).close();
  assert.throws(() => openDatabase(stale, { readonly: true }), (err: unknown) => err instanceof DatabaseError && err.message.includes(stale));

  const file = path.join(dir, 'smsr.db');
  openDatabase(file).close();
  const ro = openDatabase(file, { readonly: true });
  try {
    assert.equal(schemaVersion(ro), SCHEMA_VERSION);
    assert.throws(() => ro.prepare("INSERT INTO recipients (number, service) VALUES ('1', 'N')").run(), /readonly/i);
  } finally {
    ro.close();
  }
});
