/**
 * Versioned schema. Each entry runs once, in order, inside a transaction, and
 * bumps `PRAGMA user_version`. Never edit a released migration: add a new one.
 */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'recipients directory, message journal, call files, concatenation references',
    sql: `
      CREATE TABLE recipients (
        number         TEXT PRIMARY KEY,
        service        TEXT NOT NULL CHECK (service IN ('S','F','V','C','T','N')),
        channel        TEXT NOT NULL DEFAULT '',
        name           TEXT NOT NULL DEFAULT '',
        language       TEXT,
        fax_resolution TEXT CHECK (fax_resolution IS NULL OR fax_resolution IN ('standard','fine','superfine')),
        quiet_hours    TEXT,
        created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
      );

      CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        kind            TEXT NOT NULL CHECK (kind IN ('message','notice')),
        parent_id       INTEGER REFERENCES messages(id),
        source          TEXT NOT NULL,
        source_name     TEXT NOT NULL,
        content_hash    TEXT NOT NULL,
        oa              TEXT NOT NULL,
        da              TEXT NOT NULL,
        text            TEXT NOT NULL,
        udh             TEXT,
        scts            TEXT,
        mr              INTEGER,
        dcs             INTEGER,
        pid             INTEGER,
        vp              INTEGER,
        srr             INTEGER NOT NULL DEFAULT 0,
        rp              INTEGER NOT NULL DEFAULT 0,
        state           TEXT NOT NULL CHECK (state IN ('received','pending','spooled','delivered','failed','bounced')),
        route           TEXT,
        channel         TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error      TEXT,
        detail          TEXT,
        received_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        UNIQUE (source, source_name, content_hash)
      );
      CREATE INDEX messages_state ON messages(state, id);
      CREATE INDEX messages_da ON messages(da);

      CREATE TABLE calls (
        id          INTEGER PRIMARY KEY,
        service     TEXT NOT NULL,
        queue       TEXT NOT NULL,
        channel     TEXT NOT NULL,
        file_name   TEXT NOT NULL UNIQUE,
        message_id  INTEGER REFERENCES messages(id),
        attempt     INTEGER NOT NULL DEFAULT 1,
        state       TEXT NOT NULL CHECK (state IN ('pending','done')),
        status      TEXT,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        finished_at TEXT
      );
      CREATE INDEX calls_pending ON calls(service, queue) WHERE state = 'pending';

      CREATE TABLE concat_refs (
        number   TEXT PRIMARY KEY,
        next_ref INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'small durable daemon state (the app_sms log position)',
    sql: `
      CREATE TABLE daemon_state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 3,
    description: 'an index for parts already joined (reassembly looks them up for every part)',
    sql: `CREATE INDEX messages_concat ON messages(oa, da, id) WHERE route = 'concat';`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
