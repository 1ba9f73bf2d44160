#!/usr/bin/env python3
"""Generate the synthetic customer-churn table used by the churn-local sample.

The output is deterministic (fixed seed): running this script again rewrites
data/churn.csv byte for byte. Only the Python standard library is used.

    python3 tools/make_data.py                 # writes data/churn.csv
    python3 tools/make_data.py --rows 500 --out /tmp/small.csv --seed 7

How the label is made: every customer gets a churn log-odds from a plausible
model (month-to-month contracts, fiber internet, electronic checks, support
calls, high charges and being a senior raise it; long tenure and two-year
contracts lower it; tenure enters through log(1 + tenure), so a linear model
is slightly misspecified), plus a customer-level random effect, and churned is
a Bernoulli draw from the resulting probability. A few cells are left empty
(as in real exports) so that the prepare step has something to clean.
"""

import argparse
import csv
import math
import os
import random
import sys

HEADER = [
    "customer_id",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract",
    "internet_service",
    "payment_method",
    "support_calls",
    "senior",
    "churned",
]

DEFAULT_SEED = 20240601
DEFAULT_ROWS = 2500


def poisson(rng, lam):
    """Knuth's Poisson sampler (fine for the small rates used here)."""
    limit = math.exp(-lam)
    k, p = 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def weighted(rng, pairs):
    """Pick a value from [(value, weight), ...]."""
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def make_row(rng, i):
    senior = 1 if rng.random() < 0.16 else 0

    # Tenure: many new customers, a long tail of loyal ones (0..72 months).
    r = rng.random()
    if r < 0.35:
        tenure = rng.randint(0, 12)
    elif r < 0.70:
        tenure = rng.randint(13, 48)
    else:
        tenure = rng.randint(49, 72)

    # Longer-tenured customers are more often on long contracts.
    p_two = 0.04 + 0.45 * tenure / 72.0
    p_one = 0.12 + 0.15 * tenure / 72.0
    contract = weighted(rng, [("month-to-month", 1.0 - p_two - p_one), ("one-year", p_one), ("two-year", p_two)])

    internet = weighted(rng, [("fiber", 0.44), ("dsl", 0.34), ("none", 0.22)])
    base = {"none": 20.0, "dsl": 52.0, "fiber": 84.0}[internet]
    spread = {"none": 2.5, "dsl": 9.0, "fiber": 11.0}[internet]
    monthly = base + rng.gauss(0.0, spread) + (4.0 if senior else 0.0)
    monthly = min(max(monthly, 18.25), 118.75)

    if tenure == 0:
        total = None  # brand-new customers have no billing history yet
    else:
        total = tenure * monthly * rng.uniform(0.92, 1.04)

    if contract == "month-to-month":
        payment = weighted(rng, [("electronic_check", 0.48), ("mailed_check", 0.22), ("bank_transfer", 0.15), ("credit_card", 0.15)])
    else:
        payment = weighted(rng, [("electronic_check", 0.18), ("mailed_check", 0.22), ("bank_transfer", 0.30), ("credit_card", 0.30)])

    support = min(poisson(rng, 1.0 + (0.6 if internet == "fiber" else 0.0) + (0.4 if senior else 0.0)), 12)

    logit = -1.55
    logit += {"month-to-month": 0.75, "one-year": -0.35, "two-year": -1.1}[contract]
    logit += -0.45 * (math.log1p(tenure) - 2.9)
    logit += {"fiber": 0.45, "dsl": -0.05, "none": -0.55}[internet]
    logit += 0.012 * (monthly - 65.0)
    logit += 0.40 if payment == "electronic_check" else 0.0
    logit += 0.28 * (support - 1.4)
    logit += 0.35 * senior
    logit += rng.gauss(0.0, 0.6)  # what the table does not explain
    churned = 1 if rng.random() < 1.0 / (1.0 + math.exp(-logit)) else 0

    row = {
        "customer_id": "C%05d" % (i + 1),
        "tenure_months": str(tenure),
        "monthly_charges": "%.2f" % monthly,
        "total_charges": "" if total is None else "%.2f" % total,
        "contract": contract,
        "internet_service": internet,
        "payment_method": payment,
        "support_calls": str(support),
        "senior": str(senior),
        "churned": str(churned),
    }

    # A few empty cells, as in real exports.
    if rng.random() < 0.012:
        row["monthly_charges"] = ""
    if rng.random() < 0.010:
        row["total_charges"] = ""
    if rng.random() < 0.015:
        row["support_calls"] = ""
    if rng.random() < 0.006:
        row["payment_method"] = ""
    return row


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(os.path.dirname(here), "data", "churn.csv")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=default_out, help="output CSV (default: %(default)s)")
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="number of customers (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.rows < 10:
        ap.error("--rows must be at least 10")

    rng = random.Random(args.seed)
    rows = [make_row(rng, i) for i in range(args.rows)]

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.out + ".tmp-%d" % os.getpid()
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=HEADER, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, args.out)

    churn_rate = sum(int(r["churned"]) for r in rows) / len(rows)
    empty = sum(1 for r in rows for v in r.values() if v == "")
    print("wrote %s: %d rows, churn rate %.3f, %d empty cells" % (args.out, len(rows), churn_rate, empty))
    return 0


if __name__ == "__main__":
    sys.exit(main())
