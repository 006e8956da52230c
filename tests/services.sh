#!/usr/bin/env bash
# Runs a command with the services the test suite needs for real:
#
#   bash tests/services.sh COMMAND [ARGS...]
#
# 1. installs what is missing from Debian packages (postgresql, chromium): as root
#    (CI, a fresh machine) with apt-get, `apt-get update` only when an install is
#    needed; a developer who is not root and lacks them is told what to install;
# 2. starts a throwaway PostgreSQL cluster: initdb in a temporary folder, trust
#    authentication for loopback connections only, listening on a free port of
#    127.0.0.1 (and a socket inside the folder), fsync off (nothing here must
#    survive); as root it runs as the `postgres` user, since PostgreSQL refuses to
#    run as root; otherwise as the current user;
# 3. creates the database `cv_test` and exports
#      CV_TEST_POSTGRES_URL=postgresql+psycopg://USER@127.0.0.1:PORT/cv_test
#      CV_TEST_CHROMIUM=/usr/bin/chromium   (wherever chromium is)
# 4. runs the command, then always stops the cluster and removes the folder, and
#    exits with the command's exit code.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: bash tests/services.sh COMMAND [ARGS...]" >&2
    exit 2
fi

log() { echo "services.sh: $*" >&2; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# The directory holding initdb and pg_ctl: the one on PATH, else Debian's newest.
pg_bindir() {
    local initdb
    if initdb="$(command -v initdb 2>/dev/null)"; then
        dirname "$(readlink -f "$initdb")"
        return 0
    fi
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

chromium_path() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

# -- 1. install what is missing --------------------------------------------------------
missing=()
[[ -n "$(pg_bindir || true)" ]] || missing+=(postgresql)
[[ -n "$(chromium_path)" ]] || missing+=(chromium)
if [[ ${#missing[@]} -gt 0 ]]; then
    if ! is_root; then
        log "missing: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
        exit 1
    fi
    log "installing ${missing[*]} from Debian packages"
    apt_log="$(mktemp -t cv-services-apt.XXXXXX)"
    # Wait for another apt or dpkg run (up to 10 minutes) instead of failing on its lock.
    apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
    if ! DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -qq >"$apt_log" 2>&1 ||
        ! DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq \
            "${missing[@]}" >>"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        log "apt-get failed"
        exit 1
    fi
    rm -f "$apt_log"
fi

bindir="$(pg_bindir)"
chromium="$(chromium_path)"

# -- 2. a throwaway cluster --------------------------------------------------------------
if is_root; then
    pg_user=postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    pg_user="$(id -un)"
    as_pg() { "$@"; }
fi

tmp="$(mktemp -d -t cv-services.XXXXXX)"
pgdata="$tmp/data"
started=0
cleanup() {
    if [[ $started -eq 1 ]]; then
        as_pg "$bindir/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

is_root && chown postgres:postgres "$tmp"
chmod 700 "$tmp"
cd_tmp_as_pg() { (cd "$tmp" && as_pg "$@"); }  # the cluster user may not read our cwd

cd_tmp_as_pg "$bindir/initdb" -D "$pgdata" -U "$pg_user" --auth=trust --encoding=UTF8 \
    --no-instructions >"$tmp/initdb.log" 2>&1 || {
    cat "$tmp/initdb.log" >&2
    log "initdb failed"
    exit 1
}
# Trust, but only over the private socket and loopback TCP.
cat >"$pgdata/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
is_root && chown postgres:postgres "$pgdata/pg_hba.conf"

# A free port: nothing answers on it now (/dev/tcp); if the start still loses a race
# for it, try another.
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in 1 2 3 4 5 6 7 8; do
    candidate=$((20000 + RANDOM % 40000))
    port_is_free "$candidate" || continue
    if cd_tmp_as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$tmp/postgres.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $candidate -c unix_socket_directories=$tmp \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null; then
        port="$candidate"
        started=1
        break
    fi
done
if [[ -z "$port" ]]; then
    cat "$tmp/postgres.log" >&2 || true
    log "PostgreSQL did not start"
    exit 1
fi
cd_tmp_as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$pg_user" cv_test

export CV_TEST_POSTGRES_URL="postgresql+psycopg://$pg_user@127.0.0.1:$port/cv_test"
export CV_TEST_CHROMIUM="$chromium"
log "PostgreSQL on 127.0.0.1:$port (cluster in $tmp), Chromium at $chromium"

# -- 4. the command ----------------------------------------------------------------------
set +e
"$@"
status=$?
set -e
exit "$status"
