"""Every celery_schedule benchmark, side by side with Celery's own calls, in one run.

    python benchmarks/run.py            # the full run the docs report (PostgreSQL + SQLite, Redis)
    python benchmarks/run.py --quick    # small N, for development

Each measurement runs in a child process per database (Django settings are per
process) on its own test database (test_bench_run_*) and its own Redis db/queues.
Exits 1 when a floor is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "artifacts" / "bench"
PREFIX = "bench_run"
BROKER = "redis://127.0.0.1:6379/11"
BACKEND = "redis://127.0.0.1:6379/10"
QUEUE = f"{PREFIX}-test"

FULL = {"dispatch": 20_000, "schedule": 3_000, "bulk": 20_000, "scale_due": 5_000,
        "scale_small": 10_000, "scale_big": 1_000_000, "memory": 100_000, "latency": 1_000}
QUICK = {"dispatch": 2_000, "schedule": 300, "bulk": 2_000, "scale_due": 1_000,
         "scale_small": 10_000, "scale_big": 100_000, "memory": 5_000, "latency": 200}
FLOORS = {"dispatch": 1.0, "schedule": 0.5, "bulk": 5.0}
THIRTY_DAYS = timedelta(days=30)
THIRTY_DAYS_S = 30 * 86400


def child_env(db: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        CELERY_SCHEDULE_TEST_PREFIX=PREFIX,
        CELERY_SCHEDULE_TEST_DB=db,
        CELERY_SCHEDULE_TEST_BROKER=BROKER,
        CELERY_SCHEDULE_TEST_BACKEND=BACKEND,
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


# ---------------------------------------------------------------- child side


class Proc:
    """A worker or dispatcher loop started by the benchmark, logging to artifacts/bench/."""

    def __init__(self, name: str, argv: list[str], **env: str):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.path = LOGS / f"{name}.log"
        self.log = open(self.path, "w")
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env=child_env(os.environ["CELERY_SCHEDULE_TEST_DB"], CELERY_SCHEDULE_IN_TEST_DB="1",
                          **env))

    def wait_for(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.path.read_text(errors="replace"):
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.path} exited:\n{self.path.read_text()[-2000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{text!r} not in {self.path}")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.log.close()


def worker(name: str, queue: str, **env: str) -> Proc:
    proc = Proc(name, [sys.executable, "-m", "celery", "-A", "tests.proj", "worker", "-P", "solo",
                       "-l", "info", "-Q", queue, "-n", f"{name}-{os.getpid()}@%h",
                       "--without-gossip", "--without-mingle", "--without-heartbeat"], **env)
    proc.wait_for("ready.")
    return proc


def dispatcher_loop(name: str, **env: str) -> Proc:
    proc = Proc(name, [sys.executable, "-m", "django", "enqueue_due_tasks", "--loop",
                       "--interval", "1"], **env)
    proc.wait_for("dispatcher loop started")
    return proc


def purge(*queues: str) -> None:
    import redis

    client = redis.Redis.from_url(BROKER)
    for queue in queues:
        client.delete(queue, *[f"{queue}\x06\x16{p}" for p in (1, 2, 3, 4, 5, 6, 7, 8, 9)])


def queue_length(queue: str) -> int:
    import redis

    return redis.Redis.from_url(BROKER).llen(queue)


def best_rate(n: int, run, prepare=None, reps: int = 2) -> float:
    """The best of `reps` rates (calls per second) of `run()`, which makes `n` calls."""
    rates = []
    for _ in range(reps):
        if prepare:
            prepare()
        start = time.perf_counter()
        run()
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def insert_due(n: int, task_name: str) -> None:
    from celery.utils import uuid

    from celery_schedule.models import ScheduledTask
    from celery_schedule.when import now_utc

    due = now_utc() - timedelta(seconds=1)
    ScheduledTask.objects.bulk_create(
        [ScheduledTask(task_id=uuid(), task_name=task_name, task_args=[i], due_at=due)
         for i in range(n)], batch_size=5000)


def clear() -> None:
    from celery_schedule.models import ScheduledTask

    ScheduledTask.objects.all().delete()
    purge(QUEUE)


def measure_rates(sizes: dict[str, int]) -> dict[str, float]:
    from django.db import transaction

    from celery_schedule import schedule_many
    from celery_schedule.dispatch import dispatch_due
    from tests.proj.celery import app
    from tests.proj.tasks import punch_out

    out: dict[str, float] = {}

    n = sizes["dispatch"]

    def celery_loop(countdown=None):
        with app.producer_or_acquire() as producer:
            for i in range(n):
                punch_out.apply_async((i,), producer=producer, countdown=countdown)

    def dispatch_all():
        while dispatch_due(limit=n).dispatched:
            pass
        assert queue_length(QUEUE) == n, queue_length(QUEUE)

    out["dispatch_celery"] = best_rate(n, celery_loop, clear)
    out["dispatch_ours"] = best_rate(
        n, dispatch_all, lambda: (clear(), insert_due(n, punch_out.name)))

    n = sizes["schedule"]

    def schedule_each():
        for i in range(n):
            with transaction.atomic():
                punch_out.schedule(args=[i], countdown=THIRTY_DAYS)

    def apply_each():
        for i in range(n):
            punch_out.apply_async((i,), countdown=THIRTY_DAYS_S)

    out["schedule_celery"] = best_rate(n, apply_each, clear)
    out["schedule_ours"] = best_rate(n, schedule_each, clear)

    n = sizes["bulk"]
    out["bulk_celery"] = best_rate(n, lambda: celery_loop(THIRTY_DAYS_S), clear, reps=1)
    out["bulk_ours"] = best_rate(
        n, lambda: schedule_many([(punch_out.s(i), THIRTY_DAYS) for i in range(n)]), clear)
    clear()
    return out


def measure_scale(sizes: dict[str, int]) -> dict:
    from django.db import connection, transaction

    from celery_schedule.dispatch import dispatch_due
    from celery_schedule.models import ScheduledTask
    from celery_schedule.when import now_utc
    from tests.proj.tasks import punch_out

    table = ScheduledTask._meta.db_table
    due = sizes["scale_due"]
    out: dict = {}
    for label, future in (("small", sizes["scale_small"]), ("big", sizes["scale_big"])):
        clear()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (task_id, task_name, task_args, task_kwargs, options, "
                "due_at, state, attempts, last_error, created_at) "
                "SELECT 'future-' || g, %s, '[1]'::jsonb, '{}'::jsonb, '{}'::jsonb, "
                "now() + interval '30 days' + g * interval '1 second', 'pending', 0, '', now() "
                "FROM generate_series(1, %s) g", [punch_out.name, future])
            cursor.execute(f"ANALYZE {table}")
        insert_due(due, punch_out.name)
        start = time.perf_counter()
        while dispatch_due(limit=due).dispatched:
            pass
        out[f"scale_{label}_s"] = time.perf_counter() - start
        assert queue_length(QUEUE) == due
        if label == "big":
            insert_due(10, punch_out.name)
            qs = ScheduledTask.objects.due(now_utc()).select_for_update(skip_locked=True)[:1000]
            with transaction.atomic(), connection.cursor() as cursor:
                sql, params = qs.query.sql_with_params()
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
                out["plan"] = "\n".join(row[0] for row in cursor.fetchall())
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) DELETE FROM "
                               f"{table} WHERE id IN (SELECT id FROM {table} WHERE state = "
                               "'pending' AND due_at <= now() ORDER BY due_at LIMIT 1000)")
                out["plan_delete"] = "\n".join(row[0] for row in cursor.fetchall())
    clear()
    out["scale_ratio"] = out["scale_big_s"] / out["scale_small_s"]
    return out


def settle_rss(proc: Proc, queue: str, timeout: float = 240.0) -> float:
    """The worker's RSS once the queue is drained and RSS stopped growing."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        time.sleep(3)
        rss = proc.rss_mb()
        if queue_length(queue) == 0 and abs(rss - last) < 1.0:
            return rss
        last = rss
    return proc.rss_mb()


