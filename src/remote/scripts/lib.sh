# The start of every fenton job script: $1 is the profile's remote_dir; jobs live in
# $1/jobs/<id>/ (files: name cmd dir started pid wrapper ended exit log; env until the job
# starts; killed, notify, notify.result when those happened). The script's own arguments
# follow.
fj_root=$1
fj_jobs=$fj_root/jobs
shift

# fj_find JOB: fj_job becomes the directory of the job with that id, else of the latest job
# with that name; a job that does not exist ends the script with a message.
fj_find() {
  fj_job=
  case $1 in
    */* | .* | '') ;;
    *) if [ -d "$fj_jobs/$1" ]; then fj_job=$fj_jobs/$1; fi ;;
  esac
  if [ -z "$fj_job" ] && [ -d "$fj_jobs" ]; then
    for fj_d in "$fj_jobs"/*/; do
      fj_v=
      if [ -f "${fj_d}name" ]; then read -r fj_v < "${fj_d}name" || :; fi
      if [ "$fj_v" = "$1" ]; then fj_job=${fj_d%/}; fi
    done
  fi
  if [ -z "$fj_job" ]; then
    printf 'fenton: no job %s on the box (fenton jobs lists them)\n' "$1" >&2
    exit 1
  fi
}

# fj_read FILE: fj_v becomes its first line, or nothing (no subshell: list.sh reads many).
fj_read() {
  fj_v=
  if [ -f "$1" ]; then read -r fj_v < "$1" || :; fi
}

# fj_alive DIR: whether the job's process group or its wrapper is still there.
# (dash's kill takes no `--` before a negative pid: `kill -SIG -PGID`.)
fj_alive() {
  fj_read "$1/pid"
  if [ -n "$fj_v" ] && kill -0 "-$fj_v" 2>/dev/null; then return 0; fi
  fj_read "$1/wrapper"
  [ -n "$fj_v" ] && kill -0 "$fj_v" 2>/dev/null
}

# fj_nap SECONDS: a short pause (a whole second where sleep takes no fractions).
fj_nap() {
  sleep "$1" 2>/dev/null || sleep 1
}
