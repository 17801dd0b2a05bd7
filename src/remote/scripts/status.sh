# fenton status: what a person training a model wants to know about this box, printed as
# sections that fenton parses (src/status/parse.rs). Each section starts with a line
# `@@fenton:NAME [ARG]`; a frame ends with `@@fenton:end`.
#
# Usage: sh -s -- MODE INTERVAL TMUX_SOCKET REMOTE_DIR MOUNT_PATH
#   MODE once:  one frame. CPU and network rates need two samples: the first comes from the
#               last status run on this box (kept in REMOTE_DIR/status.sample, when it is at
#               most 30 s old), else from a sample taken 0.25 s before the frame.
#   MODE watch: a frame every INTERVAL seconds until the connection goes away.
mode=$1 interval=$2 sock=$3 dir=$4 mnt=$5
LC_ALL=C
export LC_ALL
if [ ! -r /proc/stat ] || [ ! -r /proc/meminfo ]; then
  echo '@@fenton:notlinux'
  uname -s 2>/dev/null
  exit 0
fi
echo '@@fenton:hello 1'

# The counters that make rates: the clock (/proc/uptime), CPU ticks, network bytes.
# (One program for the three files, not three.)
sample() {
  echo '@@fenton:sample'
  awk 'FILENAME != "/proc/stat" || /^cpu/' /proc/uptime /proc/stat /proc/net/dev
}

# The nearest existing directory at or above $1, for df.
existing() {
  p=$1
  while [ -n "$p" ] && [ ! -e "$p" ]; do
    p=$(dirname "$p")
  done
  printf '%s\n' "${p:-/}"
}

disk() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$(bounded 5 df -Pk "$(existing "$2")" 2>/dev/null | sed -n 2p)"
}

# The four disks that matter from one df (one program started, not eight); where it does not
# give a line for each (one unreadable, or hung), each is asked on its own.
disks() {
  d_out=$(bounded 5 df -Pk "$(existing /)" "$(existing "$HOME")" "$(existing "$dir")" "$(existing "$mnt")" 2>/dev/null)
  n=0 d1='' d2='' d3='' d4=''
  while IFS= read -r l; do
    case $n in 1) d1=$l ;; 2) d2=$l ;; 3) d3=$l ;; 4) d4=$l ;; esac
    n=$((n + 1))
  done <<EOF
$d_out
EOF
  if [ "$n" = 5 ]; then
    printf 'root\t/\t%s\nhome\t%s\t%s\nremote_dir\t%s\t%s\nmount\t%s\t%s\n' \
      "$d1" "$HOME" "$d2" "$dir" "$d3" "$mnt" "$d4"
  else
    disk root /
    disk home "$HOME"
    disk remote_dir "$dir"
    disk mount "$mnt"
  fi
}

# `bounded SECS CMD...`: df on a hung network mount and nvidia-smi on a GPU fallen off the
# bus can block for ever; bounded where the box has timeout(1).
bounded() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi
}

gpus() {
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo '@@fenton:gpu none'
    return
  fi
  out=$(bounded 10 nvidia-smi --query-gpu=index,pci.bus_id,utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,power.draw,power.limit,fan.speed,name --format=csv,nounits 2>&1)
  code=$?
  if [ "$code" = 124 ]; then out='nvidia-smi did not answer within 10 s (a GPU fallen off the bus? see dmesg on the box)'; fi
  echo "@@fenton:gpu $code"
  printf '%s\n' "$out"
  [ "$code" = 0 ] || return
  out=$(bounded 10 nvidia-smi --query-compute-apps=gpu_bus_id,pid,used_gpu_memory,process_name --format=csv,nounits 2>&1)
  code=$?
  echo "@@fenton:gpu-apps $code"
  printf '%s\n' "$out"
  pids=$(printf '%s\n' "$out" | sed -n '2,$p' | awk -F', ' '{print $2}' | grep '^[0-9][0-9]*$' | tr '\n' ',')
  if [ -n "$pids" ]; then
    echo '@@fenton:gpu-users'
    ps -o pid=,user= -p "${pids%,}" 2>/dev/null
  fi
}