def measure_memory(sizes: dict[str, int]) -> dict:
    from celery_schedule import schedule_many
    from tests.proj.celery import app
    from tests.proj.tasks import punch_out

    n = sizes["memory"]
    queue = f"{PREFIX}-mem"
    purge(queue)
    clear()
    proc = worker("mem-worker", queue)
    try:
        out = {"rss_start_mb": settle_rss(proc, queue)}
        for start in range(0, n, 10_000):
            schedule_many([(punch_out.s(i).set(queue=queue), THIRTY_DAYS)
                           for i in range(start, min(n, start + 10_000))])
        out["rss_after_schedule_mb"] = settle_rss(proc, queue)
        with app.producer_or_acquire() as producer:
            for start in range(0, n, 5_000):
                with producer.batch(max_size=20_000):
                    for i in range(start, min(n, start + 5_000)):
                        punch_out.apply_async((i,), countdown=THIRTY_DAYS_S, queue=queue,
                                              producer=producer)
        out["rss_after_apply_async_mb"] = settle_rss(proc, queue)
    finally:
        proc.stop()
        purge(queue)
        clear()
    return out


def measure_duplicates() -> dict:
    from tests.proj.tasks import RUNS, punch_out

    env = {"BENCH_VISIBILITY_TIMEOUT": "10"}
    countdown = 130
    procs = [dispatcher_loop("dup-loop", **env)]
    ids = {}
    try:
        procs += [worker("dupA-1", f"{PREFIX}-dupA", **env),
                  worker("dupA-2", f"{PREFIX}-dupA", **env),
                  worker("dupB-1", f"{PREFIX}-dupB", **env)]
        start = time.monotonic()
        for variant in ("A", "B"):
            queue = f"{PREFIX}-dup{variant}"
            ids[f"eta_{variant}"] = punch_out.apply_async((1,), countdown=countdown,
                                                          queue=queue).id
            ids[f"ours_{variant}"] = punch_out.schedule(args=[2], countdown=countdown,
                                                        queue=queue).id
        time.sleep(max(0.0, start + 15 - time.monotonic()))
        procs.append(worker("dupB-2", f"{PREFIX}-dupB", **env))
        time.sleep(max(0.0, start + countdown + 45 - time.monotonic()))
    finally:
        for proc in procs:
            proc.stop()
        purge(f"{PREFIX}-dupA", f"{PREFIX}-dupB")
    return {f"runs_{name}": RUNS.llen(f"runs:{task_id}") for name, task_id in ids.items()}


