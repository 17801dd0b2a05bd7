# `fenton logs` on a Slurm profile: arguments JOB LINES FOLLOW OFFSET, as logs.sh takes them
# and with its output: `fenton-offset N ID`, then the log (the job's output file, which the
# node writes on the shared filesystem) from there. With FOLLOW=1 it goes on until the job
# has left the queue (asking squeue every 2 s, never sacct), then ends; fenton then says how
# it ended. A controller that does not answer is said once, and the log followed on. JOB
# may be `ID.N`, task N of an array job.
fj_sfind "$1"
fj_lines=$2 fj_follow=$3 fj_off=$4
fj_log=$fj_job/log
fj_q=$fj_sid
if [ -f "$fj_job/array" ]; then
  if [ -z "$fj_task" ]; then
    printf 'fenton: job %s is an array: name a task, e.g. fenton logs %s.%s\n' "${fj_job##*/}" "${fj_job##*/}" \
      "$(find "$fj_job" -name 'log.*' | sed -n 's/^.*\/log\.\([0-9]*\)$/\1/p' | sort -n | head -n 1 | grep . || echo 0)" >&2
    exit 1
  fi
  fj_log=$fj_job/log.$fj_task fj_q=${fj_sid}_$fj_task
fi
fj_size() {
  fj_s=$({ wc -c < "$fj_log"; } 2>/dev/null) || fj_s=0
  echo $((fj_s + 0))
}
if [ -z "$fj_off" ]; then
  if [ "$fj_lines" = all ] || [ ! -f "$fj_log" ]; then
    fj_off=0
  else
    fj_s=$(fj_size)
    fj_t=$(head -c "$fj_s" "$fj_log" | tail -n "$fj_lines" | wc -c)
    fj_off=$((fj_s - fj_t))
  fi
fi
echo "fenton-offset $fj_off ${fj_job##*/}${fj_task:+.$fj_task}"
fj_emit() {
  fj_s=$(fj_size)
  if [ "$fj_s" -gt "$fj_off" ]; then
    tail -c +$((fj_off + 1)) "$fj_log" | head -c $((fj_s - fj_off)) || exit 0
    fj_off=$fj_s
  fi
}
if [ "$fj_follow" != 1 ]; then
  # shellcheck disable=SC2046 # one word per task
  if [ ! -f "$fj_log" ] && ! fj_active $(fj_states "$fj_q"); then
    fj_damaged "its log $fj_log is missing (deleted?): nothing to show (fenton jobs shows how the job stands)"
  fi
  fj_emit
  exit 0
fi
# The queue is asked every 2 s or so, in the background where a private directory can be
# had: a controller that does not answer holds squeue 10-20 s, and the log's bytes go on
# meanwhile (said once on stderr). The answer is read once it is there.
fj_tmp=$(mktemp -d "${TMPDIR:-/tmp}/fenton-follow.XXXXXX" 2>/dev/null) || fj_tmp=
trap '[ -z "$fj_tmp" ] || rm -rf "$fj_tmp"' EXIT
trap 'exit 1' HUP INT TERM PIPE
fj_asked='' fj_said='' fj_i=10
while :; do
  fj_ans=
  if [ -n "$fj_asked" ]; then
    if [ -f "$fj_tmp/states" ]; then
      fj_ans=x$(cat "$fj_tmp/states")
      rm -f "$fj_tmp/states"
      fj_asked=
    elif [ "$fj_i" -ge 300 ]; then
      # A minute without an answer is a query that could not write it (a full disk):
      # asked here from now on.
      rm -rf "$fj_tmp"
      fj_tmp='' fj_asked='' fj_i=10
    fi
  elif [ "$fj_i" -ge 10 ]; then
    fj_i=0
    if [ -n "$fj_tmp" ]; then
      (fj_states "$fj_q" > "$fj_tmp/new" && mv "$fj_tmp/new" "$fj_tmp/states") < /dev/null > /dev/null 2>&1 &
      fj_asked=1
    else
      fj_ans=x$(fj_states "$fj_q")
    fi
  fi
  if [ -n "$fj_ans" ]; then
    fj_ans=${fj_ans#x}
    case " $fj_ans " in
      *" UNREACHABLE "*)
        if [ -z "$fj_said" ]; then
          echo 'fenton: the Slurm controller does not answer; still following the log' >&2
          fj_said=1
        fi
        ;;
    esac
    # The node may still be writing the last lines: one more look after the job is gone.
    # shellcheck disable=SC2086 # one word per task
    if ! fj_active $fj_ans; then
      fj_nap 0.5
      fj_emit
      exit 0
    fi
  fi
  fj_emit
  fj_i=$((fj_i + 1))
  fj_nap 0.2
done
