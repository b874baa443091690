"""HTTP benchmark: requests/s of an endpoint behind ``verify_session`` vs the same endpoint
without it, and vs one doing the bare crypto floor, under ``wrk`` on 127.0.0.1.

    .venv/bin/python bench/http_servers.py [--duration 5] [--rounds 5] [--frameworks fastapi,flask,django]

One server worker pinned to CPU 1, ``wrk -t2 -c50`` pinned to CPU 0 (``taskset``); endpoints
measured in interleaved rounds, medians reported. "cached" sends one token (the engine's
verified-token cache answers); "pool" cycles through more distinct tokens than the cache
holds, so every verification is a miss, compared with the floor app verifying the same pool.
Needs ``wrk`` (Debian package) and ``taskset`` (util-linux).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization

from sessionward import Config, SessionWard

HERE = Path(__file__).resolve().parent
APPS = HERE / "http_apps"
POOL_SIZE = 12_000
CACHE_SIZE = 10_000
LUA_POOL = """
local tokens = {}
for line in io.lines(os.getenv("BENCH_POOL_FILE")) do tokens[#tokens + 1] = line end
local counter = math.random(#tokens)
request = function()
  counter = counter % #tokens + 1
  return wrk.format("GET", wrk.path, {["Cookie"] = tokens[counter]})
end
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(
    framework: str,
    port: int,
    app: str | None = None,
    stack: str = "auto",
    app_dir: Path = APPS,
    python: str = sys.executable,
) -> list[str]:
    """The command serving ``app`` (a ``module:object`` of ``app_dir``; default: the
    framework's app in ``bench/http_apps``) with one worker pinned to CPU 1, run by
    ``python``. ``stack`` (uvicorn only): ``"asyncio"`` (asyncio loop + h11), ``"standard"``
    (uvloop + httptools) or ``"auto"`` (standard where both are installed)."""
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    if framework == "fastapi":
        extra = ["--loop", "asyncio", "--http", "h11"]
        if stack != "asyncio":
            try:
                import httptools  # noqa: F401
                import uvloop  # noqa: F401

                extra = ["--loop", "uvloop", "--http", "httptools"]
            except ImportError:
                if stack == "standard":
                    raise
        return [
            *pin,
            python,
            "-m",
            "uvicorn",
            "--app-dir",
            str(app_dir),
            app or "bench_fastapi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            *extra,
        ]
    module = app or {"flask": "bench_flask:app", "django": "bench_django:application"}[framework]
    return [
        *pin,
        python,
        "-m",
        "gunicorn",
        "--chdir",
        str(app_dir),
        "-w",
        "1",
        "-k",
        "sync",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        module,
    ]


def before_source(spec: str) -> str:
    """The ``src`` directory of an earlier version, for ``--before``: ``spec`` is either such a
    directory or a git commit of this repository, whose ``src`` is extracted (``git
    archive``) into a temporary directory."""
    if Path(spec, "sessionward", "__init__.py").is_file():
        return str(Path(spec).resolve())
    root = Path(__file__).resolve().parent.parent
    target = Path(tempfile.mkdtemp(prefix="sessionward-before-"))
    try:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", spec, "src"], check=True, capture_output=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"--before {spec}: not a src directory nor a commit of {root} ({error})") from None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    print(f"  --before {spec}: extracted to {target / 'src'}", file=sys.stderr, flush=True)
    return str(target / "src")


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of the server process and its children (gunicorn's
    worker), from /proc; ``None`` where /proc is not available."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for process in [pid, *map(int, children)]:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_serving(server: subprocess.Popen[bytes], base: str, cookie: str, framework: str) -> None:
    """Return once ``base + "/protected"`` answers 200 to ``cookie``; ``RuntimeError`` if the
    server exits or 30 s pass first."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/protected", headers={"Cookie": cookie}).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{framework} server did not start")
        time.sleep(0.1)


def run_wrk(
    url: str, duration: int, cookie: str | None, lua: Path | None, env: dict[str, str]
) -> tuple[float, int]:
    """Requests/s and the number of requests completed."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    command = [*pin, "wrk", "-t2", "-c50", f"-d{duration}s", "--latency"]
    if cookie is not None:
        command += ["-H", f"Cookie: {cookie}"]
    if lua is not None:
        command += ["-s", str(lua)]
    output = subprocess.run([*command, url], capture_output=True, text=True, env=env, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if match is None or count is None:
        raise RuntimeError(f"wrk output not understood:\n{output}")
    if non_2xx is not None:
        raise RuntimeError(f"{url}: {non_2xx.group(1)} non-2xx responses:\n{output}")
    return float(match.group(1)), int(count.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frameworks", default="fastapi,flask,django")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="sessionward-http-bench-"))
    config = Config(
        store=f"sqlite:///{work}/sessions.db", cookie_secure=False, verified_token_cache_size=CACHE_SIZE
    )
    print(f"minting {POOL_SIZE} sessions ...", file=sys.stderr, flush=True)
    with SessionWard(config) as engine:
        cookies = []
        for i in range(POOL_SIZE):
            tokens = engine.create_new_session(f"user-{i}", {"role": "member", "n": i})
            cookies.append(
                f"sAccessToken={tokens.access_token.value}; sIdRefreshToken={tokens.id_refresh_token.value}"
            )
        key = engine._core.keys.state.signing_key  # type: ignore[union-attr]  # internal: the floor's key
        public_pem = key.public_key.public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    pool_file = work / "pool.txt"
    pool_file.write_text("\n".join(cookies) + "\n")
    lua = work / "pool.lua"
    lua.write_text(LUA_POOL)
    env = {**os.environ, "BENCH_FLOOR_PUBLIC_KEY": public_pem, "BENCH_POOL_FILE": str(pool_file)}
    for field, value in (
        ("store", config.store),
        ("cookie_secure", "false"),
        ("verified_token_cache_size", str(CACHE_SIZE)),
    ):
        env["SESSIONWARD_" + field.upper()] = value
    cases = [
        ("plain", "/plain", None),
        ("protected, cached", "/protected", "one"),
        ("floor, one token", "/floor", "one"),
        ("protected, pool", "/protected", "pool"),
        ("floor, pool", "/floor", "pool"),
        # Reference: what merely carrying the cookie costs the server and the framework.
        ("reference: plain, cookie sent", "/plain", "one"),
    ]
    results: dict[tuple[str, str], list[float]] = {}
    cpu_per_request: dict[tuple[str, str], list[float]] = {}
    load_before = os.getloadavg()[0]
    for framework in args.frameworks.split(","):
        framework_cases = cases + (
            [
                ("protected, get_session (no Depends)", "/protected-direct", "one"),
                ("reference: no-op Depends(request), cookie sent", "/noop-depends", "one"),
            ]
            if framework == "fastapi"
            else []
        )
        port = free_port()
        server = subprocess.Popen(
            server_command(framework, port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(server, base, cookies[0], framework)
            for _name, path, tokens_used in framework_cases:  # warm-up
                run_wrk(
                    base + path,
                    1,
                    cookies[0] if tokens_used == "one" else None,
                    lua if tokens_used == "pool" else None,
                    env,
                )
            for round_number in range(args.rounds):
                for name, path, tokens_used in framework_cases:
                    cpu_before = server_cpu_seconds(server.pid)
                    rps, count = run_wrk(
                        base + path,
                        args.duration,
                        cookies[0] if tokens_used == "one" else None,
                        lua if tokens_used == "pool" else None,
                        env,
                    )
                    cpu_after = server_cpu_seconds(server.pid)
                    results.setdefault((framework, name), []).append(rps)
                    if cpu_before is not None and cpu_after is not None and count:
                        cpu_per_request.setdefault((framework, name), []).append(
                            (cpu_after - cpu_before) / count * 1e6
                        )
                print(
                    f"  {framework}: round {round_number + 1}/{args.rounds} done", file=sys.stderr, flush=True
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    report(args, results, cpu_per_request, (load_before, os.getloadavg()[0]))


def report(
    args: argparse.Namespace,
    results: dict[tuple[str, str], list[float]],
    cpu_per_request: dict[tuple[str, str], list[float]],
    load: tuple[float, float],
) -> None:
    print("# sessionward HTTP benchmark (wrk, 127.0.0.1)\n")
    print(
        f"- one server worker (taskset CPU 1), wrk -t2 -c50 -d{args.duration}s (taskset CPU 0), "
        f"{args.rounds} interleaved rounds, median req/s; RS256 tokens; pool = {POOL_SIZE} distinct "
        f"tokens > cache of {CACHE_SIZE}"
    )
    print(
        f"- load average {load[0]:.2f} at the start, {load[1]:.2f} at the end; server CPU = user + "
        f"system CPU time of the server process(es) per request completed (median); plain CPU / CPU "
        f"is the req/s ratio a CPU-bound server reaches\n"
    )
    print("| framework | endpoint | req/s (median) | ratio | server CPU µs/req | plain CPU / CPU |")
    print("|---|---|---|---|---|---|")
    for framework in args.frameworks.split(","):
        median = {
            name: statistics.median(values) for (fw, name), values in results.items() if fw == framework
        }
        cpu = {
            name: statistics.median(values)
            for (fw, name), values in cpu_per_request.items()
            if fw == framework
        }
        for name, value in median.items():
            if name in ("protected, cached", "protected, get_session (no Depends)"):
                ratio = f"{value / median['plain']:.2f}x plain"
            elif name == "protected, pool":
                ratio = (
                    f"{value / median['floor, pool']:.2f}x floor (pool), {value / median['plain']:.2f}x plain"
                )
            elif name.startswith(("floor", "reference")):
                ratio = f"{value / median['plain']:.2f}x plain"
            else:
                ratio = "1.00x"
            if name in cpu and "plain" in cpu:
                cpu_columns = f"{cpu[name]:.1f} | {cpu['plain'] / cpu[name]:.2f}x"
            else:
                cpu_columns = "- | -"
            print(f"| {framework} | {name} | {value:,.0f} | {ratio} | {cpu_columns} |")
    print("\nTarget: protected, cached >= 0.90x plain for FastAPI (uvicorn) and Flask (gunicorn).")


if __name__ == "__main__":
    main()