# tmux writes tabs in formats as `_`: fields are split at `|`, the name last.
sessions() {
  command -v tmux >/dev/null 2>&1 || return
  echo '@@fenton:tmux'
  # A tmux client hands its stdin and stdout to the server: a stopped server must not hold
  # this session's output open, so they are /dev/null and a file.
  { [ -d "$dir" ] || mkdir -p "$dir" 2>/dev/null; } || return
  tout=$dir/status.tmux.$$
  if [ -n "$sock" ]; then set -- -L "$sock"; else set --; fi
  bounded 5 tmux "$@" list-sessions -F '#{session_attached}|#{session_windows}|#{session_created}|#{session_name}' </dev/null >"$tout" 2>/dev/null
  cat "$tout" 2>/dev/null
  rm -f "$tout"
}

# fenton jobs: REMOTE_DIR/jobs/ID/{name,cmd,started,pid,wrapper,ended,exit,log}. A job runs
# while it has no `exit` and its process group (`pid`) or its wrapper is alive. The finished
# ones are only counted (`finished N`): a long history costs a look at one file per job.
fenton_jobs() {
  # The box's clock: how long a job has run is the box's business, not the laptop's.
  echo "@@fenton:jobs $now_s"
  [ -d "$dir/jobs" ] || return
  finished=0
  for j in "$dir"/jobs/*/started; do
    j=${j%started}
    if [ -f "${j}exit" ]; then
      finished=$((finished + 1))
      continue
    fi
    [ -f "${j}started" ] || continue
    name='' started='' pid='' wrapper='' ended='' alive=0
    read -r started <"${j}started"
    [ -r "${j}name" ] && read -r name <"${j}name"
    [ -r "${j}pid" ] && read -r pid <"${j}pid"
    [ -r "${j}wrapper" ] && read -r wrapper <"${j}wrapper"
    [ -r "${j}ended" ] && read -r ended <"${j}ended"
    if { [ -n "$pid" ] && kill -0 "-$pid" 2>/dev/null; } ||
      { [ -n "$wrapper" ] && kill -0 "$wrapper" 2>/dev/null; }; then
      alive=1
    fi
    id=${j%/}
    printf '%s\t%s\t%s\t\t%s\t%s\t%s\n' "${id##*/}" "$started" "$ended" "$pid" "$alive" "$name"
  done
  echo "finished $finished"
}

# The user's Jupyter servers that listen: fenton's own (its state in REMOTE_DIR/jupyter) and
# those whose runtime files say so, one `PID<TAB>PORT<TAB>USER<TAB>COMMAND` line each. A
# command line that merely mentions jupyter (pip, a job's arguments) is no server.
jupyters() {
  runtime=${JUPYTER_RUNTIME_DIR:-${JUPYTER_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter}/runtime}
  seen=' ' asked=''
  {
    [ -r "$dir/jupyter/pid" ] && [ -r "$dir/jupyter/port" ] &&
      printf '%s %s\n' "$(cat "$dir/jupyter/pid")" "$(cat "$dir/jupyter/port")"
    for f in "$runtime"/jpserver-*.json "$runtime"/nbserver-*.json; do
      [ -f "$f" ] || continue
      tr -d ' \n' <"$f" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p' | tr '\n' ' '
      tr -d ' \n' <"$f" | sed -n 's/.*"port":\([0-9]*\).*/\1/p'
    done
  } | while read -r pid port; do
    case $pid$port in '' | *[!0-9]*) continue ;; esac
    case $seen in *" $pid "*) continue ;; esac
    [ -r "/proc/$pid/cmdline" ] || continue
    # The listening ports and the user, asked only when there is a server to check.
    if [ -z "$asked" ]; then
      listen=$(awk '$4 == "0A" { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
      me=$(id -un 2>/dev/null)
      asked=1
    fi
    printf '%s\n' "$listen" | grep -qx "$(printf '%04X' "$port")" || continue
    seen="$seen$pid "
    printf '%s\t%s\t%s\t%s\n' "$pid" "$port" "$me" "$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  done
}

