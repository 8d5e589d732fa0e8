# shellcheck shell=bash
# Process and cgroup handling of a local cluster: start detached, stop by recorded pid, sweep
# whatever is left by its command line, and empty and remove the cluster's cgroup subtrees.
# Sourced by deploy/local-cluster.

STOP_GRACE_S=${STOP_GRACE_S:-10}
CGROUP_KILL_ROUNDS=20

# proc_start NAME LOGFILE PIDFILE CMD...: start CMD in its own session, output to LOGFILE, pid to PIDFILE.
proc_start() {
  local name=$1 log=$2 pidfile=$3
  shift 3
  # without job control a background job is not a group leader, so setsid execs in place and $! is CMD's pid
  setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
  info "started $name (pid $!, log $log)"
}

# proc_alive PID: true when PID exists and is not a zombie.
proc_alive() {
  local pid=$1 state
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$state" != "Z" ]]
}

# proc_cmdline_has PID TEXT: true when PID's command line contains TEXT (guards against reused pids).
proc_cmdline_has() {
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# proc_stop PIDFILE MARKER: SIGTERM the recorded pid if its command line holds MARKER, SIGKILL after the grace period.
proc_stop() {
  local pidfile=$1 marker=$2 pid deadline
  [[ -r "$pidfile" ]] || return 0
  pid=$(<"$pidfile")
  if proc_alive "$pid" && proc_cmdline_has "$pid" "$marker"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_GRACE_S))
    while proc_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if proc_alive "$pid"; then
      warn "pid $pid ignored SIGTERM for ${STOP_GRACE_S}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# proc_sweep TEXT: SIGKILL every process whose command line contains TEXT (etcd orphaned by a killed control plane, ...).
proc_sweep() {
  local text=$1 dir pid round found
  for round in 1 2 3 4 5; do
    found=0
    for dir in /proc/[0-9]*; do
      pid=${dir#/proc/}
      [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
      if proc_cmdline_has "$pid" "$text"; then
        found=1
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    ((found == 0)) && return 0
    sleep 0.2
  done
  warn "processes mentioning $text survived $round rounds of SIGKILL"
}

# proc_kill_netns NETNS: SIGKILL whatever still runs in a host's netns (shims, helpers).
proc_kill_netns() {
  local pid
  for pid in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
}

# cgroup_dirs NAME: every cgroup directory berth-NAME across the mounted hierarchies (v1 controllers and unified).
cgroup_dirs() {
  local d
  for d in /sys/fs/cgroup/berth-"$1" /sys/fs/cgroup/*/berth-"$1"; do
    [[ -d "$d" ]] && echo "$d"
  done
  return 0
}

# cgroup_destroy NAME: kill every process in the berth-NAME subtrees (containers outlive their agents),
# then remove the directories bottom-up. Repeats a bounded number of times because dying processes
# leave cgroups busy for a moment.
cgroup_destroy() {
  local name=$1 round dir pid procs remaining
  for ((round = 1; round <= CGROUP_KILL_ROUNDS; round++)); do
    procs=0
    while read -r dir; do
      while read -r pid; do
        [[ -n "$pid" ]] || continue
        procs=1
        kill -KILL "$pid" 2>/dev/null || true
      done < <(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)
    done < <(cgroup_dirs "$name")
    if ((procs)); then sleep 0.2; continue; fi
    while read -r dir; do
      find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done < <(cgroup_dirs "$name")
    remaining=$(cgroup_dirs "$name")
    [[ -z "$remaining" ]] && return 0
    sleep 0.2
  done
  warn "cgroups still present: $(cgroup_dirs "$name" | tr '\n' ' ')"
  return 1
}

# mounts_under DIR: mount points at or below DIR, deepest first, from this mount namespace.
mounts_under() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# mounts_release DIR: lazily unmount everything left mounted under DIR (normally nothing: container
# mounts live in the containers' mount namespaces).
mounts_release() {
  local m
  while read -r m; do
    [[ -n "$m" ]] || continue
    umount -l "$m" 2>/dev/null || warn "could not unmount $m"
  done < <(mounts_under "$1")
}
