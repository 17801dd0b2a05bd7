# `fenton jobs`: the box's time, then for each job lines of `KEY VALUE` from `job ID` to
# `end`: what its files say, whether it is alive, its notification results and the last
# non-empty line of its log (after the last carriage return, as a terminal shows it).
# A job that is over (ended, its notifications sent) cannot change: its lines are kept in
# its `listed` file the first time, so a long history costs one cat, not two programs a job.
# Jobs come in no set order, and one may come twice (the later lines are the newer).
echo "now $(date +%s)"
[ -d "$fj_jobs" ] || exit 0
# `listed` holds the command and a log line: as private as the job's own files.
umask 077

fj_list_one() {
  echo "job ${1##*/}"
  for fj_f in name cmd started ended exit killed notify pid; do
    if [ -f "$1/$fj_f" ]; then
      fj_v=
      read -r fj_v < "$1/$fj_f" || :
      printf '%s %s\n' "$fj_f" "$fj_v"
    fi
  done
  if [ ! -f "$1/exit" ] && fj_alive "$1"; then echo "alive 1"; fi
  if [ -f "$1/notify.result" ]; then
    while IFS= read -r fj_v; do printf 'result %s\n' "$fj_v"; done < "$1/notify.result"
  fi
  tail -c 4096 "$1/log" 2>/dev/null | awk '
    { n = split($0, parts, "\r"); for (i = 1; i <= n; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i] }
    END { print "last " last }'
  echo end
}

for fj_d in "$fj_jobs"/*/; do
  fj_d=${fj_d%/}
  [ -f "$fj_d/started" ] || continue
  [ -f "$fj_d/listed" ] && continue
  if [ -f "$fj_d/exit" ] && [ ! -d "$fj_d/notify.d" ] &&
    fj_list_one "$fj_d" > "$fj_d/listed.tmp" 2>/dev/null &&
    mv -f "$fj_d/listed.tmp" "$fj_d/listed" 2>/dev/null; then
    continue
  fi
  rm -f "$fj_d/listed.tmp" 2>/dev/null
  fj_list_one "$fj_d"
done
cat "$fj_jobs"/*/listed 2>/dev/null || :
