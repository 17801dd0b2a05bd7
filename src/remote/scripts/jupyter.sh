# fenton's Jupyter on the box, sent on stdin to `sh -s` after `set -- ACTION STATE [...]`.
#
#   start STATE SOCKET SESSION DIR PORT TIMEOUT COMMAND SETUP keep|new   ($token set by fenton,
#         above; with keep, a token file already there is kept, so a saved URL keeps working)
#   status STATE [token]
#   stop STATE
#
# STATE holds: token (0600, no newline; kept when the server stops), pid, port, started
# (epoch), dir, command, setup (until the window reads it), run.sh (what the tmux window
# runs) and log (what Jupyter printed). Output: `key value` lines.
set -u
action=$1
state=$2
# Absolute: the window starts wherever tmux likes and enters it.
case $state in /*) ;; *) state=$PWD/$state ;; esac

# The server recorded in STATE, if that process is still alive and still ours.
running() {
  [ -f "$state/pid" ] || return 1
  pid=$(cat "$state/pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -e 'port_retries=0' -e 'run\.sh'
}

# Whether something listens on TCP port $1 (any address, IPv4 or IPv6). One process: the
# start polls it.
listening() {
  grep -q ":$(printf '%04X' "$1") [0-9A-F]*:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# `pid command line` of the program listening on TCP port $1, when this user may see it.
listener() {
  hex=$(printf '%04X' "$1")
  inodes=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    awk -v p=":$hex" 'substr($2, length($2) - 4) == p && $4 == "0A" { print $10 }')
  for inode in $inodes; do
    # shellcheck disable=SC2012 # ls -l is the one way to read every fd link in one process
    pid=$(ls -l /proc/[0-9]*/fd 2>/dev/null | awk -v s="socket:[$inode]" '
      /^\/proc\// { dir = $0; sub(/^\/proc\//, "", dir); sub(/\/fd:$/, "", dir) }
      $NF == s { print dir; exit }')
    if [ -n "$pid" ]; then
      printf '%s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
      return
    fi
  done
}

# tmux on the profile's socket, its output in $state/tmux.out; a stopped or wedged server
# gets 10 s (where the box has timeout(1)), then an `error` line that names it, and the exit
# status 124. A tmux client hands its stdin and stdout to the server: never this session's
# or a pipe, which a stopped server would then hold open for ever.
t() {
  if [ -n "$socket" ]; then set -- -L "$socket" "$@"; fi
  if command -v timeout >/dev/null 2>&1; then set -- timeout 10 tmux "$@"; else set -- tmux "$@"; fi
  "$@" </dev/null >"$state/tmux.out" 2>/dev/null
  rc=$?
  if [ "$rc" = 124 ]; then
    printf 'error tmux on the box did not answer within 10 s (its server is stopped or wedged): look with "fenton ssh", or end it with tmux kill-server\n'
  fi
  return "$rc"
}

report() {
  printf 'pid %s\nport %s\nstarted %s\nnow %s\ndir %s\n' "$pid" "$(cat "$state/port")" \
    "$(cat "$state/started" 2>/dev/null)" "$(date +%s)" "$(cat "$state/dir" 2>/dev/null)"
}

# Stops the server: the window's process group (Jupyter, and setup's children and tee with
# it), TERM first and, after 10 s, KILL.
stop_server() {
  kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
}

# One start or stop at a time: a second waits here (for the first's start, $1 s at most, and
# its stop), then finds what the first left. The lock is a directory holding its holder's
# pid; one whose holder died is broken.
lock() {
  (umask 077 && mkdir -p "$state") || exit 1
  waited=0
  until mkdir "$state/lock" 2>/dev/null; do
    holder=$(cat "$state/lock/pid" 2>/dev/null)
    if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then
      rm -rf "$state/lock"
      continue
    fi
    waited=$((waited + 1))
    if [ "$waited" -gt $((($1 + 20) * 10)) ]; then
      printf 'error another fenton has been starting or stopping Jupyter on the box for %s s: wait for it, or remove %s\n' "$(($1 + 20))" "$state/lock"
      exit 0
    fi
    sleep 0.1
  done
  echo $$ >"$state/lock/pid"
  trap 'rm -rf "$state/lock"' EXIT
  trap 'exit 1' HUP INT TERM
}

tail_log() {
  printf 'log-begin\n'
  tail -n 20 "$state/log" 2>/dev/null
}

case "$action" in
status)
  if running; then
    printf 'running\n'
    report
    if [ "${3:-}" = token ]; then printf 'token %s\n' "$(cat "$state/token")"; fi
  else
    printf 'stopped\n'
  fi
  ;;

stop)
  lock 60
  if running; then
    stop_server
    printf 'stopped %s\n' "$pid"
  else
    printf 'notrunning\n'
  fi
  rm -f "$state/pid"
  ;;

