"""sessionward and its peers over HTTP: req/s of each peer's verify, refresh and create,
as a ratio to the bare framework measured in the same round.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/peers.py [--duration 5] [--rounds 5] [--frameworks fastapi,flask,django]

Per framework, every app of ``bench/peer_apps/catalog.py`` (one server per app and
algorithm, one worker pinned to CPU 1: uvicorn for FastAPI, gunicorn sync for Flask and
Django) is driven by ``wrk -t2 -c50`` pinned to CPU 0 on 127.0.0.1, every cell once per
round, in the same order. A wrk Lua script counts every answer that is not 200: a cell
with any is reported invalid. Refresh cells chain: each answer's new refresh token is the
token of a later request (every request a distinct, valid rotation); create cells POST to
a login endpoint without input. Prints the machine and Markdown tables, and writes the
chart ``docs/benchmarks-peers.svg``. Needs ``wrk`` (Debian package) and ``taskset``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _harness import machine_info
from http_servers import free_port, server_command, server_cpu_seconds
from peers_chart import write_chart

from sessionward import Config, SessionWard

HERE = Path(__file__).resolve().parent
PEER_APPS = HERE / "peer_apps"
sys.path.insert(0, str(PEER_APPS))
import catalog  # noqa: E402

SVG = HERE.parent / "docs" / "benchmarks-peers.svg"
# supertokens-jwt-ref works with Django 4.2, not 5: it gets a virtualenv of its own.
SUPERTOKENS_REF_REQUIREMENTS = ("supertokens-jwt-ref>=2.0", "django>=4.2,<5", "gunicorn>=22.0", "httpx>=0.27")
SEEDS_PER_THREAD = 32  # > the 25 connections of each wrk thread: the chain never runs dry
THREADS = 2
CONNECTIONS = 50

LUA = r"""
local threads, next_id = {}, 1
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local mode = os.getenv("BENCH_LUA_MODE")
bad = 0
local pool, position = {}, 0
local queue, head, tail = {}, 1, 0

function init(args)
  if mode == "pool" then
    for line in io.lines(os.getenv("BENCH_POOL_FILE")) do pool[#pool + 1] = line end
    position = math.random(#pool)
  elseif mode == "chain-cookie" or mode == "chain-json" then
    local per = tonumber(os.getenv("BENCH_SEEDS_PER_THREAD"))
    local low = tonumber(os.getenv("BENCH_SEED_FIRST")) + (tid - 1) * per
    local index = 0
    for line in io.lines(os.getenv("BENCH_SEED_FILE")) do
      if index >= low and index < low + per then tail = tail + 1; queue[tail] = line end
      index = index + 1
    end
  end
end

if mode == "post" then wrk.method = "POST" end

if mode == "pool" then
  function request()
    position = position % #pool + 1
    return wrk.format("GET", wrk.path, {["Cookie"] = pool[position]})
  end
elseif mode == "chain-cookie" or mode == "chain-json" then
  function request()
    local token = "exhausted"
    if head <= tail then token = queue[head]; queue[head] = nil; head = head + 1 end
    if mode == "chain-cookie" then
      return wrk.format("POST", wrk.path, {["Cookie"] = token})
    end
    return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"},
                      '{"refresh": "' .. token .. '"}')
  end
end

function response(status, headers, body)
  if status ~= 200 then bad = bad + 1; return end
  if mode == "chain-cookie" then
    local token = headers["x-bench-refresh-token"]
    if token then tail = tail + 1; queue[tail] = token else bad = bad + 1 end
  elseif mode == "chain-json" then
    local token = string.match(body, '"refresh"%s*:%s*"([^"]+)"')
    if token then tail = tail + 1; queue[tail] = token else bad = bad + 1 end
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("bad") or 0) end
  io.write(string.format("bench-not-200: %d\n", total))
