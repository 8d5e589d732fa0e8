# shellcheck shell=bash
# Network plumbing of a local cluster: one bridge in the root netns, one netns per host joined
# to it by a veth pair. Sourced by deploy/local-cluster; every function is safe to repeat.
# Only addresses inside 10.88.<idx>.0/24 on links named bl<idx>* are ever added or removed.

# net_subnet_in_use IDX: true when anything on the machine already uses 10.88.IDX.0/24.
net_subnet_in_use() {
  local idx=$1
  [[ -n "$(ip -4 -o addr show to "10.88.${idx}.0/24" 2>/dev/null)" ]] && return 0
  [[ -n "$(ip -4 route show to "10.88.${idx}.0/24" 2>/dev/null)" ]] && return 0
  ip link show "bl${idx}" >/dev/null 2>&1
}

# net_create_bridge IDX: the bridge bl<IDX> holding the machine's address 10.88.IDX.1/24.
net_create_bridge() {
  local idx=$1 br="bl$1"
  ip link add "$br" type bridge &&
    ip addr add "10.88.${idx}.1/24" dev "$br" &&
    ip link set "$br" up
}

# net_create_host IDX I NETNS: netns with eth0 = 10.88.IDX.(10+I)/24, lo up, default route via the bridge.
net_create_host() {
  local idx=$1 i=$2 ns=$3
  local host_if="bl${idx}h${i}" peer="bl${idx}h${i}c"
  ip netns add "$ns" &&
    ip link add "$host_if" type veth peer name "$peer" &&
    ip link set "$peer" netns "$ns" &&
    ip -n "$ns" link set "$peer" name eth0 &&
    ip -n "$ns" addr add "10.88.${idx}.$((10 + i))/24" dev eth0 &&
    ip -n "$ns" link set lo up &&
    ip -n "$ns" link set eth0 up &&
    ip -n "$ns" route add default via "10.88.${idx}.1" &&
    ip link set "$host_if" master "bl${idx}" &&
    ip link set "$host_if" up
}

# net_destroy NAME IDX: remove every netns berth-NAME-h*, then links bl<IDX>h* and bl<IDX>.
# IDX may be empty when the registry entry is lost; then only the netns are removed.
net_destroy() {
  local name=$1 idx=$2 ns link
  while read -r ns _; do
    [[ "$ns" == "berth-${name}-h"* ]] || continue
    ip netns del "$ns" 2>/dev/null || warn "could not delete netns $ns"
  done < <(ip netns list 2>/dev/null)
  [[ -n "$idx" ]] || return 0
  # deleting a netns destroys its veth end, which takes the root end with it; this is the fallback
  while read -r link; do
    ip link del "$link" 2>/dev/null || true
  done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^bl${idx}h[0-9]+c?\$" || true)
  if ip link show "bl${idx}" >/dev/null 2>&1; then
    ip link del "bl${idx}" || warn "could not delete bridge bl${idx}"
  fi
}

# net_port_busy PORT: true when some socket already listens on TCP PORT (any address).
net_port_busy() {
  [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

# net_wait_tcp ADDR PORT SECONDS: poll until ADDR:PORT accepts a connection, bounded in time.
net_wait_tcp() {
  local addr=$1 port=$2 deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/${addr}/${port}") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}
