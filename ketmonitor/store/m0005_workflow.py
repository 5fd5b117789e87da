"""Workflow tables: clinic, users, patients, doses, scale entries, scheduled-check results,
discharge and amendments.

Clinical entries are append-only (triggers refuse UPDATE and DELETE): a correction is a row in
``amendments`` with a reason, pointing at the table and row it corrects. Every entry also has a row
in ``events`` (the trend timeline) whose JSON data names the entry (``dose_id``, ``entry_id``,
``discharge_id``, ``amendment_id``), and an entry in the audit trail. Times as in 0001_core.
"""

from .schema import MIGRATIONS

_APPEND_ONLY = ("doses", "scale_entries", "check_results", "discharges", "amendments",
                "password_history")


@MIGRATIONS(name="0005_workflow")
def m0005_workflow(db):
    db.executescript(
        """
        CREATE TABLE clinic (
            id INTEGER PRIMARY KEY CHECK (id = 1),       -- one clinic per database
            name TEXT NOT NULL,
            address TEXT NOT NULL DEFAULT '',
            phone TEXT NOT NULL DEFAULT '',
            email TEXT NOT NULL DEFAULT '',
            created_utc TEXT NOT NULL
        );

        CREATE TABLE users (
            id TEXT PRIMARY KEY,                          -- the login user id, unique, never reused
            full_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('nurse', 'physician', 'auditor', 'admin')),
            password_hash TEXT NOT NULL,                  -- argon2id
            password_changed_utc TEXT NOT NULL,
            must_change INTEGER NOT NULL DEFAULT 0,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_utc TEXT,                              -- set when locked out
            locked_until_utc TEXT,                        -- NULL with locked_utc set: until an admin unlocks
            active INTEGER NOT NULL DEFAULT 1,
            email TEXT NOT NULL DEFAULT '',
            phone TEXT NOT NULL DEFAULT '',
            created_utc TEXT NOT NULL,
            created_by TEXT
        );

        CREATE TABLE password_history (
            user_id TEXT NOT NULL REFERENCES users(id),
            password_hash TEXT NOT NULL,
            t_utc TEXT NOT NULL
        );
        CREATE INDEX password_history_user ON password_history(user_id, t_utc);

        CREATE TABLE patients (
            id TEXT PRIMARY KEY,
            mrn TEXT NOT NULL UNIQUE,                     -- identifier / medical record number
            name TEXT NOT NULL,
            birth_date TEXT,                              -- YYYY-MM-DD
            sex TEXT,                                     -- female, male, other, unknown
            weight_kg REAL,
            notes TEXT NOT NULL DEFAULT '',
            -- REMS patient monitoring form: concomitant medication (NULL = not asked)
            benzodiazepines INTEGER,
            sedative_hypnotics INTEGER,                   -- non-benzodiazepine sedative hypnotics
            psychostimulants INTEGER,
            maois INTEGER,
            opioids INTEGER,
            created_utc TEXT NOT NULL,
            created_by TEXT,
            updated_utc TEXT,
            updated_by TEXT
        );

        CREATE TABLE doses (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            action TEXT NOT NULL CHECK (action IN
                ('dose', 'infusion_start', 'infusion_rate', 'infusion_stop')),
            drug TEXT NOT NULL,
            amount REAL,                                  -- the dose (bolus, device, infusion total)
            unit TEXT,                                    -- mg, mg/kg, ...
            route TEXT NOT NULL,                          -- iv, im, intranasal, sublingual, oral
            lot_number TEXT,
            device_index INTEGER,                         -- 1, 2, 3 for intranasal devices
            rate REAL,                                    -- infusion rate
            rate_unit TEXT,                               -- mg/h, mg/kg/h, ml/h
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,                          -- when it was given
            user_id TEXT
        );
        CREATE INDEX doses_session ON doses(session_id, t_wall);

        CREATE TABLE scale_entries (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            scale TEXT NOT NULL,                          -- cadss, cadss6, moaas, bprs_pos, rass, kset
            scale_version TEXT NOT NULL,
            variant TEXT,                                 -- e.g. MOAA/S '0-5' or '1-6'
            items TEXT NOT NULL,                          -- JSON {item number: score}
            total REAL,
            subscales TEXT NOT NULL DEFAULT '{}',         -- JSON {name: score}
            complete INTEGER NOT NULL,
            check_id TEXT,                                -- the scheduled check it fulfils
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            user_id TEXT
        );
        CREATE INDEX scale_entries_session ON scale_entries(session_id, scale, t_wall);

        CREATE TABLE check_results (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            check_id TEXT NOT NULL,                       -- e.g. bp@40, cadss@pre, moaas@discharge
            status TEXT NOT NULL CHECK (status IN ('done', 'skipped')),
            entry_table TEXT,                             -- scale_entries, events, numerics
            entry_id INTEGER,
            reason TEXT,                                  -- why skipped
            data TEXT NOT NULL DEFAULT '{}',              -- JSON: e.g. the BP values, their source
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            user_id TEXT
        );
        CREATE INDEX check_results_session ON check_results(session_id, check_id);

        CREATE TABLE discharges (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            criteria TEXT NOT NULL,                       -- JSON {criterion id: true/false}
            all_met INTEGER NOT NULL,
            reason TEXT,                                  -- required when not all met
            ready_t_mono REAL NOT NULL,
            ready_utc TEXT NOT NULL,                      -- when the patient was ready to leave
            minutes_to_ready REAL,                        -- from the first dose
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            user_id TEXT
        );

        CREATE TABLE amendments (
            id INTEGER PRIMARY KEY,
            session_id TEXT REFERENCES sessions(id),
            target_table TEXT NOT NULL,                   -- events, doses, scale_entries, ...
            target_id TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
            changes TEXT NOT NULL,                        -- JSON: the corrected values
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            user_id TEXT
        );
        CREATE INDEX amendments_target ON amendments(target_table, target_id);
        CREATE INDEX amendments_session ON amendments(session_id);
        """
    )
    for table in _APPEND_ONLY:
        db.executescript(
            f"""
            CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: add an amendment'); END;
            CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: add an amendment'); END;
            """
        )
