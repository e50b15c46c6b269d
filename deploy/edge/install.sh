#!/usr/bin/env bash
# Install or upgrade the greenguard edge agent on Raspberry Pi OS (Debian 12 based).
#
#   sudo deploy/edge/install.sh [--certs DIR --edge EDGE_ID] [--volatile-journal]
#
# Run it from a checkout (or unpacked release) of greenguard. It is idempotent: a second
# run changes nothing, an upgrade replaces the program and the unit but never the config.
#
#   /opt/greenguard/venv            the program (a virtualenv with greenguard[edge])
#   /opt/greenguard/src             the sources it was installed from (docs included)
#   /etc/greenguard/edge.yaml       the config, written once from edge.example.yaml
#   /etc/greenguard/tls/            ca.crt, edge.crt, edge.key (from `greenguard certs`)
#   /var/lib/greenguard/            the outbox (the only directory the agent writes)
#   /etc/systemd/system/greenguard-edge.service
#
# Options:
#   --root DIR          install under DIR instead of / (packaging, tests): no user is
#                       created, nothing is chowned, systemctl is not run
#   --certs DIR         a `greenguard certs` directory: copy ca.crt and edges/EDGE_ID.*
#   --edge EDGE_ID      which edge's certificate to copy (with --certs)
#   --volatile-journal  keep the journal in RAM (SD-card wear; lost at reboot)
#   --skip-python       do not create or upgrade the virtualenv (tests, offline upgrades
#                       of config and unit only)
#   --no-start          install but do not enable or restart the service
set -euo pipefail

ROOT=/
CERTS=""
EDGE=""
VOLATILE_JOURNAL=0
SKIP_PYTHON=0
START=1
WROTE_CONFIG=0
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
USER_NAME=greenguard

die() { echo "install.sh: $*" >&2; exit 2; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    --certs) [ $# -ge 2 ] || die "--certs needs a directory"; CERTS="$2"; shift 2 ;;
    --edge) [ $# -ge 2 ] || die "--edge needs an edge id"; EDGE="$2"; shift 2 ;;
    --volatile-journal) VOLATILE_JOURNAL=1; shift ;;
    --skip-python) SKIP_PYTHON=1; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
# DESTDIR works too, as in `make install DESTDIR=...`.
if [ "$ROOT" = / ] && [ -n "${DESTDIR:-}" ]; then ROOT="$DESTDIR"; fi
[ -d "$ROOT" ] || die "--root: '$ROOT' is not a directory"
ROOT="$(cd "$ROOT" && pwd)"
LIVE=0
[ "$ROOT" = / ] && LIVE=1
R="${ROOT%/}"  # prefix for every path below ("" for the live system)

