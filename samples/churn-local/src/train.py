#!/usr/bin/env python3
"""Fit a logistic regression on the prepared churn features with mini-batch gradient descent.

    python3 src/train.py --features data/features/ --lr 0.01 --epochs 20 --l2 0.0001 \\
        --model models/model.json --metrics metrics/train.json --loss metrics/loss.csv

* Holds out a seeded 10% of train.csv as a validation set (test.csv is left to evaluate.py).
* Each epoch shuffles the remaining rows (seeded) and takes gradient steps on mini-batches;
  the objective is the mean log loss plus l2/2 * |w|^2 (the bias is not regularized).
* After every epoch appends `epoch,loss,val_loss,accuracy` to the loss CSV and flushes it, so a
  viewer can plot it live (the file is started fresh by each run). `loss` and `val_loss` are the
  mean log loss (without the penalty) on the training and validation rows, `accuracy` is the
  validation accuracy at threshold 0.5. A progress line per epoch goes to stdout.
* At the end writes the model (weights, bias, feature names, and the encoding and scaling
  copied from schema.json, so serve.py can score raw records) and the final metrics as JSON,
  each to a temporary file renamed into place.

The same inputs and arguments always give byte-identical outputs.
Exit codes: 0 ok, 1 training failed (diverged, cannot write), 2 bad arguments or inputs.
"""

import argparse
import csv
import json
import math
import os
import random
import sys

MODEL_FORMAT = "mlpipeline.logistic-regression/v1"
VAL_FRACTION = 0.1
EPS = 1e-12


class InputError(Exception):
    pass