def measure_latency(sizes: dict[str, int]) -> dict:
    from kombu import Queue

    from celery_schedule import schedule_many
    from celery_schedule.when import now_utc
    from tests.proj.celery import app
    from tests.proj.tasks import punch_out

    n = sizes["latency"]
    queue = f"{PREFIX}-lat"
    purge(queue)
    clear()
    loop = dispatcher_loop("latency-loop")
    try:
        first = now_utc() + timedelta(seconds=3)
        due = {}
        items = []
        for i in range(n):
            at = first + timedelta(seconds=10 * i / n)
            sig = punch_out.s(i).set(queue=queue)
            items.append((sig, at))
        for result, (_, at) in zip(schedule_many(items), items, strict=True):
            due[result.id] = at
        lags = []
        with app.connection_for_read() as conn, conn.SimpleQueue(Queue(queue)) as simple:
            deadline = time.monotonic() + 40
            while len(lags) < n and time.monotonic() < deadline:
                try:
                    msg = simple.get(block=True, timeout=1)
                except simple.Empty:
                    continue
                lags.append((now_utc() - due[msg.headers["id"]]).total_seconds())
                msg.ack()
    finally:
        loop.stop()
        purge(queue)
        clear()
    lags.sort()
    return {"latency_n": len(lags), "latency_p50_ms": 1000 * statistics.median(lags),
            "latency_p99_ms": 1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))]}


