# Helpers for bench/run.sh (source it; bash only). Every process is started by us, recorded by
# pid in $RUN_DIR, and stopped by that pid only.

NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# descendants PID : PID and all its descendants (nginx master + worker, for instance)
descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { pp[$1] = $2 }
    END { keep[root] = 1; changed = 1
          while (changed) { changed = 0
            for (p in pp) if (!(p in keep) && (pp[p] in keep)) { keep[p] = 1; changed = 1 } }
          if (root in pp) for (p in keep) print p }'
}

# tree_cpu_split PID : "utime stime" (clock ticks, all threads) summed over PID and descendants
tree_cpu_split() {
  local p u=0 k=0 s
  for p in $(descendants "$1"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }          # drop "pid (comm) ": comm may contain spaces
    set -- $s            # now $12 = utime, $13 = stime (fields 14 and 15 of the full line)
    u=$((u + ${12})); k=$((k + ${13}))
  done
  echo "$u $k"
}

# tree_cpu_ticks PID : utime+stime (clock ticks) of PID and its descendants
tree_cpu_ticks() { local u k; read -r u k < <(tree_cpu_split "$1"); echo $((u + k)); }

# tree_status_kb PID FIELD : sum of a /proc/PID/status field (VmRSS, VmHWM) over the tree, KiB
tree_status_kb() {
  local p t=0 v
  for p in $(descendants "$1"); do
    v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
    t=$((t + ${v:-0}))
  done
  echo $t
}

# cpu_jiffies N : "busy total" jiffies of CPU N from /proc/stat (busy = all but idle and iowait)
cpu_jiffies() {
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

# port_busy PORT : something accepts connections on 127.0.0.1:PORT (bash's /dev/tcp, no iproute2)
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port_free() { local i; for i in $(seq 50); do port_busy "$1" || return 0; sleep 0.1; done; return 1; }

# wait_http URL [SECONDS] : until URL answers anything over HTTP
wait_http() {
  local i
  for i in $(seq $((${2:-20} * 10))); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.1
  done
  return 1
}

# ngx_start NAME CONF [PIN...] : nginx with prefix $RUN_DIR/ (the conf writes NAME.pid there).
# Start-up messages go to NAME.error.log too (e.g. "worker_connections exceed open file
# resource limit"), and are shown only when nginx does not start.
ngx_start() {
  local name=$1 conf=$2 pidf=$RUN_DIR/$1.pid errf=$RUN_DIR/$1.error.log i; shift 2
  if ! { "$NGINX_BIN" -t -q -p "$RUN_DIR/" -c "$conf" -e "$errf" &&
         "$@" "$NGINX_BIN" -p "$RUN_DIR/" -c "$conf" -e "$errf"; } 2>>"$errf"; then
    tail -5 "$errf" >&2; return 1
  fi
  for i in $(seq 50); do [[ -s $pidf ]] && break; sleep 0.1; done
  [[ -s $pidf ]] || { log "$name: no pid file"; return 1; }
}

# proc_start NAME LOGFILE CMD... : CMD in the background (exec'd, so $! is its pid) -> NAME.pid
proc_start() {
  local name=$1 logf=$2; shift 2
  ( exec "$@" ) >"$logf" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}

# proc_stop NAME : TERM the recorded pid (for nginx, its master: a fast shutdown, where QUIT would
# wait for idle keep-alive clients), KILL after 5 s
proc_stop() {
  local pidf=$RUN_DIR/$1.pid pid i
  [[ -s $pidf ]] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  wait "$pid" 2>/dev/null
  rm -f "$pidf"
}