# fenton monitor's recorder (REMOTE_DIR/monitor): `running|gone SINCE KIB`, nothing when it
# was never started or was stopped. `gone`: its pid file stayed, its process did not.
recorder() {
  echo "@@fenton:monitor $now_s"
  m=$dir/monitor
  [ -r "$m/pid" ] || return 0
  pid='' since=''
  read -r pid <"$m/pid"
  [ -r "$m/since" ] && read -r since <"$m/since"
  state=gone
  case $pid in '' | 0 | 1 | *[!0-9]*) ;; *) kill -0 "$pid" 2>/dev/null && state=running ;; esac
  printf '%s %s %s\n' "$state" "${since:-0}" "$(du -sk "$m" 2>/dev/null | awk '{ print $1 }')"
}

frame() {
  now_s=$(date +%s)
  sample
  echo '@@fenton:host'
  # Read by the shell where /proc has them: programs started are most of this script's time.
  h='' os='' rel=''
  { read -r h </proc/sys/kernel/hostname && read -r os </proc/sys/kernel/ostype &&
    read -r rel </proc/sys/kernel/osrelease; } 2>/dev/null
  if [ -n "$h" ] && [ -n "$os" ] && [ -n "$rel" ]; then
    printf '%s\n%s %s\n' "$h" "$os" "$rel"
  else
    hostname
    uname -sr
  fi
  echo '@@fenton:loadavg'
  read -r l </proc/loadavg
  printf '%s\n' "$l"
  echo '@@fenton:cpuinfo'
  nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo
  grep -m 1 '^model name' /proc/cpuinfo
  echo '@@fenton:meminfo'
  grep -E '^(MemTotal|MemAvailable|MemFree|Buffers|Cached|SwapTotal|SwapFree):' /proc/meminfo
  echo '@@fenton:df'
  disks
  gpus
  sessions
  echo '@@fenton:jupyter'
  jupyters
  fenton_jobs
  recorder
  echo '@@fenton:end'
}

cache="$dir/status.sample"
if [ "$mode" = once ]; then
  read -r now _ </proc/uptime
  last=0
  [ -r "$cache" ] && read -r last _ <"$cache"
  case ${last%.*} in '' | *[!0-9]*) last=0 ;; esac
  age=$((${now%.*} - ${last%.*}))
  if [ "$last" != 0 ] && [ "$age" -ge 0 ] && [ "$age" -le 30 ]; then
    echo '@@fenton:sample'
    cat "$cache"
  else
    sample
    sleep 0.25 2>/dev/null || sleep 1
  fi
  out=$(frame)
  printf '%s\n' "$out"
  { [ -d "$dir" ] || mkdir -p "$dir" 2>/dev/null; } &&
    printf '%s\n' "$out" | sed -n '/^@@fenton:sample/,/^@@fenton:host/{/^@@fenton:/!p;}' >"$cache.$$" &&
    mv -f "$cache.$$" "$cache" 2>/dev/null
  exit 0
fi

# `nap SECS`: the pause between frames, a second at a time, each second ending with an empty
# line (fenton skips those). Writing is how a script without a terminal learns that fenton
# has gone (SIGPIPE ends it): a long interval leaves nothing on the box past a second.
nap() {
  n=${1%%.*}
  case $n in '' | *[!0-9]*) n=0 ;; esac
  while [ "$n" -gt 0 ]; do
    sleep 1
    echo
    n=$((n - 1))
  done
  case $1 in *.*) sleep "0.${1#*.}" 2>/dev/null ;; esac
}

sample
sleep 0.25 2>/dev/null || sleep 1
while frame; do
  nap "$interval"
done