def run_child(parts: list[str], quick: bool) -> dict:
    import django

    django.setup()
    from django.test.utils import setup_databases, teardown_databases

    sizes = QUICK if quick else FULL
    old = setup_databases(verbosity=0, interactive=False)
    out: dict = {}
    try:
        for part in parts:
            out.update({
                "rates": lambda: measure_rates(sizes),
                "scale": lambda: measure_scale(sizes),
                "memory": lambda: measure_memory(sizes),
                "duplicates": measure_duplicates,
                "latency": lambda: measure_latency(sizes),
            }[part]())
    finally:
        teardown_databases(old, verbosity=0)
    return out


# --------------------------------------------------------------- parent side


def spawn(db: str, parts: list[str], quick: bool, **env: str) -> dict:
    argv = [sys.executable, str(Path(__file__)), "--child", ",".join(parts)]
    if quick:
        argv.append("--quick")
    print(f"... {db}: {', '.join(parts)}", flush=True)
    done = subprocess.run(argv, cwd=ROOT, env=child_env(db, **env), capture_output=True,
                          text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"benchmark child ({db}: {parts}) failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict, quick: bool) -> int:
    missed = []
    print()
    print("| measurement | database | celery_schedule | Celery | ratio | floor |")
    print("|---|---|---|---|---|---|")
    labels = {"dispatch": "dispatch (msgs/s)", "schedule": "schedule, 1 tx each (calls/s)",
              "bulk": "schedule_many vs apply_async loop (calls/s)"}
    for db in ("postgres", "sqlite"):
        r = results[db]
        for name, label in labels.items():
            ours, theirs = r[f"{name}_ours"], r[f"{name}_celery"]
            ratio = ours / theirs
            ok = ratio >= FLOORS[name]
            missed += [] if ok else [f"{name} on {db}: {ratio:.2f}x < {FLOORS[name]}x"]
            print(f"| {label} | {db} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f}x | "
                  f"{FLOORS[name]}x {'ok' if ok else 'MISSED'} |")
    pg = results["postgres"]
    print(f"\nscale (PostgreSQL): dispatch {pg.get('scale_n', '')} due rows beside small/big "
          f"future table: {pg['scale_small_s']:.2f} s / {pg['scale_big_s']:.2f} s, "
          f"ratio {pg['scale_ratio']:.2f} (target <= 1.2)")
    print("\nquery plan of the claim (1M future rows):\n" + pg["plan"])
    print("\nquery plan of a batch delete:\n" + pg["plan_delete"])
    print(f"\nworker RSS: at start {pg['rss_start_mb']:.0f} MB, after schedule() "
          f"{pg['rss_after_schedule_mb']:.0f} MB, after apply_async(countdown) "
          f"{pg['rss_after_apply_async_mb']:.0f} MB")
    if "runs_eta_A" in pg:
        print(f"\nduplicates (visibility_timeout 10 s, due in 130 s): two workers: Celery eta ran "
              f"{pg['runs_eta_A']}x, schedule() ran {pg['runs_ours_A']}x; second worker started "
              f"after the timeout: Celery eta ran {pg['runs_eta_B']}x, schedule() ran "
              f"{pg['runs_ours_B']}x")
    print(f"\nlatency of enqueue_due_tasks --loop ({pg['latency_n']} tasks due over 10 s): "
          f"p50 {pg['latency_p50_ms']:.0f} ms, p99 {pg['latency_p99_ms']:.0f} ms")
    print("\n(quick run: small N, not the reported figures)" if quick else "")
    for line in missed:
        print("FLOOR MISSED:", line)
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, for development")
    parser.add_argument("--no-duplicates", action="store_true",
                        help="skip the ~3 min duplicates measurement")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run_child(args.child.split(","), args.quick)))
        return 0
    started = time.monotonic()
    results = {
        "postgres": spawn("postgres", ["rates", "scale", "memory", "latency"], args.quick),
        "sqlite": spawn("sqlite", ["rates"], args.quick),
    }
    if not args.no_duplicates:
        results["postgres"].update(
            spawn("postgres", ["duplicates"], args.quick, BENCH_VISIBILITY_TIMEOUT="10"))
    results["postgres"]["scale_n"] = (QUICK if args.quick else FULL)["scale_due"]
    code = report(results, args.quick)
    print(f"total time {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