if [ -n "$CERTS" ] || [ -n "$EDGE" ]; then
  [ -n "$CERTS" ] && [ -n "$EDGE" ] || die "--certs and --edge go together"
  [[ "$EDGE" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || die "--edge: '$EDGE' is not an edge id"
  for f in "$CERTS/ca.crt" "$CERTS/edges/$EDGE.crt" "$CERTS/edges/$EDGE.key"; do
    [ -f "$f" ] || die "--certs: '$f' does not exist (greenguard certs --dir $CERTS --edge $EDGE)"
  done
fi
if [ "$LIVE" = 1 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo), or give --root DIR to install into a directory"
fi

# -- the service user ----------------------------------------------------------------------
if [ "$LIVE" = 1 ]; then
  if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/greenguard --no-create-home \
      --shell /usr/sbin/nologin --user-group "$USER_NAME"
    say "created system user $USER_NAME"
  fi
  getent group dialout >/dev/null && usermod -a -G dialout "$USER_NAME"
else
  say "--root: not creating user $USER_NAME, not changing owners"
fi

# owner/group only on the live system; modes everywhere
own() {  # own USER:GROUP PATH...
  local who="$1"; shift
  if [ "$LIVE" = 1 ]; then chown "$who" "$@"; fi
}

# install a file only if its content or mode differs, so a second run changes nothing
put() {  # put MODE SRC DEST
  local mode="$1" src="$2" dest="$3"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    chmod "$mode" "$dest"
    return 0
  fi
  install -m "$mode" "$src" "$dest"
  say "installed ${dest#"$R"}"
}

# -- directories ---------------------------------------------------------------------------
install -d -m 0755 "$R/opt/greenguard" "$R/etc/systemd/system"
install -d -m 0750 "$R/etc/greenguard" "$R/etc/greenguard/tls" "$R/var/lib/greenguard"
own "root:$USER_NAME" "$R/etc/greenguard" "$R/etc/greenguard/tls"
own "$USER_NAME:$USER_NAME" "$R/var/lib/greenguard"

# -- the program ---------------------------------------------------------------------------
if [ "$SKIP_PYTHON" = 0 ]; then
  command -v python3 >/dev/null || die "python3 is missing (apt-get install python3-venv)"
  # a copy of the sources the program was installed from, for the docs and a rebuild
  rm -rf "$R/opt/greenguard/src.new"
  mkdir -p "$R/opt/greenguard/src.new"
  (cd "$SRC" && tar -cf - --exclude=.git --exclude=.venv --exclude='*.sqlite*' \
     pyproject.toml requirements.lock README.md protocols edge central simulators docs deploy) \
    | tar -xf - -C "$R/opt/greenguard/src.new"
  rm -rf "$R/opt/greenguard/src"
  mv "$R/opt/greenguard/src.new" "$R/opt/greenguard/src"
  [ -x "$R/opt/greenguard/venv/bin/python" ] || python3 -m venv "$R/opt/greenguard/venv"
  # The committed lock pins every version; only the edge's extra is installed (no FastAPI,
  # no database drivers). Offline: add --find-links to a wheel directory via PIP_FIND_LINKS.
  "$R/opt/greenguard/venv/bin/pip" install --quiet --upgrade \
    --constraint "$R/opt/greenguard/src/requirements.lock" "$R/opt/greenguard/src[edge]"
  say "installed greenguard into /opt/greenguard/venv"
else
  say "--skip-python: program not installed or upgraded"
fi

# -- config: written once, never overwritten -----------------------------------------------
put 0644 "$SRC/deploy/edge/edge.example.yaml" "$R/etc/greenguard/edge.yaml.example"
if [ ! -e "$R/etc/greenguard/edge.yaml" ]; then
  install -m 0640 "$SRC/deploy/edge/edge.example.yaml" "$R/etc/greenguard/edge.yaml"
  own "root:$USER_NAME" "$R/etc/greenguard/edge.yaml"
  WROTE_CONFIG=1
  say "wrote /etc/greenguard/edge.yaml from the example: edit edge_id, site, mqtt.host, devices"
else
  say "kept /etc/greenguard/edge.yaml (compare with edge.yaml.example after an upgrade)"
fi

# -- the edge's certificate ----------------------------------------------------------------
if [ -n "$CERTS" ]; then
  put 0644 "$CERTS/ca.crt" "$R/etc/greenguard/tls/ca.crt"
  put 0644 "$CERTS/edges/$EDGE.crt" "$R/etc/greenguard/tls/edge.crt"
  put 0640 "$CERTS/edges/$EDGE.key" "$R/etc/greenguard/tls/edge.key"
  own "root:$USER_NAME" "$R/etc/greenguard/tls/edge.key"
fi

# -- systemd ------------------------------------------------------------------------------
put 0644 "$SRC/deploy/edge/greenguard-edge.service" \
  "$R/etc/systemd/system/greenguard-edge.service"
if [ "$VOLATILE_JOURNAL" = 1 ]; then
  install -d -m 0755 "$R/etc/systemd/journald.conf.d"
  put 0644 "$SRC/deploy/edge/journald-greenguard.conf" \
    "$R/etc/systemd/journald.conf.d/greenguard.conf"
fi

if [ "$LIVE" = 1 ] && [ "$START" = 1 ]; then
  systemctl daemon-reload
  [ "$VOLATILE_JOURNAL" = 1 ] && systemctl restart systemd-journald
  if [ "$WROTE_CONFIG" = 1 ]; then
    # Not with the example config: its edge_id would name the outbox's stream.
    say "edit /etc/greenguard/edge.yaml, then: systemctl enable --now greenguard-edge"
  elif /opt/greenguard/venv/bin/greenguard edge --config /etc/greenguard/edge.yaml --check; then
    systemctl enable greenguard-edge.service >/dev/null
    systemctl restart greenguard-edge.service
    say "greenguard-edge started: journalctl -u greenguard-edge -f"
  else
    say "fix /etc/greenguard/edge.yaml, then: systemctl restart greenguard-edge"
  fi
else
  say "not starting the service (--root or --no-start)"
fi
