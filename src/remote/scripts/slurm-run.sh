# `fenton run` on a Slurm profile: arguments NAME DIR CMD NOTIFY EVERY ARRAY, then sbatch's
# own options (NOTIFY: 0, or the notifications the job has, in words; EVERY: the watcher's
# interval). Makes the job's directory (ids as run.sh makes them) and writes the batch script
# (`job.sh`: the command, quoted as `fenton exec` quotes it, and nothing else); fenton then
# appends the lines that write the channels' files into "$fj_files"/notify.d and the watcher
# into "$fj_jobs"/.watch.sh, and a call of fj_submit, which submits the job with its output
# going to the job's `log` (or `log.N` per task of an array) and, for a job that notifies,
# starts the watcher (slurm-watch.sh) unless it runs. Prints
# `id ID` and `slurm JOBID`; or, when sbatch refuses, `refused LINE` for each line sbatch
# said (then a bare `refused`) and `sinfo PARTITION GRES` for what the cluster offers, and
# removes the directory.
umask 077
fj_name=$1 fj_dir=$2 fj_cmd=$3 fj_notify=$4 fj_every=$5 fj_array=$6
shift 6
if ! command -v sbatch >/dev/null 2>&1; then
  echo 'fenton: sbatch is not on the login node'\''s PATH: is this a Slurm cluster? (scheduler = "box" runs jobs on the box itself)' >&2
  exit 1
fi
# (Few programs started: each costs as much as the rest of the script. CDPATH only for the
# cds; $PWD keeps a directory as it is, even ending in a newline.)
{ { [ -d "$fj_jobs" ] || mkdir -p "$fj_jobs"; } && CDPATH='' cd "$fj_jobs" && fj_jobs=$PWD; } 2>/dev/null ||
  fj_nospace "$fj_jobs"
case $fj_dir in
  /*) fj_cd=$fj_dir ;;
  *) fj_cd=${HOME:-.}/$fj_dir ;;
esac
if ! CDPATH='' cd "$fj_cd" 2>/dev/null; then
  printf 'fenton: cannot enter %s on the login node: give an existing directory with --dir\n' "$fj_dir" >&2
  exit 1
fi
fj_dir=$PWD

fj_job=
fj_keep=
trap '[ -n "$fj_job" ] && [ -z "$fj_keep" ] && rm -rf "$fj_job"' EXIT
trap 'exit 1' HUP INT TERM PIPE
fj_t=$(date -u '+%Y%m%d-%H%M%S %s')
fj_stamp=${fj_t% *} fj_now=${fj_t#* }
fj_mkjob "$fj_stamp"
fj_pattern "$fj_job"
fj_log=$fj_v/log
if [ -n "$fj_array" ]; then fj_log=$fj_v/log.%a; fi
{
  printf '%s\n' "$fj_name" > "$fj_job/name" &&
    printf '%s\n' "$fj_cmd" > "$fj_job/cmd" &&
    printf '%s\n' "$fj_dir" > "$fj_job/dir" &&
    printf '%s\n' "$fj_now" > "$fj_job/started" &&
    printf '#!/bin/sh\n# fenton job %s (%s): the command as fenton run was given it.\nexec %s\n' \
      "${fj_job##*/}" "$fj_name" "$fj_cmd" > "$fj_job/job.sh" &&
    { [ -n "$fj_array" ] || : > "$fj_job/log"; } &&
    { [ -z "$fj_array" ] || printf '%s\n' "$fj_array" > "$fj_job/array"; } &&
    { [ "$fj_notify" = 0 ] || {
      printf '%s\n' "$fj_notify" > "$fj_job/notify" &&
        mkdir "$fj_job/notify.d" &&
        printf '%255s\n' '' > "$fj_job/notify.last"
    }; }
} 2>/dev/null || fj_nospace "$fj_jobs"
# shellcheck disable=SC2034 # written to by the lines fenton appends
fj_files=$fj_job

# fj_watch: the watcher runs (its pid file names a live process running .watch.sh), or is
# started, in a session of its own that outlives this connection.
fj_watch() {
  fj_read "$fj_jobs/.watch.pid"
  if fj_pid_ok "$fj_v" && { tr '\0' '\n' < "/proc/$fj_v/cmdline"; } 2>/dev/null | grep -q '/\.watch\.sh$'; then
    return 0
  fi
  if command -v setsid >/dev/null 2>&1; then
    (setsid -f sh "$fj_jobs/.watch.sh" "${fj_jobs%/jobs}" "$fj_every" </dev/null >/dev/null 2>&1) ||
      (setsid sh "$fj_jobs/.watch.sh" "${fj_jobs%/jobs}" "$fj_every" </dev/null >/dev/null 2>&1 &)
  else
    (nohup sh "$fj_jobs/.watch.sh" "${fj_jobs%/jobs}" "$fj_every" </dev/null >/dev/null 2>&1 &)
  fi
}

fj_submit() {
  # (The job's files stay private; its output keeps the user's umask on the node.)
  # (The job gets the user's time format back, or Slurm's default.)
  if fj_out=$(fj_user_time; sbatch --parsable --job-name="$fj_name" --chdir="$fj_dir" --output="$fj_log" \
    --open-mode=append ${fj_array:+"--array=$fj_array"} "$@" "$fj_job/job.sh" 2>"$fj_job/sbatch.err" </dev/null); then
    fj_sid=${fj_out%%;*}
    case $fj_sid in
      '' | *[!0-9]*)
        printf 'fenton: sbatch answered %s, not a job id: see %s\n' "$(fj_shown "$fj_out")" "$fj_job" >&2
        fj_keep=1
        exit 1
        ;;
    esac
    printf '%s\n' "$fj_sid" > "$fj_job/slurm"
    fj_keep=1
    printf 'id %s\nslurm %s\n' "${fj_job##*/}" "$fj_sid"
    if [ "$fj_notify" != 0 ]; then fj_watch; fi
    exit 0
  fi
  # What sbatch said, and what the cluster offers, for fenton to explain the refusal.
  while IFS= read -r fj_v; do
    printf 'refused %s\n' "$fj_v"
  done < "$fj_job/sbatch.err"
  echo 'refused'
  sinfo -h -o '%P %G' 2>/dev/null | while IFS= read -r fj_v; do printf 'sinfo %s\n' "$fj_v"; done
}
