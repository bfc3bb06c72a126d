"""What the access layer costs each request: the same route with and without it.

    python bench/access_cost.py [--requests 3000]

Three in-process apps (httpx's ASGI transport: no sockets, so only the code differs),
taking turns in rounds in one run: the bare route; the route behind the access
middleware (origin check, student cookie) and the `Student` dependency, called with a
student's cookie; and the same with the instructor key as a Bearer header. Prints p50
and p95 per request and the added cost against the bare route (target: under 1 ms p50).
"""

# no `from __future__ import annotations`: FastAPI must see the routes' types, imported inside build_apps

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend")]


def build_apps(folder: Path):
    from fastapi import FastAPI

    from app.access.control import AccessControl
    from app.access.middleware import AccessMiddleware
    from app.api.deps import Student
    from app.settings import Settings

    settings = Settings(_env_file=None, access_dir=folder / "access", audit_log=folder / "audit.log")
    bare = FastAPI()

    @bare.post("/api/thing")
    async def bare_route() -> dict:
        return {"ok": 1}

    guarded = FastAPI()
    guarded.state.access = AccessControl(settings)
    guarded.state.access.prepare()

    @guarded.post("/api/thing")
    async def guarded_route(caller: Student) -> dict:
        return {"ok": 1}

    guarded.add_middleware(AccessMiddleware, access=guarded.state.access)
    return bare, guarded, guarded.state.access


async def timed(client, headers, cookies, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.post("/api/thing", headers=headers, cookies=cookies, json={})
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return out


async def main_async(requests: int, rounds: int) -> None:
    import httpx

    bare, guarded, access = build_apps(Path(tempfile.mkdtemp(prefix="bench-access-")))
    student = {"rag_student": access.new_student_cookie()}
    configs = {
        "bare route": (bare, {}, {}),
        "access layer, student cookie": (guarded, {"Origin": "http://bench"}, student),
        "access layer, instructor key": (guarded, {"Authorization": f"Bearer {access.keys.instructor_key}"}, {}),
    }
    samples: dict[str, list[float]] = {name: [] for name in configs}
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
               for name, (app, _, _) in configs.items()}
    for name, (_, headers, cookies) in configs.items():  # warm-up
        await timed(clients[name], headers, cookies, 200)
    for _ in range(rounds):
        for name, (_, headers, cookies) in configs.items():
            samples[name] += await timed(clients[name], headers, cookies, requests // rounds)
    for client in clients.values():
        await client.aclose()

    base = statistics.median(samples["bare route"])
    print(f"{requests} requests per configuration, {rounds} rounds taking turns, in-process ASGI\n")
    print("| configuration | p50 ms | p95 ms | added p50 ms |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        values.sort()
        p50, p95 = statistics.median(values), values[int(0.95 * (len(values) - 1))]
        print(f"| {name} | {p50:.3f} | {p95:.3f} | {p50 - base:+.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(main_async(args.requests, args.rounds))


if __name__ == "__main__":
    main()
