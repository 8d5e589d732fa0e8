# shellcheck shell=bash
# The components of a local cluster and how each is started: control-plane replicas, agents, the
# external etcd and the etcd proxy. Sourced by deploy/local-cluster, which calls these from `up`
# and from the start-* verbs, so a killed component comes back with the command line it had.
# They read the globals local-cluster sets: NAME, IDX, HOSTS, CONTROL_PLANES, ETCD_MEMBERS,
# ETCD_PROXY, HOST_STATE_SIZE, CP_ARGS, the paths of cluster_paths and the ports of ports_for.

# PROXY_MAIN is the cuttable TCP proxy (test/support/tcp-proxy-main.ts): SIGUSR1 cuts, SIGUSR2 restores.
PROXY_MAIN=dist/test/support/tcp-proxy-main.js

# write_env: the cluster's record, sourced back by load_env (values quoted for bash).
write_env() {
  printf 'IDX=%s\nHOSTS=%s\nCONTROL_PLANES=%s\nETCD_MEMBERS=%s\nETCD_PROXY=%s\nHOST_STATE_SIZE=%s\n' \
    "$IDX" "$HOSTS" "$CONTROL_PLANES" "$ETCD_MEMBERS" "$ETCD_PROXY" "$HOST_STATE_SIZE"
  printf 'CP_ARGS=%q\n' "$CP_ARGS"
}

# topology_ports: the ports the chosen topology needs beyond the first replica's (for allocate_index).
topology_ports() {
  local r
  for ((r = 2; r <= CONTROL_PLANES; r++)); do echo $((API_PORT + 2 * (r - 1))) $((GW_PORT + 2 * (r - 1))); done
  ((ETCD_PROXY)) && echo "$PROXY_PORT"
  if ((ETCD_MEMBERS)); then
    for r in 1 2 3; do echo $((ETCD_PORT_BASE + r)) $((ETCD_PORT_BASE + 10 + r)); done
  fi
  return 0
}

# etcd_cluster VERB ARGS...: deploy/etcd-cluster for this cluster's external etcd, kept under the state dir.
etcd_cluster() {
  local verb=$1
  shift
  BERTH_ETCD_STATE_ROOT=$ETCD_STATE_ROOT "$REPO/deploy/etcd-cluster" "$verb" --name "$ETCD_CLUSTER_NAME" "$@"
}

# live_pid PIDFILE: the recorded pid when that process is alive, else null (JSON).
live_pid() {
  local pid
  if [[ -r "$1" ]] && pid=$(<"$1") && proc_alive "$pid"; then echo "$pid"; else echo null; fi
}

# cp_pid_file R / cp_log_file R / cp_data_dir R: replica 1 keeps the names a one-replica cluster always had.
cp_pid_file() { if (($1 == 1)); then echo "$RUN_DIR/control-plane.pid"; else echo "$RUN_DIR/control-plane-$1.pid"; fi; }
cp_log_file() { if (($1 == 1)); then echo "$RUN_DIR/control-plane.log"; else echo "$RUN_DIR/control-plane-$1.log"; fi; }
cp_data_dir() { if (($1 == 1)); then echo "$STATE_DIR/control-plane"; else echo "$STATE_DIR/control-plane-$1"; fi; }

# cp_api_port R / cp_gw_port R: replica R's ports, two apart within the cluster's block of ten.
cp_api_port() { echo $((API_PORT + 2 * ($1 - 1))); }
cp_gw_port() { echo $((GW_PORT + 2 * ($1 - 1))); }

# cp_etcd R: the etcd endpoints replica R dials (the last one goes through the proxy with --etcd-proxy).
cp_etcd() {
  if ((ETCD_MEMBERS == 0)); then echo "http://127.0.0.1:$ETCD_CLIENT_PORT"
  elif ((ETCD_PROXY && $1 == CONTROL_PLANES)); then echo "http://127.0.0.1:$PROXY_PORT"
  else echo "$ETCD_ENDPOINTS"; fi
}

# gateways: every replica's gateway, comma-separated, for the agents' --server (they rotate through them).
gateways() {
  local r out=()
  for ((r = 1; r <= CONTROL_PLANES; r++)); do out+=("$BRIDGE_ADDR:$(cp_gw_port "$r")"); done
  (IFS=,; echo "${out[*]}")
}

