#!/usr/bin/env bash
# nodewall installer. Idempotent: run it again to upgrade.
#
#   ./install.sh               install nftables (apt-get, if missing), Node dependencies, build,
#                              install to /opt/nodewall, the `nodewall` command, /etc/nodewall
#                              (never overwriting an existing config), the systemd unit; enable and
#                              start the agent where systemd runs; end with one dry-run report.
#   ./install.sh --uninstall   stop the agent, delete nodewall's nft table, remove everything
#                              installed (add --keep-config to keep /etc/nodewall).
#
# Needs root and Node.js >= 20.19. The default config is mode: dry-run, so a fresh
# install writes nothing to the kernel and can never lock anyone out.
set -euo pipefail

PREFIX=/opt/nodewall
ETC=/etc/nodewall
BIN=/usr/local/bin/nodewall
UNIT=/etc/systemd/system/nodewall.service
STATE=/var/lib/nodewall
NFT=/usr/sbin/nft

say() { printf 'nodewall install: %s\n' "$*"; }
die() { printf 'nodewall install: error: %s\n' "$*" >&2; exit 1; }
have_systemd() { [ -d /run/systemd/system ]; }

cd "$(dirname "$(readlink -f "$0")")"
SRC=$(pwd)

[ "$(id -u)" -eq 0 ] || die "run as root"

uninstall() {
  local keep_config=$1
  if have_systemd && systemctl list-unit-files nodewall.service >/dev/null 2>&1; then
    systemctl disable --now nodewall.service 2>/dev/null || true
  fi
  # An agent started by hand (no systemd): stop it by the pid in its status file.
  local pid
  pid=$(sed -n 's/^ *"pid": \([0-9][0-9]*\),$/\1/p' "$STATE/status.json" 2>/dev/null | head -n1 || true)
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'nodewall.* agent'; then
    say "stopping the agent (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  # The table name comes from the config when it can be read.
  local table=nodewall
  if [ -f "$PREFIX/dist/src/inventory/config.js" ] && [ -f "$ETC/nodewall.yaml" ]; then
    table=$(node -e "import('$PREFIX/dist/src/inventory/config.js').then(async (m) => console.log((await m.loadConfig('$ETC/nodewall.yaml')).nft.table)).catch(() => console.log('nodewall'))")
  fi
  # The table and the temporary tables of a full replace that did not finish (src/nft/make-before-break.ts).
  local t
  for t in "$table" "${table}_next0" "${table}_next1" "${table}_next2" "${table}_next3"; do
    if [ -x "$NFT" ] && "$NFT" list table inet "$t" >/dev/null 2>&1; then
      # Only a table nodewall made (its ownership mark, or an older version's structure marker): never someone else's.
      if "$NFT" -t list table inet "$t" | grep -Eq 'comment "nodewall (ownership mark|structure marker)'; then
        "$NFT" delete table inet "$t"
        say "deleted nft table inet $t"
      else
        say "left table inet $t alone: it has no nodewall ownership mark, so nodewall did not create it"
      fi
    fi
  done
  rm -f "$BIN" "$UNIT"
  have_systemd && systemctl daemon-reload || true
  rm -rf "$PREFIX" "$STATE" /var/lib/private/nodewall
  if [ "$keep_config" = yes ]; then say "kept $ETC"; else rm -rf "$ETC"; fi
  say "uninstalled"
}

case "${1:-}" in
  --uninstall) uninstall "$([ "${2:-}" = --keep-config ] && echo yes || echo no)"; exit 0 ;;
  '') ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) die "unknown option $1 (use --uninstall [--keep-config])" ;;
esac

# 1. System packages: nft (the kernel side), ss/ip (systeminformation's connection list).
missing=()
[ -x "$NFT" ] || missing+=(nftables)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "please install: ${missing[*]}"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Node.js (not installed by this script).
NODE=$(command -v node) || die "Node.js >= 20.19 is required (https://nodejs.org or your distribution)"
"$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js >= 20.19 is required, found $("$NODE" --version)"

# 3. Dependencies and build, in the source tree.
say "installing Node dependencies (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
say "building"
npm run --silent build

# 4. Install into $PREFIX: staged, then swapped in, so a running agent never sees half a tree.
stage="$PREFIX.new"
rm -rf "$stage"
mkdir -p "$stage/dist"
cp -a dist/src "$stage/dist/src"
cp -a package.json package-lock.json config systemd "$stage/"
[ -f README.md ] && cp -a README.md "$stage/"
cp -a node_modules "$stage/node_modules"
(cd "$stage" && npm prune --omit=dev --no-audit --no-fund --loglevel=error)
chmod -R u=rwX,go=rX "$stage"
rm -rf "$PREFIX.old"
[ -d "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
mv "$stage" "$PREFIX"
rm -rf "$PREFIX.old"
say "installed to $PREFIX"

# 5. The command.
cat >"$BIN" <<EOF
#!/bin/sh
# nodewall CLI (installed by $SRC/install.sh)
exec $NODE $PREFIX/dist/src/bin/nodewall.js "\$@"
EOF
chmod 0755 "$BIN"

# 6. Config: never overwrite what is there.
mkdir -p "$ETC"
if [ -e "$ETC/nodewall.yaml" ]; then
  say "kept existing $ETC/nodewall.yaml"
else
  install -m 0644 config/nodewall.yaml "$ETC/nodewall.yaml"
  say "installed $ETC/nodewall.yaml (mode: dry-run)"
fi
if [ -e "$ETC/policies" ]; then
  say "kept existing $ETC/policies/"
else
  mkdir -p "$ETC/policies"
  install -m 0644 config/policies/*.yaml "$ETC/policies/"
  say "installed example policies to $ETC/policies/"
fi

# 7. The unit (node's path substituted), enabled and started where systemd runs.
sed "s#^ExecStart=/usr/bin/node #ExecStart=$NODE #" systemd/nodewall.service >"$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
if have_systemd; then
  systemctl daemon-reload
  systemctl enable nodewall.service >/dev/null
  systemctl restart nodewall.service
  say "nodewall.service enabled and (re)started: journalctl -u nodewall -f"
else
  say "systemd is not running here: the unit is installed but not started. Run the agent with"
  say "    nodewall agent --config $ETC/nodewall.yaml"
  say "(under your supervisor, or: nohup nodewall agent --config $ETC/nodewall.yaml >>/var/log/nodewall.log 2>&1 &)"
fi

# 8. What the policies would do on this node right now.
say "dry-run report (nodewall audit):"
"$BIN" audit --config "$ETC/nodewall.yaml" || say "the report found invalid policies (see above); fix them in $ETC/policies/"
say "next: edit $ETC/policies/, check with 'nodewall audit', then set mode: audit, then mode: enforce in $ETC/nodewall.yaml"