end
"""


@dataclass(frozen=True)
class Cell:
    """One measured thing: an app at an algorithm doing one operation."""

    app: catalog.PeerApp
    algorithm: str
    operation: str  # plain, verify, verify, cache miss, refresh, create

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.app.framework, self.app.label, self.operation, self.algorithm)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str


@dataclass
class Sample:
    rps: float
    requests: int
    not_200: int
    socket_errors: int


def ensure_own_virtualenv(app: catalog.PeerApp) -> str | None:
    """Create the app's own virtualenv if it has one and it is missing; the reason it cannot
    be used, or ``None`` when it is ready."""
    if app.python is None:
        return None
    python = HERE / app.python
    if python.exists():
        return None
    venv = python.parent.parent
    print(f"creating {venv.relative_to(HERE.parent)} ...", file=sys.stderr, flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *SUPERTOKENS_REF_REQUIREMENTS],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode:
            shutil.rmtree(venv, ignore_errors=True)
            return f"`{' '.join(step[2:])}` failed: {result.stderr.strip().splitlines()[-1:]}"
    return None


def sessionward_store(work: Path, algorithm: str) -> str:
    """The store of every sessionward app at ``algorithm`` (all frameworks share it, and so
    the pool of the cache-miss cells)."""
    return f"sqlite:///{work}/sessionward-{algorithm.lower()}.sqlite3"


def mint_pool(work: Path, algorithm: str, size: int) -> Path:
    """``size`` distinct sessions in the store of the sessionward apps at ``algorithm``, as
    the ``Cookie`` values of ``/protected`` (minted in-process: faster than over HTTP)."""
    print(f"minting {size} sessionward sessions ({algorithm}) ...", file=sys.stderr, flush=True)
    config = Config(
        store=sessionward_store(work, algorithm), cookie_secure=False, access_token_algorithm=algorithm
    )
    pool = work / f"pool-sessionward-{algorithm}.txt"
    with SessionWard(config) as engine, pool.open("w") as out:
        for i in range(size):
            tokens = engine.create_new_session(f"user-{i}")
            out.write(
                f"sAccessToken={tokens.access_token.value}; sIdRefreshToken={tokens.id_refresh_token.value}\n"
            )
    return pool


def start_server(app: catalog.PeerApp, algorithm: str, env: dict[str, str]) -> Server:
    port = free_port()
    python = str(HERE / app.python) if app.python else sys.executable
    command = server_command(app.framework, port, app=f"{app.module}:app", app_dir=PEER_APPS, python=python)
    server_env = {**env, "BENCH_ALG": "HS256" if algorithm == "-" else algorithm}
    if app.label == "sessionward":
        server_env["SESSIONWARD_STORE"] = sessionward_store(Path(env["BENCH_WORKDIR"]), algorithm)
    process = subprocess.Popen(command, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Server(process, f"http://127.0.0.1:{port}")


def wait_and_check(server: Server, app: catalog.PeerApp, algorithm: str) -> None:
    """Wait for the server, then run the app's self-check against it; exit on a problem."""
    deadline = time.monotonic() + 60
    path = "/plain" if app.bare or "plain" in app.operations else "/protected"
    while True:
        try:
            httpx.get(server.base + path)
            break
        except httpx.TransportError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{app.module} ({algorithm}) did not start")
            time.sleep(0.2)
    with httpx.Client(base_url=server.base) as client:
        problems = catalog.check(client, app)
    if problems:
        sys.exit("\n".join(problems))


def login_many(server: Server, count: int, app: catalog.PeerApp) -> list[catalog.Credentials]:
    with httpx.Client(base_url=server.base) as client:
        out = []
        for _ in range(count):
            response = client.post("/login")
            response.raise_for_status()
            client.cookies.clear()
            out.append(catalog.credentials(response, app.refresh))
        return out


