"""`make bench`: every benchmark in turn, then the tables of bench/RESULTS.md (bench/report.py).

Each script runs as its own process (so one failure does not stop the others) and writes
bench/results/<name>.json; each script's wall time goes to bench/results/run_all.json. A
partial run (`--only`) replaces just its scripts' rows there, so the record (and the
duration RESULTS.md quotes) always covers every script.
Options are passed on: `--model NAME|FILE` to every script that stylizes.
Run it on an otherwise idle machine: the numbers are wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import PYTHON, RESULTS, publish, run_child

HERE = Path(__file__).resolve().parent
SCRIPTS = (  # (script, takes --model)
    ("peer.py", False),
    ("stylize_speed.py", True),
    ("network_floor.py", True),
    ("video_speed.py", True),
    ("flicker.py", True),
    ("attention_scaling.py", False),
    ("train_speed.py", True),
    ("quality.py", True),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--only", help="Comma-separated script names (e.g. quality,peer).")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    if wanted is None:  # a full run: nothing stale may reach RESULTS.md
        for old in [*RESULTS.glob("*.json"), *RESULTS.glob("*.jpg")]:
            old.unlink()
    rows, failed = [], []
    for script, takes_model in SCRIPTS:
        name = script.removesuffix(".py")
        if wanted and name not in wanted:
            continue
        if not (HERE / script).is_file():
            rows.append((name, "missing", 0.0))
            failed.append(name)
            continue
        cmd = [PYTHON, HERE / script]
        if takes_model and args.model:
            cmd += ["--model", args.model]
        print(f"== {name}", flush=True)
        result = run_child(cmd)
        print(result["stderr"][-2000:] if result["rc"] else result["stdout"][-1500:], flush=True)
        status = "ok" if result["rc"] == 0 else f"failed (exit {result['rc']})"
        rows.append((name, status, round(result["seconds"], 1)))
        if result["rc"]:
            failed.append(name)
    if wanted:  # keep the rows of the scripts this run skipped
        earlier = RESULTS / "run_all.json"
        kept = json.loads(earlier.read_text())["scripts"] if earlier.is_file() else []
        ran = {name for name, _, _ in rows}
        rows = [row for row in kept if row[0] not in ran] + rows
    total = sum(seconds for _, _, seconds in rows)
    table = "| script | status | seconds |\n|---|---|---|\n"
    table += "\n".join(f"| {n} | {s} | {t} |" for n, s, t in rows)
    table += f"\n| total | | {total:.0f} |"
    publish("run_all", {"scripts": rows, "total_seconds": total}, table)
    report = run_child([PYTHON, HERE / "report.py"])
    print(report["stdout"] or report["stderr"])
    if failed or report["rc"]:
        sys.exit(f"failed: {', '.join(failed) or 'report'}")


if __name__ == "__main__":
    main()
