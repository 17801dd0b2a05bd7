# `fenton kill` on a Slurm profile: arguments JOB GRACE WAIT. A running job's processes get
# SIGTERM (`scancel --signal=TERM --full`), GRACE seconds to end, and then Slurm's own cancel
# (SIGTERM, SIGKILL after the cluster's KillWait); a job that has not started is cancelled at
# once. Prints `ended` when the job was over already, else `sigkill` when the grace ran out,
# then `killed` once the job has left the queue (WAIT seconds more at most, by the clock: a
# controller that does not answer takes seconds a query). scancel says nothing of a job it
# does not know, so the queue is asked before and after.
fj_sfind "$1"
fj_grace=$2 fj_wait=$3
case $fj_wait in '' | *[!0-9]*) fj_wait=30 ;; esac
fj_states=$(fj_states "$fj_sid")
if [ "$fj_states" = UNREACHABLE ]; then
  printf 'fenton: the cluster'\''s controller did not answer squeue about job %s: nothing was cancelled; try again (fenton doctor checks the cluster)\n' "$fj_sid" >&2
  exit 1
fi
# shellcheck disable=SC2086 # one word per task
if ! fj_active $fj_states; then echo ended; exit 0; fi
{ date +%s > "$fj_job/killed"; } 2>/dev/null || : > "$fj_job/killed"
case " $fj_states" in
  *" RUNNING "*)
    scancel --signal=TERM --full "$fj_sid" 2>/dev/null || :
    fj_limit=$(($(date +%s) + fj_grace + 1))
    while [ "$(date +%s)" -lt "$fj_limit" ]; do
      fj_states=$(fj_states "$fj_sid")
      # shellcheck disable=SC2086
      fj_active $fj_states || break
      fj_nap 0.5
    done
    ;;
esac
fj_states=$(fj_states "$fj_sid")
# shellcheck disable=SC2086
if fj_active $fj_states; then
  case " $fj_states" in *" RUNNING "*) echo sigkill ;; esac
  if ! fj_err=$(scancel "$fj_sid" 2>&1); then
    printf 'fenton: scancel %s failed: %s\n' "$fj_sid" "$(printf '%s' "$fj_err" | head -n 1)" >&2
    exit 1
  fi
fi
fj_limit=$(($(date +%s) + fj_wait))
while :; do
  fj_states=$(fj_states "$fj_sid")
  # shellcheck disable=SC2086
  fj_active $fj_states || break
  [ "$(date +%s)" -lt "$fj_limit" ] || break
  fj_nap 0.5
done
# Gone from the queue, or ended in it; never said of a job nobody could ask about.
case $fj_states in
  UNREACHABLE)
    printf 'fenton: the cluster'\''s controller stopped answering squeue after the cancel of job %s: whether it ended is not known; fenton jobs says once the controller answers\n' "$fj_sid" >&2
    exit 1
    ;;
esac
# shellcheck disable=SC2086
if fj_active $fj_states; then
  printf 'fenton: job %s is still %s %s s after scancel: look with squeue -j %s, or fenton kill it again\n' "$fj_sid" "$(fj_shown "${fj_states% }")" "$fj_wait" "$fj_sid" >&2
  exit 1
fi
echo killed
