# `fenton jobs`: the box's time, then for each job (oldest first) lines of `KEY VALUE` from
# `job ID` to `end`: what its files say, whether it is alive, its notification results and
# the last non-empty line of its log (after the last carriage return, as a terminal shows it).
echo "now $(date +%s)"
[ -d "$fj_jobs" ] || exit 0
for fj_d in "$fj_jobs"/*/; do
  fj_d=${fj_d%/}
  [ -f "$fj_d/started" ] || continue
  echo "job ${fj_d##*/}"
  for fj_f in name cmd started ended exit killed notify pid; do
    if [ -f "$fj_d/$fj_f" ]; then
      fj_v=
      read -r fj_v < "$fj_d/$fj_f" || :
      printf '%s %s\n' "$fj_f" "$fj_v"
    fi
  done
  if [ ! -f "$fj_d/exit" ] && fj_alive "$fj_d"; then echo "alive 1"; fi
  if [ -f "$fj_d/notify.result" ]; then
    while IFS= read -r fj_v; do printf 'result %s\n' "$fj_v"; done < "$fj_d/notify.result"
  fi
  tail -c 4096 "$fj_d/log" 2>/dev/null | awk '
    { n = split($0, parts, "\r"); for (i = 1; i <= n; i++) if (parts[i] ~ /[^[:space:]]/) last = parts[i] }
    END { print "last " last }'
  echo end
done
