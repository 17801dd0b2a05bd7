# `fenton kill`: arguments JOB GRACE. SIGTERM to the job's process group; its processes get
# GRACE seconds to end, and what is still alive after that gets SIGKILL. Prints `sigkill` when
# SIGKILL was needed, then `killed`; or `ended` when the job had already ended. What the
# job's files say is checked first: a damaged or stale pid must never send a signal to
# processes that are not the job's.
fj_find "$1"
fj_grace=$2
fj_id=${fj_job##*/}

fj_nap_s=0.1 fj_per_s=10
if ! sleep 0.01 2>/dev/null; then fj_nap_s=1 fj_per_s=1; fi

if [ -f "$fj_job/exit" ]; then echo ended; exit 0; fi
if [ ! -f "$fj_job/pid" ]; then
  printf 'fenton: job %s has no process yet: try again in a moment\n' "$fj_id" >&2
  exit 1
fi
fj_read "$fj_job/wrapper"
fj_w=$fj_v
fj_read "$fj_job/pid"
fj_pid=$fj_v
fj_pid_ok "$fj_w" ||
  fj_damaged "its wrapper file holds $(fj_shown "$fj_w"), not a process id: end the job by hand"
fj_pid_ok "$fj_pid" ||
  fj_damaged "its pid file holds $(fj_shown "$fj_pid"), not a process id: end the job by hand (its wrapper is process $fj_w)"
# The wrapper: alive, and this job's (its command line names this job's job.sh). The pids of
# a job whose wrapper is gone (lost) may name someone else's processes by now.
fj_ours=
if [ -d /proc/self ]; then
  if { tr '\0' '\n' < "/proc/$fj_w/cmdline"; } 2>/dev/null | grep -q "/$fj_id/job\.sh\$"; then
    fj_ours=1
  fi
elif kill -0 "$fj_w" 2>/dev/null; then
  fj_ours=1
fi
if [ -z "$fj_ours" ]; then
  if [ -f "$fj_job/exit" ]; then echo ended; exit 0; fi
  printf 'fenton: job %s is lost (its wrapper is gone): if process group %s is still its, end it by hand\n' \
    "$fj_id" "$fj_pid" >&2
  exit 1
fi
# The group's leader is the wrapper's child until the wrapper has recorded its end.
if [ -d /proc/self ] &&
  { ! fj_stat "$fj_pid" || [ "$fj_ppid" != "$fj_w" ] || [ "$fj_pgrp" != "$fj_pid" ]; }; then
  fj_t=$((2 * fj_per_s))
  while [ "$fj_t" -gt 0 ] && [ ! -f "$fj_job/exit" ]; do
    sleep "$fj_nap_s"
    fj_t=$((fj_t - 1))
  done
  if [ -f "$fj_job/exit" ]; then echo ended; exit 0; fi
  fj_damaged "its pid file names process $fj_pid, which is not the job's (its wrapper is process $fj_w): end the job by hand"
fi

{ date +%s > "$fj_job/killed"; } 2>/dev/null || : > "$fj_job/killed"
# The grace is counted twice, so that it is never cut short: in naps (each at least its
# length) and by the clock (whole seconds, from a second before the signal).
fj_limit=$(($(date +%s) + fj_grace + 1))
kill -TERM "-$fj_pid" 2>/dev/null
fj_t=$((fj_grace * fj_per_s))
while [ "$fj_t" -gt 0 ] && [ "$(date +%s)" -lt "$fj_limit" ] && fj_group "$fj_pid"; do
  sleep "$fj_nap_s"
  fj_t=$((fj_t - 1))
done
fj_status=143
if fj_group "$fj_pid"; then
  kill -KILL "-$fj_pid" 2>/dev/null
  fj_status=137
  echo sigkill
fi
# The wrapper records the exit status; if it is gone too, record one here.
fj_t=$((10 * fj_per_s))
while [ "$fj_t" -gt 0 ] && [ ! -f "$fj_job/exit" ] && fj_live "$fj_w"; do
  sleep "$fj_nap_s"
  fj_t=$((fj_t - 1))
done
if [ ! -f "$fj_job/exit" ] && ! fj_live "$fj_w"; then
  sh "$fj_job/job.sh" ended "$fj_status"
fi
echo killed