start)
  socket=$3 session=$4 dir=$5 port=$6 timeout=$7 command=$8 setup=$9 renew=${10}
  lock "$timeout"
  if running; then
    printf 'running\n'
    report
    printf 'token %s\n' "$(cat "$state/token")"
    exit 0
  fi
  command -v tmux >/dev/null 2>&1 || {
    printf 'error tmux is not installed on the box: install it (e.g. apt install tmux)\n'
    exit 0
  }
  if listening "$port"; then
    printf 'busy %s\n' "$(listener "$port")"
    exit 0
  fi
  login_umask=$(umask)
  umask 077
  mkdir -p "$state" || exit 1
  # A token removed only by a failed start of its own: one that was there stays.
  fresh=0
  if [ "$renew" = keep ] && [ -s "$state/token" ]; then
    token=$(cat "$state/token")
  else
    fresh=1
    rm -f "$state/token"
    # shellcheck disable=SC2154 # fenton sets $token in the lines before this script.
    # printf is a shell builtin: the token reaches the file without being any process's argument.
    printf '%s' "$token" >"$state/token"
  fi
  printf '%s' "$port" >"$state/port"
  printf '%s' "$dir" >"$state/dir"
  printf '%s' "$command" >"$state/command"
  printf '%s' "$setup" >"$state/setup"
  rm -f "$state/log" "$state/pid" "$state/fifo" "$state/tee.pid"
  # What the window runs: nothing secret in it, nothing on its command line but `./run.sh`.
  cat >"$state/run.sh" <<'EOF'
state=$PWD
# Jupyter prefers JUPYTER_TOKEN to the file: one inherited from tmux would lock fenton out.
unset JUPYTER_TOKEN
JUPYTER_TOKEN_FILE=$state/token
export JUPYTER_TOKEN_FILE
# Jupyter's output goes to the pane and to the log fenton shows when the start fails; tee
# ignores the hangup that comes when the pane closes, to finish writing the log.
mkfifo fifo || exit 1
trap '' HUP
tee -a log <fifo &
echo $! >tee.pid
trap - HUP
exec >fifo 2>&1
rm -f fifo
dir=$(cat dir)
cd "$dir" || { printf 'fenton: cannot enter jupyter.dir %s\n' "$dir"; exit 1; }
# setup may export a secret: it is said nowhere, and kept on disk only until it is read.
setup=$(cat "$state/setup")
rm -f "$state/setup"
if [ -n "$setup" ]; then
  eval "$setup" || { printf 'fenton: jupyter.setup failed (status %s)\n' "$?"; exit 1; }
fi
root=
[ "$(id -u)" = 0 ] && root=--ServerApp.allow_root=True
eval "exec $(cat "$state/command")" --ServerApp.ip=127.0.0.1 --ServerApp.port="$(cat "$state/port")" \
  --ServerApp.port_retries=0 --ServerApp.open_browser=False --ServerApp.root_dir='"$PWD"' '$root'
EOF
  date +%s >"$state/started"
  # Jupyter's output may show its token: the log is private before tee appends to it.
  : >"$state/log"
  # fenton's own files are made: tmux (and so every window the user opens in it later) and
  # Jupyter (and so every notebook it writes) keep the login umask.
  umask "$login_umask"
  # The window enters $state through sh: tmux would read `-c DIR` as a format, where a
  # `#(…)` runs. fenton checked the session name.
  t has-session -t "=$session"
  # shellcheck disable=SC2016 # expanded by the window's sh
  case $? in
  0) t new-window -d -P -F '#{pane_pid}' -t "=$session:" -n jupyter sh -c 'cd "$1" && exec sh ./run.sh' fenton "$state" ;;
  124) exit 0 ;;
  *) t new-session -d -P -F '#{pane_pid}' -s "$session" -n jupyter sh -c 'cd "$1" && exec sh ./run.sh' fenton "$state" ;;
  esac
  [ $? = 124 ] && exit 0
  pid=$(cat "$state/tmux.out")
  if [ -z "$pid" ]; then
    printf 'error tmux could not open a window in session %s\n' "$session"
    exit 0
  fi
  printf '%s' "$pid" >"$state/pid"
  deadline=$(($(date +%s) + timeout))
  while :; do
    if listening "$port"; then
      printf 'listening\n'
      report
      printf 'token %s\n' "$token"
      exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      printf 'died\n'
      # tee writes the last lines after the server's end: wait for it, briefly.
      i=0
      while kill -0 "$(cat "$state/tee.pid" 2>/dev/null)" 2>/dev/null && [ $i -lt 40 ]; do
        sleep 0.05
        i=$((i + 1))
      done
      tail_log
      rm -f "$state/pid"
      [ "$fresh" = 0 ] || rm -f "$state/token"
      exit 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      printf 'timeout\n'
      stop_server
      tail_log
      rm -f "$state/pid"
      [ "$fresh" = 0 ] || rm -f "$state/token"
      exit 0
    fi
    sleep 0.02
  done
  ;;
esac
