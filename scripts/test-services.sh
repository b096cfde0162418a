#!/usr/bin/env bash
# What `make test` needs besides the virtual environment: PostgreSQL and MariaDB listening on
# 127.0.0.1 (started when installed but stopped, as on a fresh CI machine), Debian's
# chromium for the browser tests and Debian's wordnet-base, from which a test derives
# src/phantoscope/assets/label_words.json again (both installed with apt-get when run as
# root). When something is missing and cannot be arranged, it says so in one line within
# seconds and exits 1.
# `make test` runs it first; .ci/run runs `make test`. PHANTOSCOPE_TEST_SERVICES=skip skips it.
set -uo pipefail

if [[ "${PHANTOSCOPE_TEST_SERVICES:-}" == skip ]]; then
    exit 0
fi

listening() {  # listening PORT: something accepts TCP connections on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for() {  # wait_for NAME PORT: poll until it listens (60 s)
    local name=$1 port=$2 _
    for _ in {1..120}; do
        listening "$port" && return 0
        sleep 0.5
    done
    echo "test-services: $name did not start listening on 127.0.0.1:$port within 60 s" >&2
    exit 1
}

postgres_version() {  # the first cluster version under /etc/postgresql, if any
    local dir
    for dir in /etc/postgresql/*/main; do
        [[ -d "$dir" ]] || continue
        dir=${dir%/main}
        echo "${dir##*/}"
        return 0
    done
    return 1
}

# First find everything that is missing, before starting anything (builtins only, so that
# this works whatever PATH holds).
missing=() packages=()
need() { missing+=("$1"); packages+=("$2"); }
if ! listening 5432 && ! { command -v pg_ctlcluster >/dev/null && postgres_version >/dev/null; }
then
    need "PostgreSQL's server" postgresql
fi
if ! listening 3306; then
    if ! command -v mariadbd >/dev/null && ! [[ -x /usr/sbin/mariadbd ]]; then
        need "MariaDB's server" mariadb-server
    fi
    command -v start-stop-daemon >/dev/null || need start-stop-daemon dpkg
fi
installs=()
can_install() { [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; }
if ! command -v chromium >/dev/null; then
    if can_install; then
        installs+=(chromium)
    else
        need "chromium (for the browser tests)" chromium
    fi
fi
if ! [[ -f /usr/share/wordnet/data.noun && -f /usr/share/wordnet/noun.exc ]]; then
    if can_install; then
        installs+=(wordnet-base)
    else
        need "WordNet 3.0 (for the label table's test)" wordnet-base
    fi
fi
if ((${#missing[@]})); then
    list=$(IFS=';'; echo "${missing[*]}")
    echo "test-services: missing ${list//;/, }: install them (Debian: apt-get install" \
        "${packages[*]}) or run this as root where apt-get is, or set" \
        "PHANTOSCOPE_TEST_SERVICES=skip to run the tests without them" >&2
    exit 1
fi

if ! listening 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(postgres_version)" main start || exit 1
    wait_for PostgreSQL 5432
fi
if ! listening 3306; then
    echo "starting MariaDB"
    mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    start-stop-daemon --start --oknodo --background --exec "$mariadbd" || exit 1
    wait_for MariaDB 3306
fi
if ((${#installs[@]})); then
    echo "installing ${installs[*]} with apt-get"
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${installs[@]}" || exit 1
fi
