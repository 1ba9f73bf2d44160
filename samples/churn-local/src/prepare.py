#!/usr/bin/env python3
"""Clean the raw churn table, encode it and split it into train and test.

    python3 src/prepare.py --in data/churn.csv --out data/features/

Reads the raw CSV, checks its header, splits the customers 80/20 into train and
test (stratified on the label, seeded), then, using statistics of the training
rows only:

* fills empty numeric cells with the training median and empty categorical
  cells with the training mode,
* one-hot encodes the categorical columns (categories seen in training),
* standardizes the numeric columns to mean 0 and standard deviation 1.

Writes OUT/train.csv, OUT/test.csv (customer_id, the encoded features, the
label) and OUT/schema.json (feature names, encoding and scaling statistics,
which train.py copies into the model so that serve.py can encode raw requests
the same way). Every file is written to a temporary name and renamed into
place, so an interrupted run never leaves a half-written file.

Exit codes: 0 ok, 2 bad input (missing file, wrong header, bad values).

Also imported by serve.py for encode_instance(); keep it standard library only.
"""

import argparse
import csv
import hashlib
import json
import math
import os
import random
import sys

ID_COLUMN = "customer_id"
LABEL = "churned"
NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_calls"]
BINARY = ["senior"]
CATEGORICAL = ["contract", "internet_service", "payment_method"]
RAW_FEATURES = NUMERIC + BINARY + CATEGORICAL
REQUIRED_COLUMNS = [ID_COLUMN] + RAW_FEATURES + [LABEL]

SEED = 42
TEST_FRACTION = 0.2
SCHEMA_VERSION = 1


class InputError(Exception):
    """A problem with the input data; reported without a traceback, exit code 2."""


# ---------------------------------------------------------------- file helpers

