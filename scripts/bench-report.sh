#!/usr/bin/env bash
# Benchmark of the report (not a test): a 60-image synthetic stack over 5
# runs, rendered by strata-report's synthetic_report example, then opened
# in headless Chromium (scripts/browse-report.py, 5 loads of each page).
#
#   scripts/bench-report.sh [IMAGES [RUNS]]
#
# Prints the site's weight (all files, and the index), the time strata
# takes to render it, and the median load time (navigation start to the
# end of the load event, from the browser's own timing) of the index and
# of the heaviest image page, beside an empty page's load in the same
# browser as the baseline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
images="${1:-60}"
runs="${2:-5}"

cargo build --release --locked -q -p strata-report --features synthetic --example synthetic_report
target="${CARGO_TARGET_DIR:-$root/target}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

start=$(date +%s%N)
bytes=$("$target/release/examples/synthetic_report" "$out/site" "$images" "$runs")
end=$(date +%s%N)
mkdir -p "$out/empty"
echo '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>empty</title></head><body></body></html>' \
  > "$out/empty/index.html"

python3 scripts/browse-report.py "$out/site" --repeat 5 > "$out/site.json"
python3 scripts/browse-report.py "$out/empty" --repeat 5 > "$out/empty.json"

python3 - "$out" "$bytes" "$images" "$runs" "$(( (end - start) / 1000000 ))" <<'EOF'
import json, os, sys
out, total, images, runs, render_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
site = json.load(open(os.path.join(out, "site.json")))["pages"]
empty = json.load(open(os.path.join(out, "empty.json")))["pages"][0]
index = site[0]
pages = site[1:]
size = lambda page: os.path.getsize(page["page"][len("file://"):])
heaviest = max(pages, key=size) if pages else index
errors = sorted({e for p in site for e in p["errors"]})
print(f"report of {images} images over {runs} runs: {len(site)} pages, {total / 1e6:.2f} MB in all"
      f" (index.html {size(index) / 1e3:.0f} kB, largest image page {size(heaviest) / 1e3:.1f} kB)")
print(f"render (synthetic_report, whole process): {render_ms} ms")
print(f"chromium load, median of 5: index.html {index['load_ms']:.0f} ms,"
      f" largest image page {heaviest['load_ms']:.0f} ms; empty page (baseline) {empty['load_ms']:.0f} ms")
print(f"console errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors))
EOF
