"""Write the v1 API's OpenAPI schema to docs/openapi-v1.json (run after changing the API)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from marketcast.serving.app import openapi_schema

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "openapi-v1.json"


def render_openapi() -> str:
    """Return the schema as stable, reviewable JSON text (sorted keys, 2-space indent)."""
    return json.dumps(openapi_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the schema")
    args = parser.parse_args()
    args.out.write_text(render_openapi(), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
