# `fenton run`: arguments NAME DIR CMD NOTIFY SESSION SOCKET. Makes the job's directory (its
# id is the UTC start time and a counter, so ids sort by start), records what to run, where
# and with which environment; fenton then appends the lines that write job.sh (and notify.d)
# into "$fj_files" and a call of fj_launch, which starts the wrapper in a window of the tmux
# session (or under setsid where tmux is missing) and prints the id once the job has a pid.
fj_umask=$(umask)
umask 077
fj_name=$1 fj_dir=$2 fj_cmd=$3 fj_notify=$4 fj_session=$5 fj_socket=$6
# A relative directory is under the home. Made absolute, it is neither an option to cd
# (`-P`, `-`) nor looked up in CDPATH.
case $fj_dir in
  /*) fj_cd=$fj_dir ;;
  *) fj_cd=${HOME:-.}/$fj_dir ;;
esac
# (CDPATH only for this cd: the job keeps the environment it was given.)
mkdir -p "$fj_jobs" && fj_jobs=$(CDPATH='' cd "$fj_jobs" && pwd) || exit 1
if ! cd "$fj_cd" 2>/dev/null; then
  printf 'fenton: cannot enter %s on the box: give an existing directory with --dir\n' "$fj_dir" >&2
  exit 1
fi
# The directory as it is, even ending in a newline (which $(pwd) alone would strip).
fj_dir=$(pwd && echo .)
fj_dir=${fj_dir%?.}
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

# fj_window TMUX-COMMAND ARGS...: a tmux window that runs the wrapper in the job's directory.
fj_window() {
  # shellcheck disable=SC2016 # expanded by the window's sh
  if [ -n "$fj_socket" ]; then
    tmux -L "$fj_socket" "$@" sh -c 'cd "$1" && exec sh ./job.sh run' fj "$fj_job" 2>/dev/null
  else
    tmux "$@" sh -c 'cd "$1" && exec sh ./job.sh run' fj "$fj_job" 2>/dev/null
  fi
}

fj_launch() {
  fj_how=
  # fenton's own files are made: tmux (and so every window the user opens in it later)
  # and the job keep the login umask.
  umask "$fj_umask"
  if command -v tmux >/dev/null 2>&1; then
    # A new window where the session exists, else the session (with the job as its window).
    # The program and its arguments as separate words: tmux 3 runs them without a shell
    # (a login shell's start-up files can take longer than the rest of `fenton run`), and
    # does not read them as formats, as it would `-c DIR` (a `#(…)` in it would run): the
    # window enters the job's directory through sh. fenton checked the session and window
    # names.
    if fj_window new-window -d -t "=$fj_session:" -n "$fj_name" ||
      fj_window new-session -d -s "$fj_session" -n "$fj_name" ||
      fj_window new-window -d -t "=$fj_session:" -n "$fj_name"; then
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
