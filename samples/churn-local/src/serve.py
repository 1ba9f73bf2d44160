#!/usr/bin/env python3
"""Serve churn predictions from a trained model over HTTP (standard library only).

    python3 src/serve.py --model models/model.json --port 8080 [--host 127.0.0.1]
                         [--latency-ms N] [--log-inputs PATH]

Endpoints:

    POST /predict   {"instances": [{"tenure_months": 5, "monthly_charges": 70.5, "total_charges": 352.5,
                                    "contract": "month-to-month", "internet_service": "fiber",
                                    "payment_method": "electronic_check", "support_calls": 2, "senior": 0}]}
                    -> {"predictions": [{"churn_probability": 0.61, "churned": 1}]}
                    Instances use the raw CSV columns; they are encoded and scaled exactly as the prepare
                    step did (prepare.encode_instance with the statistics stored in the model). Every column
                    must be present; null (or "") means missing and is filled like an empty CSV cell.
                    "customer_id" is allowed and ignored; any other field is an error.
    GET /healthz    200 "ok" once the model is loaded
    GET /metrics    Prometheus text format 0.0.4: http_request_duration_seconds (histogram),
                    http_requests_total, http_request_errors_total (status >= 400), all labelled
                    path/method/status (unknown paths are counted as path="other"),
                    model_predictions_total{churned}, model_info{...} 1

Client errors get a JSON body {"error": "..."}: 400 for bad JSON or bad/missing/unknown fields,
404 unknown path, 405 wrong method, 411 no Content-Length, 413 body over 1 MiB (rejected from its
Content-Length before the body is read). One line per request goes to stderr; SIGTERM or SIGINT
stops the server cleanly (exit code 0).

--latency-ms N   sleep N ms in every /predict (to exercise latency monitors and canary rollback);
                 default: the environment variable SERVE_LATENCY_MS, else 0
--log-inputs P   append every predicted instance to P as a JSON line; default: the environment variable
                 MLPIPELINE_INPUT_LOG (set by `mlpipeline deploy`), else no input log
                 {"ts": unix seconds, "instance": {raw fields}, "churn_probability": p}
                 (input for drift detection)

Exit codes: 0 stopped by a signal, 1 cannot listen, 2 bad arguments or model.
"""

import argparse
import hashlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

sys.dont_write_bytecode = True  # importing prepare must not leave src/__pycache__ in the sample
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare import encode_instance  # noqa: E402  (the exact encoding used for training)

MAX_BODY = 1024 * 1024
DRAIN_LIMIT = 8 * 1024 * 1024  # after a 413, discard at most this much of what the client still sends
DRAIN_SECONDS = 2.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
IGNORED_FIELDS = ("customer_id",)


class ClientError(Exception):
    def __init__(self, status, message, close=False, headers=None):
        Exception.__init__(self, message)
        self.status = status
        self.message = message
        self.close = close
        self.headers = headers or {}


class ModelError(Exception):
    pass


# ---------------------------------------------------------------- model

