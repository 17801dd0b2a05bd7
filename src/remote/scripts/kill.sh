# `fenton kill`: arguments JOB GRACE. SIGTERM to the job's process group, SIGKILL to what is
# left after GRACE seconds; prints `killed`, or `ended` when the job had already ended.
fj_find "$1"
fj_grace=$2
if [ -f "$fj_job/exit" ]; then echo ended; exit 0; fi
fj_read "$fj_job/pid"
fj_pid=$fj_v
if [ -z "$fj_pid" ]; then
  printf 'fenton: job %s has no process yet: try again in a moment\n' "${fj_job##*/}" >&2
  exit 1
fi
# The pid of a job whose wrapper is gone (lost) may name someone else's processes by now.
fj_read "$fj_job/wrapper"
if [ -d /proc/self ] && ! grep -q job.sh "/proc/$fj_v/cmdline" 2>/dev/null; then
  printf 'fenton: job %s is lost (its wrapper is gone): if process group %s is still its, end it by hand\n' \
    "${fj_job##*/}" "$fj_pid" >&2
  exit 1
fi
date +%s > "$fj_job/killed"
kill -TERM "-$fj_pid" 2>/dev/null
fj_end=$(($(date +%s) + fj_grace))
while kill -0 "-$fj_pid" 2>/dev/null && [ ! -f "$fj_job/exit" ] &&
  [ "$(date +%s)" -lt "$fj_end" ]; do
  fj_nap 0.05
done
# Once the wrapper has recorded the end, what is left of the group (children that ignore
# SIGTERM, or zombies not yet reaped, which kill -0 still finds) gets SIGKILL at once.
if [ -f "$fj_job/exit" ]; then
  kill -KILL "-$fj_pid" 2>/dev/null
elif kill -KILL "-$fj_pid" 2>/dev/null; then
  echo sigkill
fi
# The wrapper records the exit status; if it is gone too, record one here.
fj_end=$(($(date +%s) + 5))
while [ ! -f "$fj_job/exit" ] && [ "$(date +%s)" -lt "$fj_end" ]; do fj_nap 0.05; done
if [ ! -f "$fj_job/exit" ] && ! fj_alive "$fj_job"; then
  date +%s > "$fj_job/ended"
  echo 137 > "$fj_job/exit.tmp" && mv -f "$fj_job/exit.tmp" "$fj_job/exit"
fi
echo killed
