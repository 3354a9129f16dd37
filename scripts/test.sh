#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (Debian's Python packages for interop
# tests, PostgreSQL for the BT backend), builds once, runs the tests, and prints one closing line
# "N passed, N failed, N skipped". Exit code 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have_py_module() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
have_py_module numpy || need_pkgs+=(python3-numpy)
have_py_module lz4 || need_pkgs+=(python3-lz4)
have_py_module h5py || need_pkgs+=(python3-h5py)
have_py_module fasteners || need_pkgs+=(python3-fasteners)
have_py_module snappy || need_pkgs+=(python3-snappy)
# Independent readers for export-mesh: meshio reads our PLY and OBJ; node runs the Khronos glTF validator.
have_py_module meshio || need_pkgs+=(python3-meshio)
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
# PostgreSQL: Debian keeps the server in /usr/lib/postgresql/<version>/bin, off PATH; postgres_fdw
# ships with the server package on Debian 12 (postgresql-contrib only pulls that in).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need_pkgs+=(postgresql)
compgen -G '/usr/share/postgresql/*/extension/postgres_fdw.control' >/dev/null || need_pkgs+=(postgresql-contrib)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need_pkgs[*]}" >&2
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null 2>&1 \
      || echo "warning: apt-get install failed for ${need_pkgs[*]}" >&2
  else
    echo "warning: missing ${need_pkgs[*]} and cannot apt-get install them" >&2
  fi
fi

# The Khronos glTF validator (npm's gltf-validator) goes into tests/node_modules (ignored by git), where the export
# tests look for it; it is installed again only when missing or of another version.
gltf_validator_version=2.0.0-dev.3.10
installed_validator=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' tests/node_modules/gltf-validator/package.json 2>/dev/null | head -n 1)
if [ "$installed_validator" != "$gltf_validator_version" ]; then
  if command -v npm >/dev/null; then
    echo "installing: gltf-validator@$gltf_validator_version (npm, into tests/node_modules)" >&2
    npm install --prefix tests --no-save --no-audit --no-fund --loglevel=error "gltf-validator@$gltf_validator_version" >/dev/null 2>&1 \
      || echo "warning: npm install of gltf-validator@$gltf_validator_version failed" >&2
  else
    echo "warning: no npm to install gltf-validator with" >&2
  fi
fi

# The fixtures and specs live in ../shared (beside this repository) or $SYCONN_SHARED; without them the tests
# that read fixtures skip (and fail under CI=true).
shared_dir=${SYCONN_SHARED:-../shared}
if [ ! -f "$shared_dir/fixtures/py/MANIFEST.json" ]; then
  echo "warning: no fixtures at $shared_dir/fixtures (set SYCONN_SHARED or put the shared folder beside the repository): the tests that need them are skipped" >&2
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if [ "${CI:-}" = true ]; then : "${SYCONN_FUZZ_SECONDS:=240}"; else : "${SYCONN_FUZZ_SECONDS:=20}"; fi
export SYCONN_FUZZ_SECONDS

build_log=$(mktemp)
if ! dotnet build SyConn.Backend.slnx -c Release -nologo -v q >"$build_log" 2>&1; then
  tail -n 60 "$build_log"
  echo "build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# PostgreSQL test servers (tests/SyConn.Backend.Tests/Infrastructure/PgServer.cs) each leave
# <name>.datadir here naming their data dir. A test host that dies cannot stop its servers, so on
# exit this script stops any still listed and deletes their folders. The trap writes to stderr only:
# the closing line below must stay the last line on stdout.
pg_bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pg_bindir" ] || pg_bindir=$(pg_config --bindir 2>/dev/null || true)
SYCONN_PG_RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/syconn-pgrun.XXXXXX")
export SYCONN_PG_RUNDIR
pg_ctl_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pg_bindir/pg_ctl" "$@"; else "$pg_bindir/pg_ctl" "$@"; fi
}
stop_leftover_pg_servers() {
  local marker data pid
  for marker in "$SYCONN_PG_RUNDIR"/*.datadir; do
    [ -f "$marker" ] || continue
    data=$(head -n 1 "$marker")
    case "$data" in
      */syconn-pg-*/data) ;;
      *) echo "test.sh: ignoring $marker, it names $data" >&2; continue ;;
    esac
    if [ -f "$data/postmaster.pid" ]; then
      echo "test.sh: stopping a PostgreSQL test server left running in $data" >&2
      if [ -z "$pg_bindir" ] || ! pg_ctl_as_owner stop -D "$data" -m immediate -w -t 30 >/dev/null 2>&1; then
        # No pg_ctl, or it failed: kill the postmaster the server last noted, if it still is one.
        pid=$(head -n 1 "${marker%.datadir}.pid" 2>/dev/null)
        if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$data"; then
          kill -KILL "$pid" 2>/dev/null
        fi
      fi
    fi
    rm -rf "${data%/data}"
  done
  rm -rf "$SYCONN_PG_RUNDIR"
}
trap stop_leftover_pg_servers EXIT

results="TestResults"
rm -rf "$results"
dotnet test SyConn.Backend.slnx -c Release --no-build --nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
  --results-directory "$results" 2>&1 | grep -vE '^\s+Passed |^\s*$' | tail -n 200
test_rc=${PIPESTATUS[0]}

passed=0 failed=0 skipped=0
shopt -s nullglob
trx_files=("$results"/*.trx "$results"/*/*.trx)
for trx in "${trx_files[@]}"; do
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  p=$(get passed); f=$(get failed); e=$(get error); t=$(get timeout); ab=$(get aborted); tot=$(get total); ex=$(get executed)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0} + ${ab:-0}))
  # A skipped test is "NotExecuted" in its result, but the TRX counters leave notExecuted at 0: count what did not run.
  skipped=$((skipped + ${tot:-0} - ${ex:-0}))
done
if [ ${#trx_files[@]} -eq 0 ] || { [ "$test_rc" != 0 ] && [ "$failed" = 0 ]; }; then
  echo "test run did not complete (exit $test_rc)" >&2
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
