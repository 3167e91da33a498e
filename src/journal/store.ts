/**
 * Opening the one SQLite database. Every process (daemon, `users` CLI, tests)
 * goes through here, so the durability pragmas and the schema version checks
 * cannot be forgotten by a caller.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseError, errorMessage } from '../errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export type Db = import('better-sqlite3').Database;

export interface OpenOptions {
  /** Open without write access: no directory is created, no migration is run. */
  readonly readonly?: boolean;
}

export function openDatabase(file: string, options: OpenOptions = {}): Db {
  const readonly = options.readonly === true;
  const inMemory = file === ':memory:' || file === '';
  if (!readonly && !inMemory) ensureParentDirectory(file);
  let db: Db | undefined;
  try {
    // fileMustExist for read-only: a missing file is a mistake, not an empty directory.
    db = new Database(file, { readonly, fileMustExist: readonly });
    // First, so that switching to WAL waits for a daemon that holds a lock
    // instead of failing at once with SQLITE_BUSY.
    db.pragma('busy_timeout = 5000');
    if (!readonly) {
      // WAL lets the CLI read and write while the daemon works; FULL makes a
      // committed message survive a power cut, which is the whole promise.
      // This is also where SQLite first reads the file and notices "not a database".
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    db.pragma('foreign_keys = ON');
  } catch (err) {
    db?.close();
    throw new DatabaseError(`cannot open database ${file}: ${errorMessage(err)}`, { cause: err });
  }

  try {
    const found = schemaVersion(db);
    if (found > SCHEMA_VERSION) {
      throw new DatabaseError(
        `database ${file} has schema version ${found}, newer than version ${SCHEMA_VERSION} that this sms-router knows; ` +
          'upgrade sms-router or restore a matching backup',
      );
    }
    if (found < SCHEMA_VERSION) {
      if (readonly) {
        throw new DatabaseError(
          `database ${file} has schema version ${found}, older than version ${SCHEMA_VERSION}; open it once for writing to migrate`,
        );
      }
      migrate(db, file);
    }
    return db;
  } catch (err) {
    db.close();
    if (err instanceof DatabaseError) throw err;
    throw new DatabaseError(`cannot use database ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/** A fresh installation has no /var/lib/sms-router yet; the daemon should not fail on that. */
function ensureParentDirectory(file: string): void {
  const dir = path.dirname(path.resolve(file));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    // mkdir says EEXIST when the "directory" is a plain file: say what is actually wrong.
    const why = (err as NodeJS.ErrnoException).code === 'EEXIST' ? `${dir} exists and is not a directory` : errorMessage(err);
    throw new DatabaseError(`cannot open database ${file}: cannot create its directory: ${why}`, { cause: err });
  }
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function migrate(db: Db, file: string): void {
  for (const m of MIGRATIONS) {
    // IMMEDIATE takes the write lock before reading the version, so when the
    // daemon and the CLI start together only one of them runs a migration
    // and the other sees its result.
    const step = db.transaction(() => {
      if (schemaVersion(db) >= m.version) return;
      db.exec(m.sql);
      // user_version lives in the file header, so it commits or rolls back with the migration.
      db.pragma(`user_version = ${Math.trunc(m.version)}`);
    });
    try {
      step.immediate();
    } catch (err) {
      throw new DatabaseError(
        `database ${file}: migration ${m.version} (${m.description}) failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
}
