#!/bin/sh
# Every MQTT login of docker-compose.yml, each with its own generated password
# (docs/deployment.md, "Credentials"). For each login, `murmur creds add` writes its hash and
# role into deploy/credentials/ (passwd, roles, acl: what Mosquitto reads) and prints the new
# password, which goes into deploy/secrets/ (what the container that logs in reads). Both
# directories are git-ignored: no password ships with the repository.
#
#   deploy/credentials.sh             # create the logins that are missing, keep the others
#   deploy/credentials.sh --rotate    # a new password for every login
#   deploy/credentials.sh [--rotate] DIR   # into DIR/credentials and DIR/secrets instead
#
# Uses .venv/bin/murmur if there is one, else `murmur` on PATH; MURMUR=COMMAND overrides both.
# On a running system, after a change:
#   docker compose run --rm mosquitto-credentials && docker compose kill -s SIGHUP mosquitto
#   docker compose up -d --force-recreate       # the containers read their password at start
set -eu

cd "$(dirname "$0")/.."
rotate=no
if [ "${1:-}" = --rotate ]; then
    rotate=yes
    shift
fi
out=${1:-deploy}
if [ -n "${MURMUR:-}" ]; then
    murmur=$MURMUR
elif [ -x .venv/bin/murmur ]; then
    murmur=.venv/bin/murmur
else
    murmur=murmur
fi
# These would change what `murmur creds` does; only the flags below count here.
unset MURMUR_CONFIG MURMUR_CREDENTIALS MURMUR_ROLE MURMUR_PASSWORD_FILE

credentials=$out/credentials
secrets=$out/secrets
umask 077
mkdir -p "$secrets/drones"
# Nobody else on this machine may enter the secrets directory. Inside it, the files (and the
# drones' directory) are readable by all, because each is bind-mounted into a container whose
# unprivileged user must read it: compose cannot change a bind-mounted file's owner or mode.
chmod 0700 "$secrets"
chmod 0755 "$secrets/drones"

existing=$($murmur creds list --credentials "$credentials" 2>/dev/null || true)
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

add() {  # LOGIN ROLE SECRET: the password goes into $secrets/SECRET
    login=$1 role=$2 secret=$secrets/$3
    if [ "$rotate" = no ] && [ -s "$secret" ] &&
        printf '%s\n' "$existing" | awk -v l="$login" -v r="$role" \
            '$1 == l && $2 == r { found = 1 } END { exit !found }'; then
        echo "kept    $login ($role)"
        return
    fi
    if ! $murmur creds add "$login" --role "$role" --credentials "$credentials" \
        >"$secret.new" 2>"$errors"; then
        cat "$errors" >&2
        rm -f "$secret.new"
        exit 1
    fi
    chmod 0644 "$secret.new"
    mv "$secret.new" "$secret"
    echo "created $login ($role): $secret"
}

add package package package
add scheduler scheduler scheduler
add delivery delivery delivery
add ingestion client ingestion
add monitor monitor monitor
# As many drones as the fleet flies: `murmur sim` names them d-001, d-002...
drones=$(sed -n 's/^drones *= *\([0-9][0-9]*\).*/\1/p' deploy/murmur/sim.toml)
i=1
while [ "$i" -le "$drones" ]; do
    id=$(printf 'd-%03d' "$i")
    add "$id" drone "drones/$id"
    i=$((i + 1))
done

echo "Mosquitto reads $credentials; each container its password in $secrets."
echo "On a running system: docker compose run --rm mosquitto-credentials &&" \
    "docker compose kill -s SIGHUP mosquitto, then docker compose up -d --force-recreate"
