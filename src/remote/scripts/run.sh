# `fenton run`: arguments NAME DIR CMD NOTIFY SESSION SOCKET. Makes the job's directory (its
# id is the UTC start time and a counter, so ids sort by start), records what to run, where
# and with which environment; fenton then appends the lines that write job.sh (and notify.d)
# into "$fj_files" and a call of fj_launch, which starts the wrapper in a window of the tmux
# session (or under setsid where tmux is missing) and prints the id once the job has a pid.
fj_umask=$(umask)
umask 077
fj_name=$1 fj_dir=$2 fj_cmd=$3 fj_notify=$4 fj_session=$5 fj_socket=$6
mkdir -p "$fj_jobs" && fj_jobs=$(cd "$fj_jobs" && pwd) || exit 1
if ! cd "$fj_dir" 2>/dev/null; then
  printf 'fenton: cannot enter %s on the box: give an existing directory with --dir\n' "$fj_dir" >&2
  exit 1
fi
fj_dir=$(pwd)
fj_stamp=$(date -u +%Y%m%d-%H%M%S)
fj_i=1
while :; do
  fj_job=$fj_jobs/$fj_stamp-$(printf %02d "$fj_i")
  if mkdir "$fj_job" 2>/dev/null; then break; fi
  if [ ! -d "$fj_job" ] || [ "$fj_i" -ge 999 ]; then
    printf 'fenton: cannot create a job directory in %s\n' "$fj_jobs" >&2
    exit 1
  fi
  fj_i=$((fj_i + 1))
done
printf '%s\n' "$fj_name" > "$fj_job/name"
printf '%s\n' "$fj_cmd" > "$fj_job/cmd"
printf '%s\n' "$fj_dir" > "$fj_job/dir"
printf '%s\n' "$fj_umask" > "$fj_job/umask"
date +%s > "$fj_job/started"
export -p > "$fj_job/env"
: > "$fj_job/log"
if [ "$fj_notify" = 1 ]; then
  echo 1 > "$fj_job/notify"
  mkdir "$fj_job/notify.d"
fi
# shellcheck disable=SC2034 # written to by the lines fenton appends
fj_files=$fj_job

# fj_tmux CMD...: a tmux call of fj_launch's; one that timed out ends the script, naming
# tmux, rather than starting the job elsewhere. A tmux client hands its stdin and stdout to
# the server: never this session's, which a stopped server would then hold open for ever.
fj_tmux() {
  "$@" </dev/null >/dev/null 2>&1
  fj_rc=$?
  if [ "$fj_rc" = 124 ]; then
    printf 'fenton: tmux on the box did not answer within 10 s (its server is stopped or wedged): look with "fenton ssh", or end it with tmux kill-server\n' >&2
    rm -rf "$fj_job"
    exit 1
  fi
  return "$fj_rc"
}

fj_launch() {
  fj_how=
  if command -v tmux >/dev/null 2>&1; then
    if [ -n "$fj_socket" ]; then set -- tmux -L "$fj_socket"; else set -- tmux; fi
    # A stopped or wedged tmux server never answers: 10 s, where the box has timeout(1).
    if command -v timeout >/dev/null 2>&1; then set -- timeout 10 "$@"; fi
    # A new window where the session exists, else the session (with the job as its window).
    # The program and its arguments as separate words: tmux 3 runs them without a shell
    # (a login shell's start-up files can take longer than the rest of `fenton run`).
    if fj_tmux "$@" new-window -d -t "=$fj_session:" -n "$fj_name" -c "$fj_job" sh ./job.sh run ||
      fj_tmux "$@" new-session -d -s "$fj_session" -n "$fj_name" -c "$fj_job" sh ./job.sh run ||
      fj_tmux "$@" new-window -d -t "=$fj_session:" -n "$fj_name" -c "$fj_job" sh ./job.sh run; then
      fj_how=tmux
    fi
  fi
  if [ -z "$fj_how" ]; then
    if ! command -v setsid >/dev/null 2>&1; then
      echo 'fenton: neither tmux nor setsid is installed on the box: install tmux (or util-linux)' >&2
      rm -rf "$fj_job"
      exit 1
    fi
    # Its own session without a terminal: nothing that ends with this connection reaches it.
    # setsid -f forks it; a plain `&` would start it with INT and QUIT ignored, and the job
    # with them.
    if ! (cd "$fj_job" && exec setsid -f sh ./job.sh run) </dev/null >/dev/null 2>&1; then
      (cd "$fj_job" && exec setsid sh ./job.sh run) </dev/null >/dev/null 2>&1 &
    fi
    fj_how=setsid
  fi
  # Wait (10 s at most) for the wrapper to record the job's pid, so that `fenton kill` and
  # `fenton jobs` find it from the moment the id is printed.
  fj_tick=0.005 fj_left=2000
  if ! sleep 0.001 2>/dev/null; then fj_tick=1 fj_left=10; fi
  while [ ! -f "$fj_job/pid" ] && [ ! -f "$fj_job/exit" ]; do
    fj_left=$((fj_left - 1))
    if [ "$fj_left" -lt 0 ]; then
      printf 'fenton: the job did not start within 10 s: see %s\n' "$fj_job" >&2
      exit 1
    fi
    sleep "$fj_tick"
  done
  printf '%s\n%s\n' "${fj_job##*/}" "$fj_how"
}