# start_control_plane R: start replica R detached. --config /dev/null: a host's
# /etc/berth/control-plane.yaml (admin-config, sealing-key-file...) must not leak into a throwaway cluster.
start_control_plane() {
  local r=$1 cp_args=() etcd_args=() shared=()
  read -r -a cp_args <<<"$CP_ARGS"
  if ((ETCD_MEMBERS)); then
    etcd_args=(--etcd "$(cp_etcd "$r")")
  else
    etcd_args=(--etcd-client-port "$ETCD_CLIENT_PORT" --etcd-peer-port "$ETCD_PEER_PORT")
  fi
  # every replica opens the CA with the first one's sealing key; the first writes the admin config
  if ((r > 1)); then shared=(--sealing-key-file "$STATE_DIR/control-plane/sealing.key" --admin-config "$ADMIN_CONFIG"); fi
  mkdir -p "$(cp_data_dir "$r")"
  proc_start "control-plane $r" "$(cp_log_file "$r")" "$(cp_pid_file "$r")" \
    "$NODE_BIN" "$REPO/dist/control-plane/main.js" \
    --listen "$BRIDGE_ADDR:$(cp_api_port "$r")" --gateway-listen "$BRIDGE_ADDR:$(cp_gw_port "$r")" \
    --data-dir "$(cp_data_dir "$r")" --config /dev/null "${etcd_args[@]}" "${shared[@]}" "${cp_args[@]}"
}

# wait_control_plane R: until replica R answers the CLI (the first must also have written the admin config).
wait_control_plane() {
  local r=$1 deadline=$((SECONDS + API_TIMEOUT_S)) url
  url=https://$BRIDGE_ADDR:$(cp_api_port "$1")
  until [[ -s "$ADMIN_CONFIG" ]] && berth_cli --server "$url" version >/dev/null 2>&1; do
    proc_alive "$(<"$(cp_pid_file "$r")")" || fail_up "control plane $r exited"
    ((SECONDS < deadline)) || fail_up "the API at $url did not answer within ${API_TIMEOUT_S}s"
    sleep 0.3
  done
}

# start_agent I: host I's agent, detached, in the host's netns; its state dir on a tmpfs with --host-state-size.
start_agent() {
  local i=$1 dir=$STATE_DIR/hosts/h$1
  mkdir -p "$dir"
  if [[ -n "$HOST_STATE_SIZE" ]] && ! mountpoint -q "$dir"; then
    mount -t tmpfs -o "size=$HOST_STATE_SIZE,mode=0700" tmpfs "$dir" || fail_up "could not mount a tmpfs on $dir"
  fi
  # nsenter joins only the network namespace: `ip netns exec` would also remount /sys, hiding
  # /sys/fs/cgroup from the agent, which needs it to run containers
  proc_start "agent h$i" "$RUN_DIR/agent-h$i.log" "$RUN_DIR/agent-h$i.pid" \
    nsenter --net="/run/netns/berth-$NAME-h$i" "$NODE_BIN" "$REPO/dist/agent/main.js" \
    --name "$NAME-h$i" --server "$(gateways)" --join-token-file "$JOIN_TOKEN_FILE" \
    --state-dir "$dir" --cgroup-parent "berth-$NAME/h$i" \
    --advertise-address "10.88.$IDX.$((10 + i))" --labels "host=h$i" \
    --metrics-listen 0.0.0.0:9480 --config "$STATE_DIR/agent-config.yaml"
}

# start_etcd_proxy: the cuttable proxy the last replica reaches etcd through; --label puts the run
# dir in its command line so down's sweep finds it.
start_etcd_proxy() {
  proc_start etcd-proxy "$RUN_DIR/etcd-proxy.log" "$RUN_DIR/etcd-proxy.pid" \
    "$NODE_BIN" "$REPO/$PROXY_MAIN" --listen "127.0.0.1:$PROXY_PORT" --upstream "$ETCD_ENDPOINTS" --label "$RUN_DIR/etcd-proxy"
}

# control_planes_json: the replicas as JSON array items, for status.
control_planes_json() {
  local r sep=''
  for ((r = 1; r <= CONTROL_PLANES; r++)); do
    printf '%s\n    { "replica": %s, "server": "https://%s:%s", "gateway": "%s:%s", "pid": %s, "log": "%s", "dataDir": "%s", "etcd": "%s" }' \
      "$sep" "$r" "$BRIDGE_ADDR" "$(cp_api_port "$r")" "$BRIDGE_ADDR" "$(cp_gw_port "$r")" "$(live_pid "$(cp_pid_file "$r")")" \
      "$(cp_log_file "$r")" "$(cp_data_dir "$r")" "$(cp_etcd "$r")"
    sep=','
  done
}