class Model(object):
    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                raw = f.read()
            doc = json.loads(raw.decode("utf-8"))
            self.features = list(doc["features"])
            self.weights = [float(v) for v in doc["weights"]]
            self.bias = float(doc["bias"])
            self.threshold = float(doc.get("threshold", 0.5))
            self.encoding = doc["encoding"]
            cols = self.encoding["columns"]
            self.numeric = list(cols["numeric"])
            self.binary = list(cols["binary"])
            self.categorical = list(cols["categorical"])
            self.categories = {c: list(self.encoding["categorical"][c]["categories"]) for c in self.categorical}
        except OSError as e:
            raise ModelError("cannot read model %s: %s" % (path, e))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise ModelError("%s is not a model written by train.py: %s" % (path, e))
        if len(self.features) != len(self.weights):
            raise ModelError("%s: %d features but %d weights" % (path, len(self.features), len(self.weights)))
        self.fields = self.numeric + self.binary + self.categorical
        try:
            probe = encode_instance({}, self.encoding)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError("%s: unusable encoding: %s" % (path, e))
        if len(probe) != len(self.weights):
            raise ModelError("%s: encoding gives %d features, model has %d" % (path, len(probe), len(self.weights)))
        training = doc.get("training") or {}
        self.info = {
            "name": "churn-logreg",
            "format": str(doc.get("format", "")),
            "sha256": hashlib.sha256(raw).hexdigest()[:12],
            "features": str(len(self.features)),
            "epochs": str(training.get("epochs", "")),
            "lr": str(training.get("lr", "")),
            "data_sha256": str((doc.get("data") or {}).get("sha256") or "")[:12],
        }

    def parse_instance(self, i, obj):
        """Validate one raw instance; return (record for encode_instance, list of error strings)."""
        where = "instances[%d]" % i
        if not isinstance(obj, dict):
            return None, ["%s must be an object with the fields %s" % (where, ", ".join(self.fields))]
        errors = []
        missing = [f for f in self.fields if f not in obj]
        unknown = sorted(k for k in obj if k not in self.fields and k not in IGNORED_FIELDS)
        if missing:
            errors.append("%s: missing field%s %s" % (where, "s" if len(missing) > 1 else "", ", ".join(missing)))
        if unknown:
            errors.append("%s: unknown field%s %s" % (where, "s" if len(unknown) > 1 else "", ", ".join(unknown)))
        rec = {}
        for f in self.numeric + self.binary:
            if f not in obj:
                continue
            v = obj[f]
            if v is None or v == "":
                rec[f] = None
                continue
            if isinstance(v, bool):
                num = float(v) if f in self.binary else None
            elif isinstance(v, (int, float)):
                num = float(v)
            elif isinstance(v, str):
                try:
                    num = float(v.strip())
                except ValueError:
                    num = None
            else:
                num = None
            if num is None or not math.isfinite(num):
                errors.append("%s.%s must be a number or null, got %s" % (where, f, short(v)))
            elif f in self.binary and num not in (0.0, 1.0):
                errors.append("%s.%s must be 0 or 1, got %s" % (where, f, short(v)))
            else:
                rec[f] = num
        for f in self.categorical:
            if f not in obj:
                continue
            v = obj[f]
            if v is None or v == "":
                rec[f] = None
            elif not isinstance(v, str):
                errors.append("%s.%s must be a string or null, got %s" % (where, f, short(v)))
            elif v.strip().lower() not in self.categories[f]:
                errors.append("%s.%s: unknown value %s (expected one of: %s)"
                              % (where, f, short(v), ", ".join(self.categories[f])))
            else:
                rec[f] = v.strip().lower()
        return rec, errors

    def predict(self, rec):
        x = encode_instance(rec, self.encoding)
        z = self.bias + sum(w * v for w, v in zip(self.weights, x))
        if z >= 0:
            p = 1.0 / (1.0 + math.exp(-z))
        else:
            e = math.exp(z)
            p = e / (1.0 + e)
        return p


def short(v, limit=60):
    s = json.dumps(v)
    return s if len(s) <= limit else s[:limit] + "..."


# ---------------------------------------------------------------- metrics

def fmt_float(v):
    if v == float("inf"):
        return "+Inf"
    return repr(float(v))


