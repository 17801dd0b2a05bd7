# `fenton run`: arguments NAME DIR CMD NOTIFY SESSION SOCKET (NOTIFY: 0, or the notifications
# the job has, in words). Makes the job's directory (its
# id is the UTC start time and a counter, so ids sort by start), records what to run, where
# and with which environment; fenton then appends the lines that write job.sh (and notify.d)
# into "$fj_files", a call of fj_written that checks them, and a call of fj_launch, which
# starts the wrapper in a window of the tmux session (or under setsid where tmux is missing
# or does not answer) and prints the id once the job has a pid.
fj_umask=$(umask)
umask 077
fj_name=$1 fj_dir=$2 fj_cmd=$3 fj_notify=$4 fj_session=$5 fj_socket=$6
fj_job=
# (CDPATH only for these cds: the job keeps the environment it was given.)
{ { [ -d "$fj_jobs" ] || mkdir -p "$fj_jobs"; } && fj_jobs=$(CDPATH='' cd "$fj_jobs" && pwd); } 2>/dev/null ||
  fj_nospace "$fj_jobs"
# A relative directory is under the home. Made absolute, it is neither an option to cd
# (`-P`, `-`) nor looked up in CDPATH.
case $fj_dir in
  /*) fj_cd=$fj_dir ;;
  *) fj_cd=${HOME:-.}/$fj_dir ;;
esac
if ! CDPATH='' cd "$fj_cd" 2>/dev/null; then
  printf 'fenton: cannot enter %s on the box: give an existing directory with --dir\n' "$fj_dir" >&2
  exit 1
fi
# The directory as it is, even ending in a newline (which $(pwd) alone would strip).
fj_dir=$(pwd && echo .)
fj_dir=${fj_dir%?.}

# fj_abandon: removes the job's directory, and the secrets in it, unless its wrapper has
# taken it over (run.lock); taking the lock first keeps a late wrapper from starting.
fj_abandon() {
  if [ -n "$fj_job" ] && mkdir "$fj_job/run.lock" 2>/dev/null; then
    rm -rf "$fj_job"
    return 0
  fi
  return 1
}
# A start that fails or is cut short (a dropped link, fenton killed, the script cut off)
# leaves nothing behind.
trap fj_abandon EXIT
trap 'exit 1' HUP INT TERM PIPE

# The id's UTC time and the start's seconds, from one clock reading.
fj_now=$(date -u '+%Y%m%d-%H%M%S %s')
fj_stamp=${fj_now% *}
fj_mkjob "$fj_stamp"
# What the wrapper writes when the job ends is made here, full of blanks, for it to write
# over in place: a job that fills the disk still gets its end recorded.
{
  printf '%s\n' "$fj_name" > "$fj_job/name" &&
    printf '%s\n' "$fj_cmd" > "$fj_job/cmd" &&
    printf '%s\n' "$fj_dir" > "$fj_job/dir" &&
    printf '%s\n' "$fj_umask" > "$fj_job/umask" &&
    printf '%s\n' "${fj_now#* }" > "$fj_job/started" &&
    export -p > "$fj_job/env" &&
    : > "$fj_job/log" &&
    printf '%63s\n' '' > "$fj_job/ended.tmp" &&
    printf '%63s\n' '' > "$fj_job/exit.tmp"
} 2>/dev/null || fj_nospace "$fj_jobs"
if [ "$fj_notify" != 0 ]; then
  # notify.d/reserve keeps room for what the wrapper writes to send with wget. ./notify
  # says which notifications the job has; ./notify.last, written over in place, the last one.
  {
    printf '%s\n' "$fj_notify" > "$fj_job/notify" &&
      mkdir "$fj_job/notify.d" &&
      printf '%1023s\n' '' > "$fj_job/notify.result.tmp" &&
      printf '%255s\n' '' > "$fj_job/notify.last" &&
      dd if=/dev/zero of="$fj_job/notify.d/reserve" bs=1024 count=32
  } >/dev/null 2>&1 || fj_nospace "$fj_jobs"
fi
# shellcheck disable=SC2034 # written to by the lines fenton appends
fj_files=$fj_job

# fj_tmux ARGS...: runs tmux with ARGS for 5 s at most; status 0, 1 (it refused) or 2 (it
# did not answer: a stopped or hung server).
fj_tmux() {
  "$@" </dev/null >/dev/null 2>&1 &
  fj_tp=$! fj_t=$((5 * fj_per_s))
  while kill -0 "$fj_tp" 2>/dev/null; do
    fj_t=$((fj_t - 1))
    if [ "$fj_t" -lt 0 ]; then
      kill -KILL "$fj_tp" 2>/dev/null
      wait "$fj_tp" 2>/dev/null
      return 2
    fi
    sleep "$fj_tick"
  done
  wait "$fj_tp" && return 0
  return 1
}

# fj_window TMUX-COMMAND ARGS...: a tmux window that runs the wrapper in the job's directory,
# as fj_tmux runs tmux.
fj_window() {
  # shellcheck disable=SC2016 # expanded by the window's sh
  if [ -n "$fj_socket" ]; then
    fj_tmux tmux -L "$fj_socket" "$@" sh -c 'cd "$1" && exec sh "$1/job.sh" run' fj "$fj_job"
  else
    fj_tmux tmux "$@" sh -c 'cd "$1" && exec sh "$1/job.sh" run' fj "$fj_job"
  fi
}

fj_launch() {
  fj_tick=0.005 fj_per_s=200
  if ! sleep 0.001 2>/dev/null; then fj_tick=1 fj_per_s=1; fi
  fj_how=
  # fenton's own files are made: tmux (and so every window the user opens in it later)
  # and the job keep the login umask.
  umask "$fj_umask"
  if command -v tmux >/dev/null 2>&1; then
    # A new window where the session exists, else the session (with the job as its window),
    # else a window again (another start made the session meanwhile). The program and its
    # arguments as separate words: tmux 3 runs them without a shell (a login shell's start-up
    # files can take longer than the rest of `fenton run`), and does not read them as formats,
    # as it would `-c DIR` (a `#(…)` in it would run): the window enters the job's directory
    # through sh. fenton checked the session and window names.
    fj_window new-window -d -t "=$fj_session:" -n "$fj_name"
    fj_rc=$?
    if [ "$fj_rc" = 1 ]; then
      fj_window new-session -d -s "$fj_session" -n "$fj_name"
      fj_rc=$?
    fi
    if [ "$fj_rc" = 1 ]; then
      fj_window new-window -d -t "=$fj_session:" -n "$fj_name"
      fj_rc=$?
    fi
    case $fj_rc in
      0) fj_how=tmux ;;
      2) fj_hung=1 ;;
    esac
  fi
  if [ -z "$fj_how" ]; then
    if ! command -v setsid >/dev/null 2>&1; then
      echo 'fenton: neither tmux nor setsid is installed on the box: install tmux (or util-linux)' >&2
      exit 1
    fi
    # Its own session without a terminal: nothing that ends with this connection reaches it.
    # setsid -f forks it; a plain `&` would start it with INT and QUIT ignored, and the job
    # with them.
    if ! (cd "$fj_job" && exec setsid -f sh "$fj_job/job.sh" run) </dev/null >/dev/null 2>&1; then
      (cd "$fj_job" && exec setsid sh "$fj_job/job.sh" run) </dev/null >/dev/null 2>&1 &
    fi
    fj_how=setsid
    if [ -n "${fj_hung:-}" ]; then fj_how=setsid-tmux-hung; fi
  fi
  # Wait (10 s at most) for the wrapper to record the job's pid, so that `fenton kill` and
  # `fenton jobs` find it from the moment the id is printed. A wrapper that never came is
  # shut out and its directory removed; one that came (run.lock) gets 10 s more.
  fj_left=$((10 * fj_per_s))
  while [ ! -f "$fj_job/pid" ] && [ ! -f "$fj_job/exit" ]; do
    fj_left=$((fj_left - 1))
    if [ "$fj_left" -lt 0 ]; then
      if fj_abandon; then
        printf 'fenton: the job did not start within 10 s (%s never ran its wrapper): try again, or run fenton doctor\n' \
          "$fj_how" >&2
        exit 1
      fi
      if [ -n "${fj_late:-}" ]; then
        printf 'fenton: the job started but recorded no pid within 20 s: see %s\n' "$fj_job" >&2
        exit 1
      fi
      fj_late=1 fj_left=$((10 * fj_per_s))
    fi
    sleep "$fj_tick"
  done
  printf '%s\n%s\n' "${fj_job##*/}" "$fj_how"
}
