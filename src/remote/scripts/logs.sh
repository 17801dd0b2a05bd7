# `fenton logs`: arguments JOB LINES FOLLOW OFFSET. Prints `fenton-offset N ID` (the byte of
# the log where the output starts, and the job's id, so that a reconnect follows the same job
# even if JOB is a name given again since), then the log from there: the last LINES lines (or all), or,
# when OFFSET is given (fenton reconnecting), everything from that byte on. With FOLLOW=1 it
# keeps printing what the job appends, by byte offset so that nothing is lost or repeated,
# and ends with the job's exit status once the job has ended.
fj_find "$1"
fj_lines=$2 fj_follow=$3 fj_off=$4
fj_log=$fj_job/log
fj_nolog() {
  fj_damaged "its log $fj_log is missing (deleted?): nothing to show (fenton jobs shows how the job stands)"
}
[ -f "$fj_log" ] || fj_nolog
fj_size() {
  fj_s=$({ wc -c < "$fj_log"; } 2>/dev/null) || fj_nolog
  echo $((fj_s + 0))
}
if [ -z "$fj_off" ]; then
  if [ "$fj_lines" = all ]; then
    fj_off=0
  else
    fj_s=$(fj_size) || exit 1
    fj_t=$(head -c "$fj_s" "$fj_log" | tail -n "$fj_lines" | wc -c)
    fj_off=$((fj_s - fj_t))
  fi
fi
echo "fenton-offset $fj_off ${fj_job##*/}"
fj_emit() {
  fj_s=$(fj_size) || exit 1
  if [ "$fj_s" -gt "$fj_off" ]; then
    # Nobody reading any more (Ctrl-C, a dropped link): stop rather than poll on.
    tail -c +$((fj_off + 1)) "$fj_log" | head -c $((fj_s - fj_off)) || exit 0
    fj_off=$fj_s
  fi
}
if [ "$fj_follow" != 1 ]; then
  fj_emit
  exit 0
fi
fj_i=0
while :; do
  fj_done=
  if [ -f "$fj_job/exit" ]; then fj_done=1; fi
  fj_emit
  if [ -n "$fj_done" ]; then
    fj_read "$fj_job/exit"
    case $fj_v in
      [0-9] | [0-9][0-9] | [0-9][0-9][0-9]) [ "$fj_v" -le 255 ] && exit "$fj_v" ;;
    esac
    fj_damaged "its exit file holds $(fj_shown "$fj_v"), not an exit status: the job has ended, how is not known"
  fi
  fj_i=$((fj_i + 1))
  if [ $((fj_i % 25)) = 0 ] && ! fj_alive "$fj_job" && [ ! -f "$fj_job/exit" ]; then
    printf 'fenton: job %s ended without recording its exit status (lost)\n' "${fj_job##*/}" >&2
    exit 1
  fi
  fj_nap 0.2
done
