#!/bin/sh
# Regenerate the diagrams of docs/architecture.md and the README from their Graphviz sources.
# Needs Graphviz (`apt-get install -y graphviz`). Usage: sh docs/diagrams/render.sh
set -eu
cd "$(dirname "$0")"
command -v dot >/dev/null || { echo "render.sh: Graphviz's dot is not installed (apt-get install -y graphviz)" >&2; exit 1; }
for source in *.dot; do
    name=${source%.dot}
    dot -Tsvg "$source" -o "$name.svg"
    dot -Tpng -Gdpi=110 "$source" -o "$name.png"
    echo "rendered $name.svg and $name.png"
done