def run_wrk(url: str, duration: int, env: dict[str, str], lua: Path, headers: dict[str, str]) -> Sample:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    # A long timeout: a documented set-up that parses a PEM key per request answers a few
    # requests per second, and 50 queued connections would otherwise time out.
    command = [*pin, "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "60s"]
    command += ["-s", str(lua)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run([*command, url], capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        raise RuntimeError(f"wrk failed on {url}:\n{result.stdout}{result.stderr}")
    output = result.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    not_200 = re.search(r"bench-not-200: (\d+)", output)
    if rps is None or count is None or not_200 is None:
        raise RuntimeError(f"wrk output not understood:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    return Sample(float(rps.group(1)), int(count.group(1)), int(not_200.group(1)), socket_errors)


def wait_idle(server: Server, limit: float = 180) -> None:
    """Wait until the server has used no CPU for 0.3 s: requests wrk left queued when it
    stopped (50 of them, at a few req/s for a slow cell) must not run during the next cell."""
    deadline = time.monotonic() + limit
    before = server_cpu_seconds(server.process.pid)
    while before is not None and time.monotonic() < deadline:
        time.sleep(0.3)
        after = server_cpu_seconds(server.process.pid)
        if after is None or after == before:
            return
        before = after


class Framework:
    """The servers and prepared tokens of one framework's cells."""

    def __init__(self, name: str, env: dict[str, str], work: Path, args: argparse.Namespace) -> None:
        self.name = name
        self.env = env
        self.work = work
        self.args = args
        self.apps = []
        self.skipped: list[str] = []
        for app in catalog.APPS:
            if app.framework != name:
                continue
            reason = ensure_own_virtualenv(app)
            if reason is None:
                self.apps.append(app)
            else:
                self.skipped.append(f"{app.label}: not measured, {reason}")
                print(self.skipped[-1], file=sys.stderr)
        self.cells: list[Cell] = []
        for app in self.apps:
            if app.bare:
                self.cells.insert(0, Cell(app, "-", "plain"))
                continue
            for algorithm in app.algorithms:
                self.cells += [Cell(app, algorithm, operation) for operation in app.operations]
        self.servers: dict[tuple[str, str], Server] = {}
        self.credentials: dict[tuple[str, str], catalog.Credentials] = {}
        self.pools: dict[tuple[str, str], Path] = {}
        self.seeds: dict[tuple[str, str], Path] = {}
        self.seed_offset: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        for app in self.apps:
            for algorithm in app.algorithms:
                self.servers[app.label, algorithm] = start_server(app, algorithm, self.env)
        for app in self.apps:
            for algorithm in app.algorithms:
                wait_and_check(self.servers[app.label, algorithm], app, algorithm)

    def stop(self) -> None:
        for server in self.servers.values():
            server.process.terminate()
        for server in self.servers.values():
            server.process.wait(timeout=15)

    def prepare(self) -> None:
        """Log in once per server; a pool of distinct sessions for cache-miss cells; refresh
        tokens to seed every run of every refresh cell (warm-up included)."""
        runs = self.args.rounds + 1
        for cell in self.cells:
            key = (cell.app.label, cell.algorithm)  # two apps may share a module
            server = self.servers[key]
            if cell.operation == "verify" and key not in self.credentials:
                self.credentials[key] = login_many(server, 1, cell.app)[0]
            elif cell.operation == "verify, cache miss":
                pool = self.work / f"pool-sessionward-{cell.algorithm}.txt"
                if not pool.exists():
                    mint_pool(self.work, cell.algorithm, self.args.pool)
                self.pools[key] = pool
            elif cell.operation == "refresh":
                assert cell.app.refresh is not None
                if cell.app.refresh.mode == "bearer":  # no rotation: one token serves every request
                    self.credentials.setdefault(key, login_many(server, 1, cell.app)[0])
                    continue
                creds = login_many(server, runs * THREADS * SEEDS_PER_THREAD, cell.app)
                seeds = self.work / f"seeds-{cell.app.module}-{len(self.seeds)}.txt"
                seeds.write_text("".join(f"{c.refresh_token}\n" for c in creds))
                self.seeds[key] = seeds
                self.seed_offset[key] = 0

    def measure(self, cell: Cell, duration: int, lua: Path) -> Sample:
        key = (cell.app.label, cell.algorithm)  # two apps may share a module
        server = self.servers[key]
        env = dict(self.env)
        headers: dict[str, str] = {}
        if cell.operation == "plain":
            path, mode = "/plain", "get"
        elif cell.operation == "verify":
            path, mode, headers = "/protected", "get", self.credentials[key].headers
        elif cell.operation == "verify, cache miss":
            path, mode = "/protected", "pool"
            env["BENCH_POOL_FILE"] = str(self.pools[key])
        elif cell.operation == "create":
            path, mode = "/login", "post"
        else:
            refresh = cell.app.refresh
            assert refresh is not None
            path = refresh.path
            if refresh.mode == "bearer":
                mode = "post"
                token = self.credentials[key].refresh_token
                headers = {"Authorization": f"Bearer {token}"}
            else:
                mode = f"chain-{refresh.mode}"
                env["BENCH_SEED_FILE"] = str(self.seeds[key])
                env["BENCH_SEED_FIRST"] = str(self.seed_offset[key])
                env["BENCH_SEEDS_PER_THREAD"] = str(SEEDS_PER_THREAD)
                self.seed_offset[key] += THREADS * SEEDS_PER_THREAD
        env["BENCH_LUA_MODE"] = mode
        sample = run_wrk(server.base + path, duration, env, lua, headers)
        wait_idle(server)
        return sample


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)  # stop the servers on the way out, as on Ctrl-C
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frameworks", default="fastapi,flask,django")
    parser.add_argument("--pool", type=int, default=12_000, help="distinct sessions of the cache-miss cells")
    parser.add_argument("--svg", type=Path, default=SVG, help="where to write the chart")
    parser.add_argument(
        "--chart-from", type=Path, help="only redraw the chart from a report this script printed before"
    )
    args = parser.parse_args()
    if args.chart_from is not None:
        rows, note = rows_from_report(args.chart_from.read_text())
        write_chart(args.svg, rows, note)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="sessionward-peers-bench-"))
    private_pem, public_pem = catalog.rsa_pems()
    env = {
        **os.environ,
        "BENCH_WORKDIR": str(work),
        "BENCH_RSA_PRIVATE_KEY": private_pem,
        "BENCH_RSA_PUBLIC_KEY": public_pem,
    }
    lua = work / "bench.lua"
    lua.write_text(LUA)
    samples: dict[tuple[str, str, str, str], list[Sample]] = {}
    ratios: dict[tuple[str, str, str, str], list[float]] = {}
    load_before = os.getloadavg()[0]
    skipped: list[str] = []
    try:
        for name in args.frameworks.split(","):
            framework = Framework(name, env, work, args)
            skipped += framework.skipped
            print(f"{name}: starting {len(framework.apps)} apps", file=sys.stderr, flush=True)
            framework.start()
            try:
                framework.prepare()
                for cell in framework.cells:  # warm-up
                    framework.measure(cell, 1, lua)
                for round_number in range(args.rounds):
                    # The bare app opens and closes the round: a drift of the shared machine
                    # within the round hits the reference like the cells.
                    bare_cell = framework.cells[0]
                    round_samples = [
                        (cell, framework.measure(cell, args.duration, lua)) for cell in framework.cells
                    ]
                    round_samples.append((bare_cell, framework.measure(bare_cell, args.duration, lua)))
                    bare_rps = [sample.rps for cell, sample in round_samples if cell is bare_cell]
                    bare = math.sqrt(bare_rps[0] * bare_rps[1])
                    for cell, sample in round_samples:
                        samples.setdefault(cell.key, []).append(sample)
                        if cell is not bare_cell:
                            ratios.setdefault(cell.key, []).append(sample.rps / bare)
                    print(f"  {name}: round {round_number + 1}/{args.rounds}", file=sys.stderr, flush=True)
            finally:
                framework.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, samples, ratios, (load_before, os.getloadavg()[0]))
    for line in skipped:
        print(f"- {line}")
    write_chart(args.svg, chart_rows(samples, ratios), title_note(args))
    print(f"\nchart written to {args.svg}", file=sys.stderr)


