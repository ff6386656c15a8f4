"""The embedded default stack: moto server, provisioning, gunicorn and Celery workers.

``make run`` (shared/dev/makerun.py) and the integration tests start the same processes
through ``Stack``; the child-process helpers (ports, waiting with a deadline, logs) are in
shared/dev/procs.py and re-exported here for the tests and benchmarks that import them.

    python -m shared.dev.devstack     (``make run``)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from shared.config.settings import Settings
from shared.dev.procs import Proc, StartError, free_port, http_ok, wait_until
from shared.model.taskmsg import ROLL_WINDOWS, celery_body
from shared.store import aws
from shared.store.provision import provision

__all__ = ["BIN", "ROOT", "Proc", "Stack", "StartError", "free_port", "http_ok", "wait_until"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DISTINCT = "SAFETYHEATMAP_PRIVACY_DISTINCT_SUBMITTERS"
DRAIN_S = 30.0  # a warm stop waits this long at most for the worker to empty the queue


@dataclass
class Stack:
    """Processes of one stack; ``env`` is what every child gets on top of os.environ."""

    run_dir: Path
    port: int = 0
    moto_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    """Where the emulator keeps its tables across restarts (shared/dev/persist.py); None, as
    the tests' stacks have it: nothing kept, each start empty."""
    procs: list[Proc] = field(default_factory=list)
    _worker_seq: int = 0

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.moto_port = self.moto_port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # One machine is one address: counting distinct submitters would count one. A local
        # stack counts every report unless told otherwise (the privacy tests set it).
        env.setdefault(DISTINCT, "false")
        env.update(
            {
                "SAFETYHEATMAP_PORT": str(self.port),
                "SAFETYHEATMAP_HOST": "127.0.0.1",
                "SAFETYHEATMAP_AWS_ENDPOINT_URL": self.moto_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    # --- processes ---------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> Proc:
        log = self.run_dir / f"{name}.log"
        handle = log.open("ab")
        start = handle.tell()
        popen = subprocess.Popen(  # noqa: S603 - argv is built from our own constants
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(name, popen, log, start)
        self.procs.append(proc)
        return proc

    def start_emulator(self) -> None:
        proc = self._spawn(
            "moto",
            # moto under gunicorn, its hot spots fixed (shared/dev/emulator.py and
            # shared/dev/motofixes.py).
            (
                [str(BIN / "python"), "-m", "shared.dev.emulator"]
                if self.settings().emulator_fixes
                else [str(BIN / "moto_server")]
            )
            + ["-H", "127.0.0.1", "-p", str(self.moto_port)]
            + self._data_args(),
        )
        wait_until(
            lambda: http_ok(f"{self.moto_url}/moto-api/"), 30, "moto server", proc.popen, proc.log
        )

    def _data_args(self) -> list[str]:
        if self.data_dir is None:
            return []
        if not self.settings().emulator_fixes:
            raise StartError(
                "DATA_DIR needs the emulator (EMULATOR_FIXES=true): stock moto keeps nothing"
            )
        return ["--data-dir", str(self.data_dir)]

    def provision(self) -> None:
        provision(self.settings())

    def start_web(self) -> None:
        self._wait_web(self._spawn_web())

    def start_worker(self) -> Proc:
        proc = self._spawn_worker()
        self._wait_worker(proc)
        return proc

    def _spawn_web(self) -> Proc:
        return self._spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "-c",
                str(ROOT / "web" / "gunicorn_conf.py"),
                "web.wsgi:create()",
            ],
        )

    def _wait_web(self, proc: Proc) -> None:
        wait_until(lambda: http_ok(f"{self.url}/healthz"), 60, "gunicorn", proc.popen, proc.log)

    def _spawn_worker(self) -> Proc:
        self._worker_seq += 1
        name = f"worker{self._worker_seq}"
        return self._spawn(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "workers.celery_app",
                "worker",
                "-n",
                f"{name}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                self.settings().log_level,
            ],
        )

    def _wait_worker(self, proc: Proc) -> None:
        wait_until(
            lambda: " ready." in proc.output(),
            60,
            f"celery {proc.name}",
            proc.popen,
            proc.log,
        )

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.name.startswith("worker") and p.popen.poll() is None]

    def stop_proc(self, proc: Proc, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        self._signal(proc, sig)
        self._reap(proc, timeout)

    @staticmethod
    def _signal(proc: Proc, sig: int) -> None:
        if proc.popen.poll() is None:
            # The main process only: gunicorn and Celery then stop their children warmly.
            proc.popen.send_signal(sig)

    def _reap(self, proc: Proc, timeout: float = 20.0) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout)
        # Whatever is left of the process group (a wedged child) goes now.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        if proc.popen.poll() is None:
            proc.popen.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def start(self, workers: int = 1) -> None:
        try:
            self.start_emulator()
            self.provision()
            # Web and workers start side by side: each spends its ~2 s start importing on its
            # own, and neither needs the other to come up.
            web = self._spawn_web()
            started = [self._spawn_worker() for _ in range(workers)]
            self._wait_web(web)
            for proc in started:
                self._wait_worker(proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Workers and web stop side by side (each drains on its own: the workers finish their
        # task, the web sends what it acknowledged), the emulator they both talk to last.
        # A stack that keeps its data stops the web first and lets the workers empty the queue:
        # the emulator saves its tables, not its queues.
        if self.data_dir is not None:
            for proc in [p for p in self.procs if p.name == "web"]:
                self.stop_proc(proc)
            self._drain(DRAIN_S)
        services = [p for p in self.procs if p.name != "moto"]
        for proc in services:
            self._signal(proc, signal.SIGTERM)
        for proc in services:
            self._reap(proc)
        self.stop_emulator()

    def _drain(self, timeout: float) -> bool:
        """Wait (bounded) until the queue holds no message, visible or in flight; False when
        the emulator is gone or the deadline passed (a stack without workers, a wedged one)."""
        if not self.workers() or not any(p.name == "moto" for p in self.procs):
            return False
        try:
            sqs = aws.client(self.settings(), "sqs", timeout=2.0, attempts=1)
            url = sqs.get_queue_url(QueueName=self.settings().queue_name)["QueueUrl"]
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

            def empty() -> bool:
                got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
                return all(int(got["Attributes"][n]) == 0 for n in names)

            wait_until(empty, timeout, "queue drained")
        except (StartError, OSError, ClientError, BotoCoreError):
            return False
        return True

    def scale_workers(self, count: int) -> None:
        """Start or warm-stop worker processes until `count` run (0 is allowed: reports wait)."""
        running = self.workers()
        for proc in running[count:]:
            self.stop_proc(proc)
        for _ in range(count - len(running)):
            self.start_worker()

    def apply_control(self, path: Path) -> bool:
        """`safetyheatmap scale` writes {"workers": N} here; the running stack obeys."""
        if not path.exists():
            return False
        try:
            wanted = int(json.loads(path.read_text())["workers"])
        except (ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            return False
        path.unlink(missing_ok=True)
        self.scale_workers(max(0, wanted))
        return True

    def kill(self, proc: Proc) -> None:
        """SIGKILL the whole process group: a crash, with no warm shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_emulator(self) -> None:
        # SIGINT, gunicorn's quick stop: its graceful one waits out open long polls (2 s); the
        # worker saves its tables first when it keeps them (shared/dev/emulator.py).
        for proc in [p for p in self.procs if p.name == "moto"]:
            self.stop_proc(proc, signal.SIGINT)

    def send_roll_windows(self) -> None:
        settings = self.settings()
        sqs = aws.client(settings, "sqs")
        url = sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
        sqs.send_message(
            QueueUrl=url, MessageBody=celery_body(ROLL_WINDOWS, [], settings.queue_name)
        )

    def write_state(self, path: Path) -> None:
        """Written aside and renamed over: `safetyheatmap` reads it while `scale` rewrites it,
        and a reader once met the file truncated but not yet written (an empty document)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "url": self.url,
                    "moto_url": self.moto_url,
                    "pid": os.getpid(),
                    "processes": {p.name: p.popen.pid for p in self.procs},
                    "workers": len(self.workers()),
                },
                indent=2,
            )
        )
        tmp.replace(path)


if __name__ == "__main__":
    # Imported here: makerun imports this module (which, run as a script, is __main__).
    from shared.dev.makerun import main

    sys.exit(main())
