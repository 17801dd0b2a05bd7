# fenton's Jupyter on a Slurm cluster, run on the login node: sent on stdin to `sh -s` after
# `set -- ACTION STATE [...]` and, for a start, `$token`, `$sbatch_options` and `$node_ssh`
# (shell words quoted by fenton) and `$notify_files` (fenton's lines that write the
# channels' files, as for a job; job.sh's senders are written above this script).
#
#   start STATE QUEUE_TIMEOUT START_TIMEOUT DIR PORT COMMAND SETUP
#   status STATE [token]
#   stop STATE
#
# The notebook is a batch job (STATE/job.sh) whose server listens on the node's loopback when
# the login node can ssh to the node (then an ssh from the login node, "the hop", forwards
# STATE/hop.sock to it), else on the node's address. STATE is on the filesystem the login and
# compute nodes share; it holds: token (0600), job (Slurm's id), job.sh, log (the job's
# output), dir, command, setup (until the job reads it), want_port, umask; the job writes node
# and port, the login node bind ("loopback" or the address), hop.sock, watch.pid.
# A start streams `key value` lines as it goes (queue, running, bind, ready…).
set -u
action=$1
state=$2
case $state in /*) ;; *) state=$PWD/$state ;; esac
# (After slurm-lib.sh: times are Unix seconds.)
LC_ALL=C
export LC_ALL

bounded() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}

# `STATE|NODE|REASON|END|LEFT|LIMIT|START` of the recorded job (END and START as Unix
# seconds); empty once Slurm forgot it.
job_line() {
  [ -s "$state/job" ] || return 0
  bounded 20 squeue -h -j "$(cat "$state/job")" -o '%T|%N|%r|%e|%L|%l|%S' 2>/dev/null | head -n 1
}

# warn LEFT_SECONDS: says once, on every configured channel and in STATE/warned, that the
# allocation's time limit is about to end the notebook.
warn() {
  [ -f "$state/warned" ] && return 0
  host=$(uname -n | tr -cd 'A-Za-z0-9.-')
  node=$(tr -cd 'A-Za-z0-9.-' <"$state/node" 2>/dev/null)
  mins=$((($1 + 59) / 60))
  text="Jupyter on $node (Slurm job $job) ends in about $mins min, when its allocation reaches its time limit: save your notebooks."
  printf '%s %s\n' "$(date +%s)" "$1" >"$state/warned"
  fj_n=$state/notify.d
  [ -d "$fj_n" ] || return 0
  title="fenton: Jupyter on $node ends in $mins min"
  if [ -f "$fj_n/telegram.curl" ]; then
    fj_send telegram "$(printf '{"chat_id":%s,"text":%s}' "$(cat "$fj_n/telegram.chat")" "$(fj_jstr "$text")")" \
      'Content-Type: application/json'
  fi
  if [ -f "$fj_n/ntfy.curl" ]; then
    fj_send ntfy "$text" 'Content-Type: text/plain; charset=utf-8' "Title: $title" \
      "Priority: high" "Tags: fenton,hourglass"
  fi
  if [ -f "$fj_n/webhook.curl" ]; then
    fj_send webhook "$(printf '{"source":"fenton","event":"jupyter_ending","host":%s,"id":%s,"name":"jupyter","left_s":%s,"title":%s,"text":%s}' \
      "$(fj_jstr "$host")" "$(fj_jstr "$job")" "$1" "$(fj_jstr "$title")" "$(fj_jstr "$text")")" \
      'Content-Type: application/json'
  fi >/dev/null
}

# Whether the recorded job is still queued or running (not ended, not ending).
alive() {
  case $(job_line | cut -d'|' -f1) in
  PENDING | RUNNING | CONFIGURING | REQUEUED | RESIZING | SUSPENDED) return 0 ;;
  *) return 1 ;;
  esac
}

tail_log() {
  printf 'log-begin\n'
  tail -n 20 "$state/log" 2>/dev/null
}

report() {
  line=$(job_line)
  printf 'job %s\n' "$(cat "$state/job" 2>/dev/null)"
  printf 'slurm %s\n' "$line"
  for f in node addr port bind; do
    printf '%s %s\n' "$f" "$(cat "$state/$f" 2>/dev/null)"
  done
  if [ -S "$state/hop.sock" ]; then printf 'socket %s\n' "$state/hop.sock"; fi
  if [ -s "$state/watch.pid" ] && kill -0 "$(cat "$state/watch.pid")" 2>/dev/null; then
    printf 'watcher %s\n' "$(cat "$state/watch.pid")"
  fi
  if [ -s "$state/warned" ]; then printf 'warned %s\n' "$(cat "$state/warned")"; fi
  printf 'now %s\n' "$(date +%s)"
  printf 'dir %s\n' "$(cat "$state/dir" 2>/dev/null)"
}

# Ends the hop and the watcher (by the pids they recorded).
unhop() {
  for f in watch.pid hop.pid; do
    pid=$(cat "$state/$f" 2>/dev/null)
    case $pid in '' | *[!0-9]* | 0 | 1) ;; *) kill "$pid" 2>/dev/null ;; esac
    rm -f "$state/$f"
  done
  rm -f "$state/hop.sock"
}

# The ssh from the login node to the node, with the profile's options.
node_ssh() {
  # shellcheck disable=SC2154 # fenton sets $node_ssh before the script: quoted words
  eval "set -- $node_ssh \"\$@\""
  ssh -o BatchMode=yes -o ConnectTimeout=10 "$@"
}

# The hop and, beside it, a watcher that asks squeue about the job every 15 s and takes the
# hop down when the job ends (one scheduler query per interval, never a tight loop); it
# brings a dead hop back while the job runs, and says in STATE/warned when the job's time
# is almost up.
hop_and_watch() {
  addr=$(cat "$state/addr") port=$(cat "$state/port") job=$(cat "$state/job")
  (
    trap '' HUP
    exec </dev/null >/dev/null 2>&1
    # ssh itself in the background (not a function that runs it), so its pid is the one
    # recorded and a stop ends it.
    hop() {
      rm -f "$state/hop.sock"
      eval "ssh -o BatchMode=yes -o ConnectTimeout=10 $node_ssh -N -o ExitOnForwardFailure=yes \
        -o ServerAliveInterval=15 -L \"\$state/hop.sock:127.0.0.1:\$port\" \"\$addr\" \
        2>\"\$state/hop.err\" &"
      echo $! >"$state/hop.pid"
    }
    [ "$(cat "$state/bind")" = loopback ] && hop
    while :; do
      line=$(job_line)
      case $(printf '%s' "$line" | cut -d'|' -f1) in
      RUNNING | COMPLETING) ;;
      *) break ;;
      esac
      # The warning comes a tenth of the limit before its end (1 to 10 minutes before).
      end=$(printf '%s' "$line" | cut -d'|' -f4) begin=$(printf '%s' "$line" | cut -d'|' -f7)
      case $end$begin in *[!0-9]* | '') ;; *)
        soon=$(((end - begin) / 10))
        [ "$soon" -lt 60 ] && soon=60
        [ "$soon" -gt 600 ] && soon=600
        left=$((end - $(date +%s)))
        [ "$left" -le "$soon" ] && warn "$((left < 0 ? 0 : left))"
        ;;
      esac
      sleep 15
      if [ -s "$state/hop.pid" ] && ! kill -0 "$(cat "$state/hop.pid")" 2>/dev/null; then hop; fi
    done
    # The job ended (its time limit, a scancel elsewhere): its secrets go with it.
    kill "$(cat "$state/hop.pid" 2>/dev/null)" 2>/dev/null
    rm -f "$state/hop.sock" "$state/hop.pid" "$state/watch.pid" "$state/token"
    rm -rf "$state/notify.d"
  ) &
  echo $! >"$state/watch.pid"
  if [ "$(cat "$state/bind")" = loopback ]; then
    i=0
    until [ -S "$state/hop.sock" ]; do
      i=$((i + 1))
      hop=$(cat "$state/hop.pid" 2>/dev/null)
      if [ $i -gt 150 ] || { [ -n "$hop" ] && ! kill -0 "$hop" 2>/dev/null; }; then
        printf 'error the ssh from the login node to %s did not forward the notebook (%s), so fenton cancelled its job: see jupyter.node_ssh_options\n' "$addr" "$(tail -n 1 "$state/hop.err" 2>/dev/null)"
        bounded 20 scancel "$job" 2>/dev/null
        unhop
        rm -f "$state/token" "$state/job"
        return 1
      fi
      sleep 0.1
    done
  fi
}

case "$action" in
status)
  if alive; then
    printf 'running\n'
    report
    if [ "${3:-}" = token ]; then printf 'token %s\n' "$(cat "$state/token")"; fi
  else
    printf 'stopped\n'
  fi
  ;;

stop)
  if [ -s "$state/job" ]; then
    job=$(cat "$state/job")
    was=$(job_line | cut -d'|' -f1)
    bounded 20 scancel "$job" 2>/dev/null
    # scancel says nothing and exits 0 even for a job it did not end: ask squeue.
    i=0
    while [ $i -lt 150 ]; do
      case $(job_line | cut -d'|' -f1) in '' | CANCELLED* | COMPLETED | FAILED | TIMEOUT) break ;; esac
      sleep 0.2
      i=$((i + 1))
    done
    left=$(job_line | cut -d'|' -f1)
    unhop
    rm -f "$state/token" "$state/job" "$state/bind" "$state/port" "$state/node" "$state/addr" "$state/warned"
    rm -rf "$state/notify.d"
    case $left in
    '' | CANCELLED* | COMPLETED | FAILED | TIMEOUT) printf 'stopped %s %s\n' "$job" "$was" ;;
    *) printf 'stuck %s %s\n' "$job" "$left" ;;
    esac
  else
    printf 'notrunning\n'
  fi
  ;;

start)
  queue_timeout=$3 start_timeout=$4 dir=$5 port=$6 command=$7 setup=$8
  command -v sbatch >/dev/null 2>&1 || {
    printf 'error sbatch is not on the PATH of the login node: see fenton doctor\n'
    exit 0
  }
  login_umask=$(umask)
  umask 077
  mkdir -p "$state" || exit 1
  if alive; then
    printf 'reused %s\n' "$(cat "$state/job")"
  else
    unhop
    rm -f "$state/token" "$state/job" "$state/node" "$state/addr" "$state/port" "$state/bind" "$state/log"
    # shellcheck disable=SC2154 # fenton sets $token in the lines before this script.
    # printf is a shell builtin: the token reaches the file without being any process's argument.
    printf '%s' "$token" >"$state/token"
    printf '%s' "$dir" >"$state/dir"
    printf '%s' "$command" >"$state/command"
    printf '%s' "$setup" >"$state/setup"
    printf '%s' "$port" >"$state/want_port"
    printf '%s' "$login_umask" >"$state/umask"
    rm -rf "$state/notify.d" "$state/warned"
    # fenton sets $notify_files before the script: lines that write into $fj_files.
    # shellcheck disable=SC2154,SC2034
    if [ -n "$notify_files" ]; then
      mkdir "$state/notify.d" && fj_files=$state && eval "$notify_files"
    fi
    # What the node runs: nothing secret in it, and the state directory its one argument.
    cat >"$state/job.sh" <<'EOF'
#!/bin/sh
state=$1
cd "$state" || exit 1
# Jupyter prefers JUPYTER_TOKEN to the file: one inherited from the login node would lock
# fenton out.
unset JUPYTER_TOKEN
JUPYTER_TOKEN_FILE=$state/token
export JUPYTER_TOKEN_FILE
printf "%s" "${SLURMD_NODENAME:-$(uname -n)}" >node.new && mv node.new node
# The login node says how to listen: on loopback (it reaches the node by ssh) or on the
# node's address.
i=0
until [ -s bind ]; do
  i=$((i + 1))
  [ $i -gt 3000 ] && { echo 'fenton: the login node never said where to listen'; exit 1; }
  sleep 0.2
done
bind=$(cat bind)
case $bind in loopback) ip=127.0.0.1 ;; *) ip=$bind ;; esac
listening() {
  grep -q ":$(printf '%04X' "$1") [0-9A-F]*:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
port=$(cat want_port)
n=0
while listening "$port" && [ $n -lt 100 ]; do port=$((port + 1)); n=$((n + 1)); done
printf '%s' "$port" >port.new && mv port.new port
dir=$(cat dir)
cd "$dir" || { printf 'fenton: cannot enter jupyter.dir %s\n' "$dir"; exit 1; }
setup=$(cat "$state/setup")
rm -f "$state/setup"
umask "$(cat "$state/umask")"
if [ -n "$setup" ]; then
  eval "$setup" || { printf 'fenton: jupyter.setup failed (status %s)\n' "$?"; exit 1; }
fi
root=
[ "$(id -u)" = 0 ] && root=--ServerApp.allow_root=True
eval "exec $(cat "$state/command")" --ServerApp.ip="$ip" --ServerApp.port="$port" \
  --ServerApp.port_retries=0 --ServerApp.open_browser=False --ServerApp.root_dir='"$PWD"' '$root'
EOF
    chmod 700 "$state/job.sh"
    # shellcheck disable=SC2154 # fenton sets $sbatch_options before the script: quoted words
    eval "set -- $sbatch_options"
    # The node reads `%j`, `%u`... in an output path as the job's id, the user...: `%%` is a
    # `%`. A backslash changes how Slurm reads the whole path: refused.
    case $state in
      *\\*)
        printf 'error remote_dir holds a backslash, which Slurm reads in a log path: set it to a path without one\n'
        exit 0
        ;;
    esac
    log=$(printf '%s/log\n' "$state" | sed 's/%/%%/g')
    out=$(fj_user_time; bounded 60 sbatch --parsable --job-name=fenton-jupyter --output="$log" \
      --chdir="$state" "$@" "$state/job.sh" "$state" 2>&1)
    rc=$?
    job=$(printf '%s\n' "$out" | sed -n 's/^\([0-9][0-9]*\)\(;.*\)\{0,1\}$/\1/p' | tail -n 1)
    if [ "$rc" != 0 ] || [ -z "$job" ]; then
      printf 'refused %s\n' "$rc"
      printf '%s\n' "$out" | tail -n 4
      rm -f "$state/token" "$state/setup"
      exit 0
    fi
    printf '%s' "$job" >"$state/job"
    printf 'submitted %s\n' "$job"
  fi
  job=$(cat "$state/job")
  # The queue: a line each time its state or reason changes, squeue every 2 s.
  waited=0 last=
  while :; do
    line=$(job_line)
    st=$(printf '%s' "$line" | cut -d'|' -f1)
    case $st in
    RUNNING) break ;;
    PENDING | CONFIGURING | REQUEUED | SUSPENDED | '') ;;
    *)
      printf 'gone %s\n' "$st"
      tail_log
      rm -f "$state/token"
      exit 0
      ;;
    esac
    if [ -z "$st" ] && [ $waited -gt 10 ]; then
      printf 'gone unknown\n'
      tail_log
      rm -f "$state/token"
      exit 0
    fi
    if [ "$line" != "$last" ]; then
      printf 'queue %s\n' "$line"
      last=$line
    fi
    if [ $waited -ge "$queue_timeout" ]; then
      bounded 20 scancel "$job" 2>/dev/null
      printf 'queue-timeout %s\n' "$line"
      rm -f "$state/token" "$state/job"
      exit 0
    fi
    # Every second for the first 10 s (a free cluster starts a job at once), then every 2 s.
    step=2
    [ $waited -lt 10 ] && step=1
    sleep $step
    waited=$((waited + step))
  done
  node=$(job_line | cut -d'|' -f2)
  if [ ! -s "$state/bind" ]; then
    addr=$(bounded 20 scontrol -o show node "$node" 2>/dev/null | tr ' ' '\n' | sed -n 's/^NodeAddr=//p' | head -n 1)
    [ -n "$addr" ] || addr=$node
    printf '%s' "$addr" >"$state/addr"
    printf 'running %s %s\n' "$node" "$addr"
    # Loopback when this login node may ssh to the node (most sites allow it to the nodes
    # running your job); else the node's address, which fenton says.
    if node_ssh -n "$addr" true </dev/null >/dev/null 2>"$state/hop.err"; then
      printf 'loopback' >"$state/bind.new"
    else
      printf '%s' "$addr" >"$state/bind.new"
    fi
    mv "$state/bind.new" "$state/bind"
    printf 'bind %s\n' "$(cat "$state/bind")"
  fi
  deadline=$(($(date +%s) + start_timeout))
  until [ -s "$state/port" ]; do
    if ! alive; then
      printf 'died\n'
      tail_log
      rm -f "$state/token"
      exit 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      printf 'timeout\n'
      bounded 20 scancel "$job" 2>/dev/null
      tail_log
      rm -f "$state/token" "$state/job"
      exit 0
    fi
    sleep 0.2
  done
  if [ ! -s "$state/watch.pid" ] || ! kill -0 "$(cat "$state/watch.pid")" 2>/dev/null; then
    hop_and_watch || exit 0
  fi
  printf 'ready\n'
  report
  printf 'token %s\n' "$(cat "$state/token")"
  ;;
esac
