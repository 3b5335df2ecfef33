#!/usr/bin/env bash
# tiersync's CLV fits against lifetimes 0.11.3 (the Python package the model is checked
# against), on this machine, in one run: prints both timings (min / median ms) and the ratios.
#   bash benches/compare_lifetimes.sh [repeats]
# Needs network access to PyPI the first time (a venv in target/lifetimes-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-20}"
venv=target/lifetimes-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet lifetimes==0.11.3
fi
peer=$("$venv/bin/python" benches/lifetimes_peer.py "$repeats")
ours=$(cargo bench --quiet --bench clv_fit -- "$repeats")
echo "$peer"
echo "$ours"
python3 - "$peer" "$ours" <<'PY'
import re, sys
peer, ours = sys.argv[1], sys.argv[2]
def ms(text, pattern):
    m = re.search(pattern + r":\s+([\d.]+) / ([\d.]+)", text)
    return float(m.group(1)), float(m.group(2))
for name, p, o in [("BG/NBD", r"lifetimes BG/NBD CDNOW", r"BG/NBD\s+CDNOW"),
                   ("Gamma-Gamma", r"lifetimes GammaGamma CDNOW", r"GammaGamma CDNOW")]:
    (pmin, pmed), (omin, omed) = ms(peer, p), ms(ours, o)
    print(f"{name:<12} lifetimes {pmin:8.2f} ms  tiersync {omin:7.3f} ms  (min)  -> {pmin/omin:6.1f}x faster; median {pmed/omed:6.1f}x")
PY