def escape_label(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels_text(pairs):
    return "{" + ",".join('%s="%s"' % (k, escape_label(v)) for k, v in pairs) + "}"


class Metrics(object):
    def __init__(self, model_info):
        self.lock = threading.Lock()
        self.hist = {}  # (path, method, status) -> [bucket counts..., ] , sum, count
        self.sums = {}
        self.errors = {}
        self.predictions = {"0": 0, "1": 0}
        self.model_info = model_info
        self.started = time.time()

    def observe(self, path, method, status, seconds):
        key = (path, method, str(status))
        with self.lock:
            counts = self.hist.get(key)
            if counts is None:
                counts = self.hist[key] = [0] * (len(BUCKETS) + 1)
                self.sums[key] = 0.0
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    counts[i] += 1
            counts[-1] += 1
            self.sums[key] += seconds
            if status >= 400:
                self.errors[key] = self.errors.get(key, 0) + 1

    def count_predictions(self, labels):
        with self.lock:
            for v in labels:
                self.predictions[str(v)] += 1

    def render(self):
        with self.lock:
            hist = {k: list(v) for k, v in self.hist.items()}
            sums = dict(self.sums)
            errors = dict(self.errors)
            predictions = dict(self.predictions)
        out = []
        out.append("# HELP http_request_duration_seconds Time from the parsed request to the sent response.")
        out.append("# TYPE http_request_duration_seconds histogram")
        for key in sorted(hist):
            base = list(zip(("path", "method", "status"), key))
            counts = hist[key]
            for le, c in zip(BUCKETS + (float("inf"),), counts):
                out.append("http_request_duration_seconds_bucket%s %d" % (labels_text(base + [("le", fmt_float(le))]), c))
            out.append("http_request_duration_seconds_sum%s %s" % (labels_text(base), repr(sums[key])))
            out.append("http_request_duration_seconds_count%s %d" % (labels_text(base), counts[-1]))
        out.append("# HELP http_requests_total HTTP requests answered.")
        out.append("# TYPE http_requests_total counter")
        for key in sorted(hist):
            out.append("http_requests_total%s %d" % (labels_text(zip(("path", "method", "status"), key)), hist[key][-1]))
        out.append("# HELP http_request_errors_total HTTP requests answered with a status of 400 or more.")
        out.append("# TYPE http_request_errors_total counter")
        for key in sorted(errors):
            out.append("http_request_errors_total%s %d" % (labels_text(zip(("path", "method", "status"), key)), errors[key]))
        out.append("# HELP model_predictions_total Instances scored, by predicted class.")
        out.append("# TYPE model_predictions_total counter")
        for cls in sorted(predictions):
            out.append("model_predictions_total%s %d" % (labels_text([("churned", cls)]), predictions[cls]))
        out.append("# HELP model_info The model being served.")
        out.append("# TYPE model_info gauge")
        out.append("model_info%s 1" % labels_text(sorted(self.model_info.items())))
        out.append("# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.")
        out.append("# TYPE process_start_time_seconds gauge")
        out.append("process_start_time_seconds %s" % repr(round(self.started, 3)))
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- HTTP

def printable(text, limit=200):
    """Client-controlled text made safe for a one-line log: control characters escaped, length capped."""
    text = text[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def log_line(text):
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "churn-serve/1"
    sys_version = ""
    timeout = 15  # seconds a client may stay silent (slow headers or body) before the connection is dropped
    # headers and body go out in separate writes; with Nagle's algorithm the body then waits for the
    # client's delayed ACK (~40 ms on Linux) on every keep-alive response
    disable_nagle_algorithm = True

    # set on the server object by main(): app (an App)

    def version_string(self):
        return self.server_version

    def log_request(self, code="-", size="-"):
        pass  # logged by _dispatch, once per request, with the duration

    def log_error(self, format, *args):
        # protocol errors found by http.server (bad request line, timeouts, unsupported methods)
        log_line('%s %s "%s" %s' % (time.strftime("%Y-%m-%dT%H:%M:%S"), self.client_address[0],
                                    printable(getattr(self, "requestline", "")), printable(format % args, 500)))

    def handle_expect_100(self):
        # Refuse an oversized body before the client sends it: skip "100 Continue" and let the
        # handler answer 413 as the final response.
        try:
            if int(self.headers.get("Content-Length", "0")) > MAX_BODY:
                return True
        except ValueError:
            return True
        return BaseHTTPRequestHandler.handle_expect_100(self)

    def _dispatch(self):
        app = self.server.app
        start = time.monotonic()
        self._status = 0
        self._length = 0
        self._linger = False
        self._body_consumed = False
        try:
            self._has_body = bool(self.headers.get("Transfer-Encoding")) or int(self.headers.get("Content-Length") or 0) != 0
        except ValueError:
            self._has_body = True
        try:
            path = urlsplit(self.path).path
        except ValueError:
            path = ""
        route = app.routes.get(path)
        label = path if route else "other"
        app.begin()
        try:
            if route is None:
                raise ClientError(404, "not found: %s (try POST /predict, GET /healthz, GET /metrics)" % path[:200])
            methods = route[0]
            allowed = methods + (("HEAD",) if "GET" in methods else ())
            if self.command not in allowed:
                raise ClientError(405, "method %s not allowed on %s (allowed: %s)" % (self.command, path, ", ".join(allowed)),
                                  headers={"Allow": ", ".join(allowed)})
            route[1](self)
        except ClientError as e:
            self._send_json(e.status, {"error": e.message}, close=e.close, headers=e.headers)
        except (socket.timeout, TimeoutError):
            self.close_connection = True
            self._try_send_json(408, {"error": "timed out reading the request"}, close=True)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self._status = self._status or 499  # client went away
        except Exception:
            log_line("serve: internal error on %s %s:\n%s" % (printable(self.command), printable(path), traceback.format_exc().rstrip()))
            self._try_send_json(500, {"error": "internal server error"}, close=True)
        finally:
            app.end()
            seconds = time.monotonic() - start
            status = self._status or 500
            app.metrics.observe(label, self.command, status, seconds)
            log_line('%s %s "%s %s" %d %dB %.1fms' % (time.strftime("%Y-%m-%dT%H:%M:%S"), self.client_address[0],
                                                     printable(self.command), printable(self.path), status, self._length, seconds * 1000.0))
        if self._linger:
            self._discard_input()

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    # ---- responses

    def _send(self, status, body, content_type, close=False, headers=None):
        self._status = status
        if self._has_body and not self._body_consumed:
            # the body was not read (error, or a body where none is expected): the connection cannot be
            # reused; close it, draining what the client still sends so it gets to read this answer
            close = True
            self._linger = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self._length = len(body)
        self.wfile.flush()

    def _send_json(self, status, obj, close=False, headers=None):
        body = (json.dumps(obj) + "\n").encode("utf-8")
        self._send(status, body, "application/json", close=close, headers=headers)

    def _try_send_json(self, status, obj, close=False):
        try:
            self._send_json(status, obj, close=close)
        except OSError:
            self.close_connection = True
            self._status = self._status or status

    def _discard_input(self):
        """After answering without reading the body, drain (and drop) what the client is still sending, within limits,
        so that closing the socket does not reset the connection before the client reads the answer."""
        sock = self.connection
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.5)
            deadline = time.monotonic() + DRAIN_SECONDS
            left = DRAIN_LIMIT
            while left > 0 and time.monotonic() < deadline:
                chunk = sock.recv(min(65536, left))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    # ---- request body

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te and te.strip().lower() != "identity":
            raise ClientError(411, "chunked request bodies are not supported; send a Content-Length", close=True)
        length = self.headers.get("Content-Length")
        if length is None:
            raise ClientError(411, "a Content-Length header is required", close=True)
        try:
            n = int(length)
            if n < 0:
                raise ValueError(length)
        except ValueError:
            raise ClientError(400, "invalid Content-Length: %s" % short(length), close=True)
        if n > MAX_BODY:
            raise ClientError(413, "request body too large: %d bytes (limit %d)" % (n, MAX_BODY), close=True)
        body = self.rfile.read(n)
        self._body_consumed = True
        if len(body) < n:
            raise ClientError(400, "request body ended after %d of %d bytes" % (len(body), n), close=True)
        return body


# ---------------------------------------------------------------- endpoints

def reject_constant(name):
    raise ValueError("%s is not allowed" % name)


def handle_predict(h):
    app = h.server.app
    body = h._read_body()
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except UnicodeDecodeError:
        raise ClientError(400, "invalid JSON: the body is not UTF-8")
    except RecursionError:
        raise ClientError(400, "invalid JSON: nested too deeply")
    except ValueError as e:
        raise ClientError(400, "invalid JSON: %s" % e)
    if not isinstance(doc, dict):
        raise ClientError(400, 'the body must be a JSON object {"instances": [...]}')
    unknown = sorted(k for k in doc if k != "instances")
    if "instances" not in doc:
        raise ClientError(400, 'missing field instances (expected {"instances": [{...}, ...]})')
    if unknown:
        raise ClientError(400, "unknown top-level field%s %s" % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    instances = doc["instances"]
    if not isinstance(instances, list) or not instances:
        raise ClientError(400, "instances must be a non-empty list of objects")
    records, errors = [], []
    for i, obj in enumerate(instances):
        rec, errs = app.model.parse_instance(i, obj)
        errors.extend(errs)
        records.append(rec)
    if errors:
        more = len(errors) - 5
        raise ClientError(400, "; ".join(errors[:5]) + ("; and %d more" % more if more > 0 else ""))
    if app.latency > 0:
        time.sleep(app.latency)
    probs = [app.model.predict(r) for r in records]
    labels = [1 if p >= app.model.threshold else 0 for p in probs]
    app.metrics.count_predictions(labels)
    if app.input_log is not None:
        app.log_inputs(instances, probs)
    h._send_json(200, {"predictions": [{"churn_probability": round(p, 6), "churned": c} for p, c in zip(probs, labels)]})


def handle_healthz(h):
    if h.server.app.ready.is_set():
        h._send(200, b"ok\n", "text/plain; charset=utf-8")
    else:
        h._send(503, b"loading\n", "text/plain; charset=utf-8")


def handle_metrics(h):
    h._send(200, h.server.app.metrics.render().encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8")


class App(object):
    def __init__(self, model, latency_ms, input_log_path):
        self.model = model
        self.latency = latency_ms / 1000.0
        self.metrics = Metrics(model.info)
        self.ready = threading.Event()
        self.routes = {
            "/predict": (("POST",), handle_predict),
            "/healthz": (("GET",), handle_healthz),
            "/metrics": (("GET",), handle_metrics),
        }
        self.log_lock = threading.Lock()
        self.input_log = None
        if input_log_path:
            folder = os.path.dirname(os.path.abspath(input_log_path))
            os.makedirs(folder, exist_ok=True)
            self.input_log = open(input_log_path, "a", encoding="utf-8")
        self.active = 0
        self.active_cv = threading.Condition()

    def begin(self):
        with self.active_cv:
            self.active += 1

    def end(self):
        with self.active_cv:
            self.active -= 1
            self.active_cv.notify_all()

    def wait_idle(self, seconds):
        deadline = time.monotonic() + seconds
        with self.active_cv:
            while self.active > 0 and time.monotonic() < deadline:
                self.active_cv.wait(max(0.0, deadline - time.monotonic()))

    def log_inputs(self, instances, probs):
        ts = round(time.time(), 3)
        lines = "".join(json.dumps({"ts": ts, "instance": inst, "churn_probability": round(p, 6)}, sort_keys=True) + "\n"
                        for inst, p in zip(instances, probs))
        with self.log_lock:
            try:
                self.input_log.write(lines)
                self.input_log.flush()
            except (OSError, ValueError) as e:
                log_line("serve: cannot append to the input log: %s" % e)

    def close(self):
        if self.input_log is not None:
            with self.log_lock:
                self.input_log.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # the default backlog of 5 drops SYNs under a burst of new connections; clients then wait 1 s to retry
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, socket.timeout)):
            log_line("serve: connection from %s: %s" % (client_address[0], exc))
        else:
            log_line("serve: unexpected error with %s:\n%s" % (client_address[0], traceback.format_exc().rstrip()))


class Server6(Server):
    address_family = socket.AF_INET6


def main(argv=None):
    ap = argparse.ArgumentParser(description="Serve churn predictions over HTTP.")
    ap.add_argument("--model", required=True, metavar="PATH", help="model JSON written by train.py")
    ap.add_argument("--port", required=True, type=int, help="TCP port (0 picks a free one)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--latency-ms", type=float, default=None, metavar="N",
                    help="artificial delay added to every /predict (default: $SERVE_LATENCY_MS or 0)")
    ap.add_argument("--log-inputs", metavar="PATH", default=os.environ.get("MLPIPELINE_INPUT_LOG") or None,
                    help="append predicted instances to PATH as JSON lines (default: $MLPIPELINE_INPUT_LOG)")
    args = ap.parse_args(argv)
    if args.latency_ms is None:
        env_latency = os.environ.get("SERVE_LATENCY_MS", "").strip()
        try:
            args.latency_ms = float(env_latency) if env_latency else 0.0
        except ValueError:
            ap.error("SERVE_LATENCY_MS must be a number of milliseconds, got %r" % env_latency[:40])
    if not 0 <= args.port <= 65535:
        ap.error("--port must be between 0 and 65535, got %d" % args.port)
    if not math.isfinite(args.latency_ms) or args.latency_ms < 0:
        ap.error("--latency-ms must be >= 0")

    try:
        model = Model(args.model)
    except ModelError as e:
        print("serve: error: %s" % e, file=sys.stderr)
        return 2
    try:
        app = App(model, args.latency_ms, args.log_inputs)
    except OSError as e:
        print("serve: error: cannot open --log-inputs file: %s" % e, file=sys.stderr)
        return 2

    server_class = Server6 if ":" in args.host else Server
    try:
        httpd = server_class((args.host, args.port), Handler)
    except OSError as e:
        print("serve: error: cannot listen on %s:%d: %s" % (args.host, args.port, e.strerror or e), file=sys.stderr)
        app.close()
        return 1
    httpd.app = app
    app.ready.set()

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    host, port = httpd.server_address[:2]
    shown = "[%s]" % host if ":" in host else host
    print("serve: listening on http://%s:%d (model %s, %d features, sha256 %s)"
          % (shown, port, args.model, len(model.features), model.info["sha256"]), flush=True)

    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="http")
    thread.daemon = True
    thread.start()
    while not stop.wait(0.5):
        if not thread.is_alive():
            break
    print("serve: shutting down", flush=True)
    httpd.shutdown()
    app.wait_idle(3.0)  # let requests in progress finish
    httpd.server_close()
    app.close()
    print("serve: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
