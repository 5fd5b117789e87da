"""Sign and verify time of a 2-hour session record.

    .venv/bin/python benchmarks/signing.py [--minutes 120] [--chunk 25] [--repeat 3]

The session holds numerics at 1 Hz for 5 metrics and 75 Hz pleth in chunks of ``--chunk`` samples
(25 = three chunks a second, as the simulated oximeter sends them), written with the store writer's
own SQL into a temporary database. Reports, in wall-clock seconds (best of ``--repeat``):
building the record from the database (which writes its tables' RFC 8785 text, see
ketmonitor/signing/canonical.py), the RFC 8785 serialisation of the whole record, the same by the
``rfc8785`` reference package (the bytes are checked equal), the whole ``seal_session`` (with the
production Argon2id key derivation, also shown alone), ``verify_record`` of the record file with a
keyring, and ``verify_db`` of the session (signatures, every row, every chunk re-hashed, audit chain).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rfc8785  # noqa: E402

from ketmonitor.samples import Numeric, WaveformChunk  # noqa: E402
from ketmonitor.sessions import create_session, end_session  # noqa: E402
from ketmonitor.signing import (Keyring, enrol_key, record_bytes, seal_session,  # noqa: E402
                                verify_db, verify_record)
from ketmonitor.signing.canonical import canonical_json  # noqa: E402
from ketmonitor.signing.keys import unlock_key  # noqa: E402
from ketmonitor.signing.record import build_session_record  # noqa: E402
from ketmonitor.store import open_db  # noqa: E402
from ketmonitor.store.writer import StoreWriter  # noqa: E402

METRICS = ("spo2", "pulse_rate", "perfusion_index", "nibp_systolic", "nibp_diastolic")
T0 = 1_767_225_600.0


def fill(db, minutes: float, chunk: int, session_id: str = "bench") -> str:
    db.conn.execute("BEGIN IMMEDIATE")
    sid = create_session(db, wall_anchor=T0, mono_anchor=0.0, protocol="bench", session_id=session_id)
    seconds = int(minutes * 60)
    batch = []
    for i in range(seconds):
        for k, m in enumerate(METRICS):
            batch.append((sid, Numeric.of(m, 90.0 + (i * 7 + k) % 13 + 0.25 * k, t_mono=float(i),
                                          t_wall=T0 + i, source="sim")))
    n_chunks = int(seconds * 75 / chunk)
    for c in range(n_chunks):
        t = c * chunk / 75.0
        batch.append((sid, WaveformChunk("pleth", 75.0, t, T0 + t,
                                         tuple((c * 31 + j * 17) % 4096 for j in range(chunk)),
                                         "sim")))
    StoreWriter._write_samples(db.conn, batch)
    end_session(db, sid, t_wall=T0 + seconds)
    db.conn.execute("COMMIT")
    return sid


def best(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def figures(quick: bool = False) -> list:
    """For ``python -m benchmarks``: each figure over several runs, each run on its own 2-hour
    session (a session is sealed once)."""
    from benchmarks.harness import Figure

    runs, minutes, chunk = (2 if quick else 5), 120.0, 25
    t = {k: [] for k in ("build", "canon", "ref", "kdf", "seal", "seal_kdf", "verify", "vdb")}
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        sids = [fill(db, minutes, chunk, f"bench-{i}") for i in range(2 * runs)]
        enrol_key(db, "nurse1", "Bench Nurse", "nurse", "bench-password")
        keyring = None
        for i in range(runs):
            sid, sid2 = sids[2 * i], sids[2 * i + 1]
            dt, record = best(lambda: build_session_record(
                db, sid, record_id="x", created_utc="2026-01-01T00:00:00Z"), 1)
            t["build"].append(dt)
            dt, payload = best(lambda: canonical_json(record), 1)
            t["canon"].append(dt)
            dt, reference = best(lambda: rfc8785.dumps(record), 1)
            t["ref"].append(dt)
            if reference != payload:
                raise AssertionError("canonical_json differs from the rfc8785 reference")
            dt, key = best(lambda: unlock_key(db, "nurse1", "bench-password"), 1)
            t["kdf"].append(dt)
            dt, rec = best(lambda: seal_session(db, sid, "nurse1", key), 1)  # key already unlocked
            t["seal"].append(dt)
            dt, _ = best(lambda: seal_session(db, sid2, "nurse1", "bench-password"), 1)
            t["seal_kdf"].append(dt)
            data = record_bytes(db, rec.record_id)
            keyring = keyring or Keyring.from_db(db)
            t["verify"].append(best(lambda: verify_record(data, keyring), 1)[0])
            t["vdb"].append(best(lambda: verify_db(db, sid, audit=False), 1)[0])
        db.conn.close()
    size = (f"2-hour session: {int(minutes * 60) * len(METRICS):,} numeric rows ({len(METRICS)} "
            f"metrics at 1 Hz) and {int(minutes * 60 * 75 / chunk):,} pleth chunks (75 Hz, {chunk} "
            f"samples each); record payload {len(payload) / 1e6:.2f} MB canonical JSON, record file "
            f"{len(data) / 1e6:.2f} MB")
    ms = lambda xs: [x * 1000 for x in xs]  # noqa: E731
    return [
        Figure("signing.seal", "Sign a 2-hour record (key unlocked)", "ms", ms(t["seal"]), "< 250",
               size + "; seal_session with an unlocked key: build the record from the database, "
               "RFC 8785 canonicalisation, Ed25519 signature, store, audit"),
        Figure("signing.seal_with_kdf", "Sign a 2-hour record incl. password (Argon2id)", "ms",
               ms(t["seal_kdf"]), "", "what the user waits for: the same plus unlocking the key "
               "(Argon2id t=3, m=64 MiB, p=4, deliberately slow)"),
        Figure("signing.build", "  of which: build the record from the database", "ms",
               ms(t["build"]), "", "build_session_record: read every session table (a column "
               "holding one value throughout is read once) and write each table's RFC 8785 text "
               "(canonical_rows)"),
        Figure("signing.canonicalise", "  of which: RFC 8785 canonicalisation", "ms",
               ms(t["canon"]), "", "canonical_json of the built record: the tables' text joined "
               "with the rest of the record, encoded as UTF-8"),
        Figure("signing.canonicalise_reference", "  RFC 8785 by the rfc8785 package (reference)",
               "ms", ms(t["ref"]), "", "rfc8785.dumps of the same record, pure Python; not used "
               "for signing, its bytes checked equal to canonical_json's every run"),
        Figure("signing.kdf", "  Argon2id key unlock alone", "ms", ms(t["kdf"])),
        Figure("signing.verify_record", "Verify a 2-hour record file", "ms", ms(t["verify"]),
               "< 250", "verify_record(file bytes, keyring): JWS parse, payload digest, Ed25519"),
        Figure("signing.verify_db", "Verify a 2-hour session in the database", "ms", ms(t["vdb"]),
               "", "verify_db(session, audit=False): signatures, every row compared with the "
               "record, every waveform chunk re-hashed"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--chunk", type=int, default=25, help="pleth samples per chunk")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        sid = fill(db, args.minutes, args.chunk)
        enrol_key(db, "nurse1", "Bench Nurse", "nurse", "bench-password")
        n_num = db.conn.execute("SELECT count(*) FROM numerics").fetchone()[0]
        n_chunks = db.conn.execute("SELECT count(*) FROM waveform_chunks").fetchone()[0]
        t_build, record = best(lambda: build_session_record(db, sid, record_id="x",
                                                            created_utc="2026-01-01T00:00:00Z"),
                               args.repeat)
        t_canon, payload = best(lambda: canonical_json(record), args.repeat)
        t_ref, reference = best(lambda: rfc8785.dumps(record), args.repeat)
        assert reference == payload, "canonical_json differs from the rfc8785 reference"
        t_kdf, _ = best(lambda: unlock_key(db, "nurse1", "bench-password"), args.repeat)
        t = time.perf_counter()
        rec = seal_session(db, sid, "nurse1", "bench-password")
        t_seal = time.perf_counter() - t
        data = record_bytes(db, rec.record_id)
        keyring = Keyring.from_db(db)
        t_verify, _ = best(lambda: verify_record(data, keyring), args.repeat)
        t_vdb, _ = best(lambda: verify_db(db, sid, audit=False), args.repeat)
        db.conn.close()
    print(f"session: {args.minutes:g} min, {n_num} numeric rows ({len(METRICS)} metrics at 1 Hz), "
          f"{n_chunks} pleth chunks of {args.chunk} samples at 75 Hz")
    print(f"record payload: {len(payload) / 1e6:.2f} MB canonical JSON; record file "
          f"{len(data) / 1e6:.2f} MB")
    print(f"build record from db      {t_build:7.3f} s")
    print(f"RFC 8785 canonicalisation {t_canon:7.3f} s  (rfc8785 package: {t_ref:.3f} s, same bytes)")
    print(f"Argon2id unlock (t=3, m=64 MiB, p=4) {t_kdf:7.3f} s")
    print(f"seal_session total        {t_seal:7.3f} s  (unlock + build + canonicalise + sign + store)")
    print(f"verify_record (file)      {t_verify:7.3f} s")
    print(f"verify_db (session)       {t_vdb:7.3f} s  (signatures, rows, chunks re-hashed, audit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