def title_note(args: argparse.Namespace) -> str:
    return (
        f"req/s as a ratio to the bare framework in the same round (median of {args.rounds} "
        f"rounds of {args.duration} s); one worker, wrk -t{THREADS} -c{CONNECTIONS}"
    )


OPERATIONS = ("plain", "verify", "verify, cache miss", "refresh", "create")


def sort_key(key: tuple[str, str, str, str]) -> tuple[int, bool, bool, str, str]:
    """Operations in order, the bare app first, then sessionward, then the peers by name."""
    _, label, operation, algorithm = key
    return (
        OPERATIONS.index(operation),
        not label.startswith("bare"),
        label != "sessionward",
        label,
        algorithm,
    )


def valid(cell_samples: list[Sample]) -> bool:
    """Every request of every round answered 200, with no socket error."""
    return all(s.not_200 == 0 and s.socket_errors == 0 for s in cell_samples)


def chart_rows(
    samples: dict[tuple[str, str, str, str], list[Sample]],
    ratios: dict[tuple[str, str, str, str], list[float]],
) -> list[tuple[str, str, float, bool]]:
    """(framework, label, median ratio, valid) per measured cell, bare apps left out."""
    rows = []
    frameworks = list(dict.fromkeys(key[0] for key in samples))
    for key in sorted(ratios, key=lambda k: (frameworks.index(k[0]), sort_key(k))):
        values = ratios[key]
        framework, label, operation, algorithm = key
        alg = "" if algorithm == "-" else f" {algorithm}"
        rows.append(
            (
                framework,
                operation,
                f"{label}: {operation}{alg}",
                statistics.median(values),
                valid(samples[key]),
            )
        )
    return rows


