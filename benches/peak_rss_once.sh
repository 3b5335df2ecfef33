#!/usr/bin/env bash
# Peak RSS of `tiersync once` on a store's first pass, storefront destination off (the
# Klaviyo bulk job and the recalculation are what a small store's memory peaks on):
#   bash benches/peak_rss_once.sh [CUSTOMERS] [RUNS]     (defaults: 10000, 5)
# Starts `tiersync-mocks` (fake Shopify and Klaviyo, a generated store) on free ports, then
# runs the release `tiersync once` RUNS times on a fresh store, reading each run's peak RSS
# from the kernel (`/usr/bin/time -v`: the child's maximum resident set).
set -euo pipefail
customers=${1:-10000}
runs=${2:-5}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin tiersync -p tiersync
cargo build --release --quiet --bin tiersync-mocks -p tiersync-mocks
work=$(mktemp -d)
trap 'kill $mocks 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
shopify=$(free_port); klaviyo=$(free_port)
target/release/tiersync-mocks --shopify-port "$shopify" --klaviyo-port "$klaviyo" \
  --customers "$customers" > "$work/mocks.out" &
mocks=$!
until grep -q "Ctrl-C" "$work/mocks.out" 2>/dev/null; do sleep 0.2; done
client_id=$(sed -n 's/.*client_id \([^ ]*\) client_secret.*/\1/p' "$work/mocks.out")
export TIERSYNC__SHOPIFY__CLIENT_SECRET=$(sed -n 's/.*client_secret \([^ ]*\)$/\1/p' "$work/mocks.out")
export TIERSYNC__KLAVIYO__API_KEY=$(sed -n 's/.*Klaviyo-API-Key \(.*\)$/\1/p' "$work/mocks.out")
sed -e "s|^shop = .*|shop = \"tiersync-demo\"\nbase_url = \"http://127.0.0.1:$shopify\"|" \
    -e "s|^client_id = .*|client_id = \"$client_id\"|" \
    -e "/^client_secret = /d" -e "/^api_key = /d" \
    -e "s|^\[klaviyo\]|[klaviyo]\nbase_url = \"http://127.0.0.1:$klaviyo\"|" \
    config/demo.toml > "$work/tiersync.toml"
printf '\n[storefront]\nenabled = false\n\n[store]\npath = "%s/store"\n' "$work" >> "$work/tiersync.toml"
for run in $(seq "$runs"); do
  rm -rf "$work/store"
  /usr/bin/time -v target/release/tiersync once --config "$work/tiersync.toml" \
    > /dev/null 2> "$work/once.err"
  kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/once.err")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/once.err")
  echo "run $run: $customers customers, peak RSS $((kib / 1024)) MiB, wall $wall"
done