def atomic_write_json(path, obj):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(obj, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def log_loss_of(p, y):
    p = min(max(p, EPS), 1.0 - EPS)
    return -math.log(p) if y == 1 else -math.log(1.0 - p)


def load_features(folder):
    """Return (schema, X, y) from FOLDER/schema.json and FOLDER/train.csv."""
    if not os.path.isdir(folder):
        raise InputError("features folder not found: %s (run prepare.py first)" % folder)
    schema_path = os.path.join(folder, "schema.json")
    data_path = os.path.join(folder, "train.csv")
    for p in (schema_path, data_path):
        if not os.path.isfile(p):
            raise InputError("missing %s (run prepare.py first)" % p)
    try:
        with open(schema_path, encoding="utf-8") as f:
            schema = json.load(f)
        features = list(schema["features"])
        label = schema["label"]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError("%s is not a valid schema: %s" % (schema_path, e))
    X, y = [], []
    with open(data_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        expected = [schema.get("id_column", "customer_id")] + features + [label]
        if header != expected:
            raise InputError("%s: header does not match schema.json (run prepare.py again)" % data_path)
        n = len(features)
        for row in reader:
            if not row:
                continue
            try:
                X.append([float(v) for v in row[1:1 + n]])
                y.append(int(row[1 + n]))
            except (ValueError, IndexError):
                raise InputError("%s: line %d is malformed" % (data_path, reader.line_num))
    if len(X) < 10:
        raise InputError("%s: need at least 10 rows, found %d" % (data_path, len(X)))
    return schema, X, y


def mean_loss_and_accuracy(w, b, X, y):
    total, correct = 0.0, 0
    for xi, yi in zip(X, y):
        p = sigmoid(b + sum(wj * xj for wj, xj in zip(w, xi)))
        total += log_loss_of(p, yi)
        correct += (p >= 0.5) == (yi == 1)
    return total / len(X), correct / float(len(X))


def positive_float(name, allow_zero=False):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%s must be a number, got %r" % (name, text))
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            raise argparse.ArgumentTypeError("%s must be %s, got %r" % (name, ">= 0" if allow_zero else "> 0", text))
        return v
    return parse


def positive_int(name):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%s must be an integer, got %r" % (name, text))
        if v < 1:
            raise argparse.ArgumentTypeError("%s must be >= 1, got %r" % (name, text))
        return v
    return parse


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fit a logistic regression with mini-batch gradient descent.")
    ap.add_argument("--features", required=True, metavar="DIR", help="folder written by prepare.py")
    ap.add_argument("--lr", required=True, type=positive_float("--lr"), help="learning rate (> 0)")
    ap.add_argument("--epochs", required=True, type=positive_int("--epochs"), help="passes over the training rows (>= 1)")
    ap.add_argument("--l2", type=positive_float("--l2", allow_zero=True), default=0.0, help="L2 penalty (>= 0, default 0)")
    ap.add_argument("--model", required=True, metavar="PATH", help="model JSON to write")
    ap.add_argument("--metrics", required=True, metavar="PATH", help="final metrics JSON to write")
    ap.add_argument("--loss", required=True, metavar="PATH", help="per-epoch loss CSV to write")
    ap.add_argument("--batch-size", type=positive_int("--batch-size"), default=32, help="mini-batch size (default 32)")
    ap.add_argument("--seed", type=int, default=7, help="seed for the validation split and shuffling (default 7)")
    args = ap.parse_args(argv)

    try:
        schema, X_all, y_all = load_features(args.features)
    except InputError as e:
        print("train: error: %s" % e, file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as e:
        print("train: error: cannot read %s: %s" % (args.features, e), file=sys.stderr)
        return 2

    rng = random.Random(args.seed)
    order = list(range(len(X_all)))
    rng.shuffle(order)
    n_val = max(1, int(round(len(order) * VAL_FRACTION)))
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    X, y = [X_all[i] for i in train_idx], [y_all[i] for i in train_idx]
    Xv, yv = [X_all[i] for i in val_idx], [y_all[i] for i in val_idx]

    n_features = len(schema["features"])
    w = [0.0] * n_features
    b = 0.0
    lr, l2, bs = args.lr, args.l2, args.batch_size

    try:
        loss_dir = os.path.dirname(os.path.abspath(args.loss))
        os.makedirs(loss_dir, exist_ok=True)
        loss_file = open(args.loss, "w", encoding="utf-8")
    except OSError as e:
        print("train: error: cannot write %s: %s" % (args.loss, e), file=sys.stderr)
        return 1

    loss = val_loss = accuracy = float("nan")
    with loss_file:
        loss_file.write("epoch,loss,val_loss,accuracy\n")
        loss_file.flush()
        idx = list(range(len(X)))
        for epoch in range(1, args.epochs + 1):
            rng.shuffle(idx)
            for start in range(0, len(idx), bs):
                batch = idx[start:start + bs]
                gw = [0.0] * n_features
                gb = 0.0
                for i in batch:
                    xi = X[i]
                    err = sigmoid(b + sum(wj * xj for wj, xj in zip(w, xi))) - y[i]
                    gb += err
                    for j, xj in enumerate(xi):
                        if xj:
                            gw[j] += err * xj
                m = float(len(batch))
                w = [wj - lr * (gj / m + l2 * wj) for wj, gj in zip(w, gw)]
                b -= lr * gb / m

            loss, _ = mean_loss_and_accuracy(w, b, X, y)
            val_loss, accuracy = mean_loss_and_accuracy(w, b, Xv, yv)
            if not (math.isfinite(loss) and all(math.isfinite(v) for v in w) and math.isfinite(b)):
                print("train: error: training diverged at epoch %d (lr=%g); try a smaller --lr" % (epoch, lr), file=sys.stderr)
                return 1
            loss_file.write("%d,%.6f,%.6f,%.6f\n" % (epoch, loss, val_loss, accuracy))
            loss_file.flush()
            print("epoch %d/%d loss=%.4f val_loss=%.4f acc=%.3f" % (epoch, args.epochs, loss, val_loss, accuracy), flush=True)

    model = {
        "format": MODEL_FORMAT,
        "label": schema["label"],
        "features": schema["features"],
        "weights": [round(v, 10) for v in w],
        "bias": round(b, 10),
        "threshold": 0.5,
        "raw_features": schema.get("raw_features"),
        "encoding": schema["encoding"],
        "training": {
            "lr": lr,
            "epochs": args.epochs,
            "l2": l2,
            "batch_size": bs,
            "seed": args.seed,
            "n_train": len(X),
            "n_val": len(Xv),
        },
        "data": {"sha256": schema.get("source", {}).get("sha256"), "rows": schema.get("source", {}).get("rows")},
    }
    metrics = {
        "loss": round(loss, 6),
        "val_loss": round(val_loss, 6),
        "accuracy": round(accuracy, 6),
        "epochs": args.epochs,
        "n_train": len(X),
        "n_val": len(Xv),
    }
    try:
        atomic_write_json(args.model, model)
        atomic_write_json(args.metrics, metrics)
    except OSError as e:
        print("train: error: cannot write outputs: %s" % e, file=sys.stderr)
        return 1
    print("train: wrote %s and %s" % (args.model, args.metrics), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("train: interrupted", file=sys.stderr)
        sys.exit(130)