def rows_from_report(text: str) -> tuple[list[tuple[str, str, str, float, bool]], str]:
    """The chart rows and title of a report printed by ``report``."""
    rows = []
    framework = ""
    for line in text.splitlines():
        if line.startswith("## "):
            framework = line[3:].strip()
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if framework and len(cells) == 7 and cells[5].endswith(("x", "(invalid)")):
            operation, label, algorithm, _, _, ratio, _ = cells
            if label.startswith("bare ") and operation == "plain" and ratio == "1.00x":
                continue
            label = label.strip("*")
            alg = "" if algorithm == "-" else f" {algorithm}"
            rows.append(
                (
                    framework,
                    operation,
                    f"{label}: {operation}{alg}",
                    float(ratio.split("x")[0]),
                    "invalid" not in ratio,
                )
            )
    match = re.search(r"-d(\d+)s \(taskset CPU 0\), (\d+) interleaved rounds", text)
    duration, rounds = match.groups() if match else ("?", "?")
    note = argparse.Namespace(duration=duration, rounds=rounds)
    return rows, title_note(note)


def report(
    args: argparse.Namespace,
    samples: dict[tuple[str, str, str, str], list[Sample]],
    ratios: dict[tuple[str, str, str, str], list[float]],
    load: tuple[float, float],
) -> None:
    print("# sessionward and its peers (wrk, 127.0.0.1)\n")
    for line in machine_info():
        print(f"- {line}")
    print(
        f"- one server worker (taskset CPU 1), wrk -t{THREADS} -c{CONNECTIONS} -d{args.duration}s "
        f"(taskset CPU 0), {args.rounds} interleaved rounds; load average {load[0]:.2f} at the start, "
        f"{load[1]:.2f} at the end"
    )
    print(
        "- ratio = median over the rounds of (req/s of the cell / req/s of the bare framework "
        "in the same round, measured first and last in the round: geometric mean); not 200 = "
        "answers other than 200 plus socket errors, all rounds "
        "(a cell with any is invalid); req/s 0 = no request completed within a run\n"
    )
    for framework in args.frameworks.split(","):
        keys = sorted((key for key in samples if key[0] == framework), key=sort_key)
        print(f"## {framework}\n")
        print("| operation | library | alg | req/s (median) | min-max | ratio to bare | not 200 |")
        print("|---|---|---|---|---|---|---|")
        for key in keys:
            _, label, operation, algorithm = key
            rps = [s.rps for s in samples[key]]
            bad = sum(s.not_200 + s.socket_errors for s in samples[key])
            median_ratio = statistics.median(ratios[key]) if key in ratios else 1.0
            ratio = f"{median_ratio:.2f}x" + ("" if valid(samples[key]) else " (invalid)")
            name = f"**{label}**" if label == "sessionward" else label
            print(
                f"| {operation} | {name} | {algorithm} | {statistics.median(rps):,.0f} | "
                f"{min(rps):,.0f}-{max(rps):,.0f} | {ratio} | {bad} |"
            )
        print()


if __name__ == "__main__":
    main()
