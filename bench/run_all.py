"""`make bench`: the standing benchmarks in turn, then the tables of bench/RESULTS.md
(bench/report.py).

Standing means measured again whenever a2k changes: the peer's install, stylizing speed
against it, video and training throughput, and the held-out quality. The one-off studies
in bench/studies/ run only on demand (bench/README.md). Each script runs as its own
process (so one failure does not stop the others); its old bench/results/<name>.json goes
first, so a failed script leaves no stale table. Each script's wall time goes to
bench/results/run_all.json; a partial run (`--only`) replaces just its scripts' rows there,
so the record (and the duration RESULTS.md quotes) always covers every script.
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
SCRIPTS = (  # (script, takes --model); the peer first: the next ones compare with it
    ("peer.py", False),
    ("stylize_speed.py", True),
    ("video_speed.py", True),
    ("train_speed.py", True),
    ("quality.py", True),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--only", help="Comma-separated script names (e.g. quality,peer).")
    args = parser.parse_args()
    names = [script.removesuffix(".py") for script, _ in SCRIPTS]
    wanted = args.only.split(",") if args.only else names
    if unknown := set(wanted) - set(names):
        sys.exit(f"--only: {', '.join(sorted(unknown))}: not a standing benchmark")
    rows, failed = [], []
    for script, takes_model in SCRIPTS:
        name = script.removesuffix(".py")
        if name not in wanted:
            continue
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
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
    earlier = RESULTS / "run_all.json"
    if args.only and earlier.is_file():  # keep the rows of the scripts this run skipped
        ran = {name for name, _, _ in rows}
        kept = json.loads(earlier.read_text())["scripts"]
        rows = [row for row in kept if row[0] in names and row[0] not in ran] + rows
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
