#!/usr/bin/env bash
# Build Kubo from its own source tree with the highload plugins preloaded, the
# in-tree way Kubo documents (docs/plugins.md, "Preloaded Plugins"):
#
#   1. copy Kubo v$KUBO_VERSION's source from the Go module cache into a fresh,
#      git-ignored work dir (build/from-source/work/kubo);
#   2. append the entries of our root preload_list to Kubo's
#      plugin/loader/preload_list and regenerate plugin/loader/preload.go with
#      Kubo's plugin/loader/preload.sh;
#   3. point Kubo's go.mod at this repository (require + replace), swap Kubo's
#      go-libp2p fork (not served by the module proxy) for the release we use,
#      and let Go's minimal version selection take the higher of Kubo's and our
#      exact versions (our go.mod is read through the replace; no version
#      queries are made);
#   4. go build ./cmd/ipfs.
#
# Usage: bash build/from-source.sh <output-binary-path>
# Needs only Go and the module proxy. Nothing in the repository is modified
# except the work dir and the output binary.
set -euo pipefail

KUBO_VERSION=v0.43.1
LIBP2P_VERSION=v0.50.0  # same as our go.mod; Kubo v0.43.1 replaces it with a fork
GO=${GO:-go}

log() { printf 'from-source: %s\n' "$*" >&2; }
die() { printf 'from-source: ERROR: %s\n' "$*" >&2; exit 1; }
step=""
trap 'rc=$?; [ $rc -eq 0 ] || printf "from-source: FAILED (exit %d) while: %s\n" "$rc" "$step" >&2' EXIT

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: bash build/from-source.sh <output-binary-path>"

command -v "$GO" >/dev/null 2>&1 || die "'$GO' not found in PATH"

# Absolute paths before any cd.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
case $1 in
  /*) OUT=$1 ;;
  *) OUT=$PWD/$1 ;;
esac
mkdir -p "$(dirname "$OUT")" || die "cannot create the directory of $OUT"
OUT=$(cd "$(dirname "$OUT")" && pwd -P)/$(basename "$OUT")

WORK=$ROOT/build/from-source/work
KDIR=$WORK/kubo
OUR_MOD=$(cd "$ROOT" && "$GO" list -m -f '{{.Path}}' 2>/dev/null) \
  || die "cannot read the module path from $ROOT/go.mod"
[ -f "$ROOT/preload_list" ] || die "missing $ROOT/preload_list"

# Work in Kubo's module only (no workspace). VCS stamping is off: the work dir
# sits inside our git checkout, not Kubo's.
export GOWORK=off
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"

T0=$SECONDS

# 1. Kubo's source tree -------------------------------------------------------
step="downloading github.com/ipfs/kubo@$KUBO_VERSION"
log "$step"
KSRC=$(cd "$ROOT" && "$GO" mod download -json "github.com/ipfs/kubo@$KUBO_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -n "$KSRC" ] && [ -f "$KSRC/go.mod" ] && [ -d "$KSRC/cmd/ipfs" ] \
  || die "go mod download did not give a Kubo source dir (got '$KSRC')"

step="copying $KSRC to $KDIR"
log "copying Kubo source to ${KDIR#"$ROOT"/}"
if [ -e "$KDIR" ]; then
  chmod -R u+w "$KDIR" 2>/dev/null || true
  rm -rf "$KDIR" || die "cannot remove the old work dir $KDIR"
fi
mkdir -p "$WORK"
cp -R "$KSRC" "$KDIR" || die "cannot copy $KSRC"
chmod -R u+w "$KDIR" || die "cannot make $KDIR writable"

# 2. Preload list and preload.go ----------------------------------------------
step="regenerating plugin/loader/preload.go"
LOADER=$KDIR/plugin/loader
[ -f "$LOADER/preload_list" ] && [ -f "$LOADER/preload.sh" ] \
  || die "Kubo's plugin/loader/preload_list or preload.sh is missing"
OURS=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$ROOT/preload_list" || true)
[ -n "$OURS" ] || die "$ROOT/preload_list has no plugin entries"
{ printf '\n# kubo-highload (appended by build/from-source.sh)\n'; printf '%s\n' "$OURS"; } \
  >>"$LOADER/preload_list"
log "preload_list += $(printf '%s' "$OURS" | awk '{print $1" "$2}' | paste -sd, -)"
# IPFS_PLUGINS would add more entries; keep the build reproducible.
(cd "$KDIR" && env -u IPFS_PLUGINS bash plugin/loader/preload.sh >plugin/loader/preload.go.new) \
  || die "plugin/loader/preload.sh failed"
mv "$LOADER/preload.go.new" "$LOADER/preload.go"
GOFMT=$("$GO" env GOROOT)/bin/gofmt
[ -x "$GOFMT" ] || GOFMT=gofmt
"$GOFMT" -w "$LOADER/preload.go" || die "gofmt of the generated preload.go failed"
while read -r _ path _; do
  grep -q "\"$path\"" "$LOADER/preload.go" || die "preload.go does not import $path"
done <<<"$OURS"

# 3. go.mod: require + replace our module, drop the libp2p fork ---------------
step="editing Kubo's go.mod"
log "go.mod: require $OUR_MOD => $ROOT; go-libp2p fork -> $LIBP2P_VERSION"
(
  cd "$KDIR"
  "$GO" mod edit \
    -require="$OUR_MOD@v0.0.0" -replace="$OUR_MOD=$ROOT" \
    -dropreplace=github.com/libp2p/go-libp2p \
    -require="github.com/libp2p/go-libp2p@$LIBP2P_VERSION"
  # Known checksums from our go.sum: no lookups for versions we already use.
  cat go.sum "$ROOT/go.sum" | sort -u >go.sum.new && mv go.sum.new go.sum
) || die "go mod edit of $KDIR/go.mod failed"
"$GO" mod edit -json "$KDIR/go.mod" | grep -q '"Path": "github.com/lidel/go-libp2p"' \
  && die "the go-libp2p fork replace is still in go.mod"

# Minimal version selection over Kubo's and our go.mod picks, per module, the
# higher of the two exact versions. Resolve once and record it in go.mod so
# the build below runs against a complete, consistent go.mod.
step="resolving the module graph (go mod tidy)"
log "resolving dependencies (go mod tidy)"
(cd "$KDIR" && "$GO" mod tidy) || die "go mod tidy in $KDIR failed (see above)"
sel() { (cd "$KDIR" && "$GO" list -m -f '{{.Version}}{{with .Replace}} => {{.Path}} {{.Version}}{{end}}' "$1"); }
got=$(sel github.com/libp2p/go-libp2p) || die "cannot list go-libp2p"
[ "$got" = "$LIBP2P_VERSION" ] || die "go-libp2p resolved to '$got', want $LIBP2P_VERSION"

# 4. Build -----------------------------------------------------------------
step="go build ./cmd/ipfs"
log "go build -o $OUT ./cmd/ipfs"
(cd "$KDIR" && "$GO" build -o "$OUT" ./cmd/ipfs) || die "go build ./cmd/ipfs failed"

step="checking the binary"
"$GO" version -m "$OUT" | grep -q "$OUR_MOD" || die "$OUT does not contain $OUR_MOD"
ver=$("$OUT" version) || die "$OUT version failed"
log "built ${OUT#"$ROOT"/} ($ver, $LIBP2P_VERSION go-libp2p, highload preloaded) in $((SECONDS - T0))s"
step=""