def atomic_write_text(path, text):
    """Write text to path via a temporary file in the same folder and os.replace."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temp_files(folder):
    """Delete temporary files a killed earlier run may have left (names made by atomic_write_text)."""
    for name in os.listdir(folder):
        if name.startswith(".") and ".tmp-" in name:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def csv_text(header, rows):
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def fmt(x):
    """Compact, deterministic text for a float (round-trips to 9 significant digits)."""
    s = "%.9g" % x
    return "0" if s == "-0" else s


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- reading

def parse_number(text, column, line):
    try:
        value = float(text)
    except ValueError:
        raise InputError("line %d: column %r: %r is not a number" % (line, column, text))
    if not math.isfinite(value):
        raise InputError("line %d: column %r: %r is not a finite number" % (line, column, text))
    return value


def read_raw(path):
    """Return a list of dicts with parsed values; None marks an empty cell."""
    if not os.path.isfile(path):
        raise InputError("input file not found: %s" % path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("%s is empty (expected a header line: %s)" % (path, ",".join(REQUIRED_COLUMNS)))
        except csv.Error as e:
            raise InputError("%s: cannot parse the header as CSV: %s" % (path, e))
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise InputError(
                "%s: missing required column%s %s (found: %s)"
                % (path, "s" if len(missing) > 1 else "", ", ".join(repr(c) for c in missing), ", ".join(header))
            )
        dupes = sorted(set(c for c in header if header.count(c) > 1 and c in REQUIRED_COLUMNS))
        if dupes:
            raise InputError("%s: duplicate column%s %s" % (path, "s" if len(dupes) > 1 else "", ", ".join(repr(c) for c in dupes)))
        index = {c: header.index(c) for c in REQUIRED_COLUMNS}

        rows = []
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank line
                if len(row) < len(header):
                    raise InputError("line %d: expected %d fields, got %d" % (line, len(header), len(row)))
                cells = {c: row[i].strip() for c, i in index.items()}
                rec = {ID_COLUMN: cells[ID_COLUMN] or "row%d" % line}
                label = cells[LABEL]
                if label not in ("0", "1"):
                    raise InputError("line %d: column %r must be 0 or 1, got %r" % (line, LABEL, label))
                rec[LABEL] = int(label)
                for c in NUMERIC + BINARY:
                    rec[c] = None if cells[c] == "" else parse_number(cells[c], c, line)
                for c in BINARY:
                    if rec[c] is not None and rec[c] not in (0.0, 1.0):
                        raise InputError("line %d: column %r must be 0 or 1, got %r" % (line, c, cells[c]))
                for c in CATEGORICAL:
                    rec[c] = cells[c].lower() or None
                rows.append(rec)
        except csv.Error as e:
            raise InputError("%s: line %d: %s" % (path, reader.line_num, e))
    if len(rows) < 10:
        raise InputError("%s: need at least 10 data rows, found %d" % (path, len(rows)))
    labels = set(r[LABEL] for r in rows)
    if labels != {0, 1}:
        raise InputError("%s: column %r must contain both classes 0 and 1" % (path, LABEL))
    return rows


# ---------------------------------------------------------------- fitting and encoding

def stratified_split(rows, seed=SEED, test_fraction=TEST_FRACTION):
    """Indices of train and test rows: the same fraction of each class goes to test."""
    rng = random.Random(seed)
    train, test = [], []
    for cls in (0, 1):
        idx = [i for i, r in enumerate(rows) if r[LABEL] == cls]
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return sorted(train), sorted(test)


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return 0.0
    mid = n // 2
    return v[mid] if n % 2 else (v[mid - 1] + v[mid]) / 2.0


def fit_encoding(train_rows):
    """Statistics from the training rows only: medians, means, stds, categories, modes."""
    numeric = {}
    for c in NUMERIC:
        present = [r[c] for r in train_rows if r[c] is not None]
        med = median(present)
        filled = [med if r[c] is None else r[c] for r in train_rows]
        mean = sum(filled) / len(filled)
        var = sum((x - mean) ** 2 for x in filled) / len(filled)
        std = math.sqrt(var) if var > 0 else 1.0
        numeric[c] = {"median": med, "mean": mean, "std": std, "missing_in_train": len(train_rows) - len(present)}
    binary = {}
    for c in BINARY:
        present = [r[c] for r in train_rows if r[c] is not None]
        binary[c] = {"fill": 1.0 if present and sum(present) * 2 > len(present) else 0.0}
    categorical = {}
    for c in CATEGORICAL:
        counts = {}
        for r in train_rows:
            if r[c] is not None:
                counts[r[c]] = counts.get(r[c], 0) + 1
        if not counts:
            raise InputError("column %r has no values in the training rows" % c)
        categories = sorted(counts)
        mode = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        categorical[c] = {"categories": categories, "fill": mode}
    features = list(NUMERIC) + list(BINARY)
    for c in CATEGORICAL:
        features.extend("%s=%s" % (c, v) for v in categorical[c]["categories"])
    return {
        "columns": {"numeric": list(NUMERIC), "binary": list(BINARY), "categorical": list(CATEGORICAL)},
        "numeric": numeric,
        "binary": binary,
        "categorical": categorical,
        "features": features,
    }


def encode_instance(raw, encoding):
    """Encode one record of raw values (numbers or None; category strings or None) into the feature vector.

    Missing numbers get the training median, missing categories the training mode, an unseen
    category encodes as all zeros. Used for the CSV rows here and for requests in serve.py.
    """
    cols = encoding["columns"]
    x = []
    for c in cols["numeric"]:
        s = encoding["numeric"][c]
        v = raw.get(c)
        if v is None:
            v = s["median"]
        x.append((v - s["mean"]) / s["std"])
    for c in cols["binary"]:
        v = raw.get(c)
        x.append(encoding["binary"][c]["fill"] if v is None else float(v))
    for c in cols["categorical"]:
        spec = encoding["categorical"][c]
        v = raw.get(c)
        if v is None:
            v = spec["fill"]
        x.extend(1.0 if v == cat else 0.0 for cat in spec["categories"])
    return x


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description="Clean, encode and split the churn table.")
    ap.add_argument("--in", dest="inp", required=True, metavar="CSV", help="raw churn CSV")
    ap.add_argument("--out", required=True, metavar="DIR", help="output folder for train.csv, test.csv, schema.json")
    args = ap.parse_args(argv)

    try:
        rows = read_raw(args.inp)
    except InputError as e:
        print("prepare: error: %s" % e, file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as e:
        print("prepare: error: cannot read %s: %s" % (args.inp, e), file=sys.stderr)
        return 2

    train_idx, test_idx = stratified_split(rows)
    train_rows = [rows[i] for i in train_idx]
    test_rows = [rows[i] for i in test_idx]
    try:
        encoding = fit_encoding(train_rows)
    except InputError as e:
        print("prepare: error: %s" % e, file=sys.stderr)
        return 2

    header = [ID_COLUMN] + encoding["features"] + [LABEL]

    def table(subset):
        out = []
        for r in subset:
            out.append([r[ID_COLUMN]] + [fmt(v) for v in encode_instance(r, encoding)] + [str(r[LABEL])])
        return out

    missing_cells = {c: sum(1 for r in rows if r[c] is None) for c in RAW_FEATURES}
    schema = {
        "version": SCHEMA_VERSION,
        "id_column": ID_COLUMN,
        "label": LABEL,
        "raw_features": RAW_FEATURES,
        "features": encoding["features"],
        "encoding": {k: encoding[k] for k in ("columns", "numeric", "binary", "categorical")},
        "split": {
            "seed": SEED,
            "test_fraction": TEST_FRACTION,
            "stratified_on": LABEL,
            "n_train": len(train_rows),
            "n_test": len(test_rows),
            "train_positive_rate": sum(r[LABEL] for r in train_rows) / float(len(train_rows)),
        },
        "source": {
            "path": os.path.basename(args.inp),
            "sha256": sha256_of(args.inp),
            "rows": len(rows),
            "missing_cells": missing_cells,
        },
    }

    try:
        os.makedirs(args.out, exist_ok=True)
        remove_stale_temp_files(args.out)
        atomic_write_text(os.path.join(args.out, "train.csv"), csv_text(header, table(train_rows)))
        atomic_write_text(os.path.join(args.out, "test.csv"), csv_text(header, table(test_rows)))
        atomic_write_json(os.path.join(args.out, "schema.json"), schema)
    except OSError as e:
        print("prepare: error: cannot write to %s: %s" % (args.out, e), file=sys.stderr)
        return 1

    filled = sum(missing_cells.values())
    print(
        "prepare: %d rows (%d train, %d test), %d features, filled %d empty cells, churn rate %.3f -> %s"
        % (len(rows), len(train_rows), len(test_rows), len(encoding["features"]), filled,
           sum(r[LABEL] for r in rows) / float(len(rows)), args.out),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
