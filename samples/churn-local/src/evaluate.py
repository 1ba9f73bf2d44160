#!/usr/bin/env python3
"""Score the held-out test split with a trained churn model.

    python3 src/evaluate.py --model models/model.json --features data/features/ --metrics metrics/eval.json

Writes a JSON object of numbers (to a temporary file renamed into place):

    auc        area under the ROC curve (rank based; tied scores get their average rank)
    accuracy, precision, recall, f1   at the model's threshold (0.5)
    log_loss   mean negative log likelihood
    n_test, n_positive

and prints a one-line summary. Exit codes: 0 ok, 1 cannot write, 2 bad inputs.
"""

import argparse
import csv
import json
import math
import os
import sys

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


def load_model(path):
    if not os.path.isfile(path):
        raise InputError("model not found: %s (run train.py first)" % path)
    try:
        with open(path, encoding="utf-8") as f:
            model = json.load(f)
        features = list(model["features"])
        weights = [float(v) for v in model["weights"]]
        bias = float(model["bias"])
        threshold = float(model.get("threshold", 0.5))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError("%s is not a valid model: %s" % (path, e))
    if len(features) != len(weights):
        raise InputError("%s: %d features but %d weights" % (path, len(features), len(weights)))
    return model, features, weights, bias, threshold


def load_test(folder, features, label):
    path = os.path.join(folder, "test.csv")
    if not os.path.isfile(path):
        raise InputError("missing %s (run prepare.py first)" % path)
    X, y = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None) or []
        got = header[1:-1]
        if got != features or not header or header[-1] != label:
            missing = [c for c in features if c not in got]
            extra = [c for c in got if c not in features]
            detail = []
            if missing:
                detail.append("missing " + ", ".join(missing))
            if extra:
                detail.append("unexpected " + ", ".join(extra))
            raise InputError("%s does not match the model's features (%s); prepare and train again"
                             % (path, "; ".join(detail) or "different order or label column"))
        n = len(features)
        for row in reader:
            if not row:
                continue
            try:
                X.append([float(v) for v in row[1:1 + n]])
                y.append(int(row[1 + n]))
            except (ValueError, IndexError):
                raise InputError("%s: line %d is malformed" % (path, reader.line_num))
    if not X:
        raise InputError("%s has no rows" % path)
    return X, y


def roc_auc(scores, labels):
    """Mann-Whitney U statistic / (n_pos * n_neg); ties get their average rank."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2.0 + 1.0  # ranks are 1-based
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    n_pos = sum(1 for v in labels if v == 1)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = sum(r for r, v in zip(ranks, labels) if v == 1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def compute_metrics(probs, labels, threshold):
    tp = fp = tn = fn = 0
    ll = 0.0
    for p, t in zip(probs, labels):
        pred = 1 if p >= threshold else 0
        if pred == 1 and t == 1:
            tp += 1
        elif pred == 1:
            fp += 1
        elif t == 1:
            fn += 1
        else:
            tn += 1
        q = min(max(p, EPS), 1.0 - EPS)
        ll += -math.log(q) if t == 1 else -math.log(1.0 - q)
    n = len(labels)
    precision = tp / float(tp + fp) if tp + fp else 0.0
    recall = tp / float(tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = roc_auc(probs, labels)
    out = {
        "auc": auc,
        "accuracy": (tp + tn) / float(n),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "log_loss": ll / n,
    }
    out = {k: round(v, 6) for k, v in out.items() if math.isfinite(v)}
    out["n_test"] = n
    out["n_positive"] = tp + fn
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Score the test split with a trained churn model.")
    ap.add_argument("--model", required=True, metavar="PATH", help="model JSON written by train.py")
    ap.add_argument("--features", required=True, metavar="DIR", help="folder written by prepare.py")
    ap.add_argument("--metrics", required=True, metavar="PATH", help="metrics JSON to write")
    args = ap.parse_args(argv)

    try:
        model, features, weights, bias, threshold = load_model(args.model)
        X, y = load_test(args.features, features, model.get("label", "churned"))
    except InputError as e:
        print("evaluate: error: %s" % e, file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as e:
        print("evaluate: error: %s" % e, file=sys.stderr)
        return 2

    probs = [sigmoid(bias + sum(w * x for w, x in zip(weights, xi))) for xi in X]
    metrics = compute_metrics(probs, y, threshold)
    try:
        atomic_write_json(args.metrics, metrics)
    except OSError as e:
        print("evaluate: error: cannot write %s: %s" % (args.metrics, e), file=sys.stderr)
        return 1
    print(
        "evaluate: n_test=%d auc=%.4f accuracy=%.4f precision=%.4f recall=%.4f f1=%.4f log_loss=%.4f -> %s"
        % (metrics["n_test"], metrics.get("auc", float("nan")), metrics["accuracy"], metrics["precision"],
           metrics["recall"], metrics["f1"], metrics["log_loss"], args.metrics),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
