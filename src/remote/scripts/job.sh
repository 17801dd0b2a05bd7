# fenton's job wrapper. `fenton run` writes it into the job's directory and starts it there
# (`sh DIR/job.sh run`), in a window of the profile's tmux session (or under setsid where tmux
# is missing or does not answer):
#
#   sh DIR/job.sh run       runs the job (the words in ./cmd, in the directory in ./dir, with
#                           the environment in ./env), records pid, end time and exit status,
#                           then sends the notifications configured in ./notify.d and deletes them
#   sh DIR/job.sh ended N   records exit status N for a job whose wrapper is gone, and deletes
#                           ./notify.d (`fenton kill` of a job whose wrapper was killed)
#   sh ./job.sh test        sends a test message on every channel in ./notify.d, one result a line
#
# The job's own program leads a session (and so a process group) of its own: `fenton kill`
# signals that group and never this wrapper, which stays to record how the job ended.
#
# A job may end because it filled the disk, which is when its end matters most: `fenton run`
# made ended.tmp, exit.tmp and notify.result.tmp ahead, full of blanks, and they are written
# over in place (which needs no free space); the messages are made in memory and handed to
# curl on stdin. Every name here starts with fj_ because the job's environment is sourced
# into this shell.
umask 077
case $0 in
  /*) fj_job=${0%/*} ;;
  */*) fj_job=$(cd "${0%/*}" && pwd) || exit 1 ;;
  *) fj_job=$(pwd) ;;
esac
fj_n=$fj_job/notify.d

# fj_set NAME VALUE: the job's file NAME holds VALUE, whole or not at all (NAME.tmp, renamed).
# A NAME.tmp made ahead is written over in place and cut to size.
fj_set() {
  if [ -f "$fj_job/$1.tmp" ]; then
    printf '%s\n' "$2" 1<>"$fj_job/$1.tmp" &&
      { truncate -s $((${#2} + 1)) "$fj_job/$1.tmp" 2>/dev/null || :; }
  else
    printf '%s\n' "$2" > "$fj_job/$1.tmp"
  fi && mv -f "$fj_job/$1.tmp" "$fj_job/$1"
}

# fj_end STATUS: the job has ended (`exit` last: its presence says so).
fj_end() {
  fj_ended=$(date +%s)
  fj_set ended "$fj_ended"
  fj_set exit "$1"
}

# How long SECONDS is, for people: 45s, 12m03s, 3h04m, 2d03h.
fj_human() {
  fj_s=$1
  if [ "$fj_s" -lt 60 ]; then printf '%ss' "$fj_s"
  elif [ "$fj_s" -lt 3600 ]; then printf '%dm%02ds' $((fj_s / 60)) $((fj_s % 60))
  elif [ "$fj_s" -lt 86400 ]; then printf '%dh%02dm' $((fj_s / 3600)) $((fj_s % 3600 / 60))
  else printf '%dd%02dh' $((fj_s / 86400)) $((fj_s % 86400 / 3600))
  fi
}

# stdin as one JSON string literal: control characters dropped, lines joined with \n.
fj_json() {
  fj_tab=$(printf '\t')
  LC_ALL=C tr -d '\000-\010\013-\037\177' |
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$fj_tab/\\\\t/g" |
    awk 'BEGIN { printf "\"" } NR > 1 { printf "%s", "\\n" } { printf "%s", $0 } END { printf "\"" }'
}

# VALUE as a JSON string literal.
fj_jstr() {
  printf '%s' "$1" | fj_json
}

# Valid UTF-8 only (a tail cut in the middle of a character would make services refuse it).
fj_utf8() {
  if command -v iconv >/dev/null 2>&1; then iconv -f UTF-8 -t UTF-8 -c 2>/dev/null; else cat; fi
}

fj_curl_why() {
  case $1 in
    6) echo ": cannot resolve the host" ;;
    7) echo ": cannot connect" ;;
    28) echo ": timed out" ;;
    35 | 51 | 58 | 60) echo ": TLS failed" ;;
  esac
}

# fj_send CHANNEL BODY [HEADER...]: POSTs BODY with the channel's URL and secret headers (read
# from its files, never put on a command line) and the given header lines, which hold no
# secret. fj_res becomes "CHANNEL ok ..." or "CHANNEL failed ...", fj_reply what the service
# answered (in memory: a full disk must not stop it), and fj_res is printed.
fj_send() {
  fj_ch=$1 fj_body=$2 fj_reply='' fj_res=''
  shift 2
  if command -v curl >/dev/null 2>&1; then
    for fj_h do shift; set -- "$@" -H "$fj_h"; done
    fj_reply=$(printf '%s' "$fj_body" | curl -sS -w '\n%{http_code}' --max-time "${fj_max:-30}" \
      -K "$fj_n/$fj_ch.curl" -X POST --data-binary @- "$@" 2>/dev/null)
    fj_rc=$?
    fj_code=${fj_reply##*[!0-9]}
    if [ "$fj_rc" -ne 0 ]; then
      fj_res="$fj_ch failed: curl exit $fj_rc$(fj_curl_why "$fj_rc")"
    else
      case $fj_code in
        2??) fj_res="$fj_ch ok: HTTP $fj_code" ;;
        *) fj_res="$fj_ch failed: HTTP $fj_code" ;;
      esac
    fi
  elif command -v wget >/dev/null 2>&1; then
    for fj_h do shift; set -- "$@" --header="$fj_h"; done
    # wget posts only from a file: this one needs the space that notify.d/reserve kept.
    rm -f "$fj_n/reserve"
    if ! { printf '%s' "$fj_body" > "$fj_n/body"; } 2>/dev/null; then
      fj_res="$fj_ch failed: no space left on the box at $fj_n for the message (wget posts from a file; curl would not need one)"
      echo "$fj_res"
      return
    fi
    fj_reply=$(wget -q -O - -T "${fj_max:-30}" -t 1 --config="$fj_n/$fj_ch.wgetrc" \
      --post-file="$fj_n/body" -i "$fj_n/$fj_ch.url" "$@" 2>/dev/null)
    fj_rc=$?
    case $fj_rc in
      0) fj_res="$fj_ch ok: sent with wget" ;;
      8) fj_res="$fj_ch failed: the server answered with an error (wget exit 8)" ;;
      4) fj_res="$fj_ch failed: network failure (wget exit 4)" ;;
      *) fj_res="$fj_ch failed: wget exit $fj_rc" ;;
    esac
  else
    fj_res="$fj_ch failed: neither curl nor wget is installed on the box"
  fi
  echo "$fj_res"
}

# fj_add: fj_res joins fj_results, a line each.
fj_add() {
  if [ -n "$fj_results" ]; then fj_results="$fj_results
$fj_res"; else fj_results=$fj_res; fi
}

# fj_notify TITLE TEXT STATE EXIT DURATION_S LOG_TAIL DISK_FULL: one message on every
# configured channel; fj_results becomes their results, a line each. fj_event says what the
# message is about (end, test, progress, stall, match, lost; default end): on Telegram a
# progress message edits the one before it (fj_tg_id), and a webhook's body says the event.
fj_notify() {
  fj_title=$1 fj_text=$2 fj_results=
  fj_jtext=$(fj_jstr "$fj_text")
  if [ -f "$fj_n/telegram.curl" ]; then
    fj_chat=$(cat "$fj_n/telegram.chat")
    fj_res=
    if [ "${fj_event:-end}" = progress ] && [ -n "${fj_tg_id:-}" ] && [ -f "$fj_n/telegram-edit.curl" ]; then
      fj_send telegram-edit "$(printf '{"chat_id":%s,"message_id":%s,"text":%s}' "$fj_chat" "$fj_tg_id" "$fj_jtext")" \
        'Content-Type: application/json' >/dev/null
      # A message that can no longer be edited (deleted, too old) gives way to a new one.
      case $fj_res in *' ok:'*) fj_res="telegram ok: edited" ;; *) fj_res= ;; esac
    fi
    if [ -z "$fj_res" ]; then
      fj_send telegram "$(printf '{"chat_id":%s,"text":%s}' "$fj_chat" "$fj_jtext")" \
        'Content-Type: application/json' >/dev/null
      if [ "${fj_event:-end}" = progress ]; then
        fj_tg_id=$(printf '%s' "$fj_reply" | LC_ALL=C grep -o '"message_id" *: *[0-9]*' | head -n 1 |
          LC_ALL=C tr -cd 0-9)
      fi
    fi
    fj_add
  fi
  if [ -f "$fj_n/ntfy.curl" ]; then
    case ${fj_event:-end}:$3 in
      end:succeeded) fj_tags=white_check_mark fj_prio=default ;;
      test:*) fj_tags=bell fj_prio=default ;;
      progress:*) fj_tags=hourglass_flowing_sand fj_prio=low ;;
      match:*) fj_tags=mag fj_prio=default ;;
      stall:running) fj_tags=arrow_forward fj_prio=default ;;
      stall:*) fj_tags=warning fj_prio=high ;;
      *) fj_tags=x fj_prio=high ;;
    esac
    fj_send ntfy "$fj_text" 'Content-Type: text/plain; charset=utf-8' "Title: $fj_title" \
      "Priority: $fj_prio" "Tags: fenton,$fj_tags" >/dev/null
    fj_add
  fi
  if [ -f "$fj_n/webhook.curl" ]; then
    fj_send webhook "$(printf '{"source":"fenton","event":"%s","host":%s,"id":%s,"name":%s,"state":"%s","exit":%s,"duration_s":%s,"duration":"%s","disk_full":%s,"title":%s,"text":%s,"log_tail":%s%s}' \
      "${fj_event:-end}" "$(fj_jstr "$fj_host")" "$(fj_jstr "$fj_id")" "$(fj_jstr "$fj_name")" "$3" "${4:-null}" \
      "${5:-null}" "$(fj_human "${5:-0}")" "${7:-false}" "$(fj_jstr "$fj_title")" "$fj_jtext" \
      "$(fj_jstr "$6")" "${fj_extra:-}")" 'Content-Type: application/json' >/dev/null
    fj_add
  fi
}

# fj_last EVENT: notify.last says what was sent last, when, and how it went. It is written
# over in place, padded to its size, so that a full disk cannot stop it.
fj_last() {
  fj_l=$(printf '%s %s %s' "$1" "$(date +%s)" "$fj_results" | tr '\n' ';' | cut -c1-255)
  [ -f "$fj_job/notify.last" ] && printf '%-255s\n' "$fj_l" 1<>"$fj_job/notify.last" 2>/dev/null
}

# fj_tail N [LOG]: the last non-empty lines of the job's log (or of LOG, an array task's),
# up to N (and 3000 bytes), valid UTF-8.
fj_tail() {
  tail -c 65536 "${2:-$fj_job/log}" 2>/dev/null | tr '\r' '\n' | grep -v '^[[:space:]]*$' | tail -n "$1" |
    tail -c 3000 | fj_utf8
}

# For a failure: the lines around the first Traceback or Error in the log's last megabyte,
# and its last lines when they come later; nothing when there is no such line.
fj_error_lines() {
  tail -c 1048576 "$fj_job/log" 2>/dev/null | tr '\r' '\n' | grep -v '^[[:space:]]*$' | awk '
    !at && /Traceback|Error/ { at = NR }
    { line[NR] = $0 }
    END {
      if (!at) exit
      from = at - 2; if (from < 1) from = 1
      to = at + 20; if (to > NR) to = NR
      for (i = from; i <= to; i++) print line[i]
      if (to < NR) {
        print "[...] last lines:"
        for (i = (NR - 2 > to ? NR - 2 : to + 1); i <= NR; i++) print line[i]
      }
    }' | cut -c1-300 | head -c 3000 | fj_utf8
}

# The GPUs the job's processes use, a line each (nothing without nvidia-smi, or when it does
# not answer within 10 s).
fj_gpus() {
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  fj_pg=
  read -r fj_pg < "$fj_job/pid" 2>/dev/null || return 0
  fj_pids=$(for fj_p in /proc/[0-9]*; do
    { read -r fj_st < "$fj_p/stat"; } 2>/dev/null || continue
    # shellcheck disable=SC2086 # the fields after the command name
    set -- ${fj_st##*) }
    [ "${3:-}" = "$fj_pg" ] && echo "${fj_p#/proc/}"
  done)
  [ -n "$fj_pids" ] || return 0
  fj_to=
  command -v timeout >/dev/null 2>&1 && fj_to="timeout 10"
  fj_uuids=$($fj_to nvidia-smi --query-compute-apps=pid,gpu_uuid --format=csv,noheader 2>/dev/null |
    awk -F', *' -v pids="$fj_pids" 'BEGIN { n = split(pids, p, "\n"); for (i = 1; i <= n; i++) ours[p[i]] = 1 }
      ($1 in ours) { print $2 }' | sort -u)
  [ -n "$fj_uuids" ] || return 0
  $fj_to nvidia-smi --query-gpu=uuid,index,utilization.gpu,memory.used,memory.total,temperature.gpu \
    --format=csv,noheader,nounits 2>/dev/null |
    awk -F', *' -v uuids="$fj_uuids" 'BEGIN { n = split(uuids, u, "\n"); for (i = 1; i <= n; i++) ours[u[i]] = 1 }
      ($1 in ours) { printf "GPU %s: %s%% busy, %s/%s MiB, %s C\n", $2, $3, $4, $5, $6 }'
}

# fj_oom: fj_oomv becomes how many processes the kernel has killed for memory in this
# cgroup (cgroup v2), empty where that is not known. (Builtins only: it runs before the job
# starts, while `fenton run` waits.)
fj_oom() {
  fj_cg='' fj_oomv=''
  while IFS= read -r fj_ln; do
    case $fj_ln in 0::*) fj_cg=${fj_ln#0::} ;; esac
  done 2>/dev/null </proc/self/cgroup
  while read -r fj_ln fj_c; do
    if [ "$fj_ln" = oom_kill ]; then fj_oomv=$fj_c; fi
  done 2>/dev/null <"/sys/fs/cgroup$fj_cg/memory.events"
  return 0
}

# fj_text FILE: fj_v becomes the text FILE holds less the newline that ends it, newlines of its
# own at its end kept. (Builtins only, a byte at a time: for short files.)
fj_text() {
  fj_v='' fj_sep='' fj_ln=''
  while IFS= read -r fj_ln; do
    fj_v=$fj_v$fj_sep$fj_ln fj_sep='
'
  done 2>/dev/null <"$1"
  if [ -n "$fj_ln" ]; then fj_v=$fj_v$fj_sep$fj_ln; fi
}

# fj_watch: beside the job while it runs (started by the wrapper, with what notify.d asks
# for): progress every notify.d/every seconds, a log line that matches notify.d/on.N (grep
# -E) at most once a minute per pattern (the latest one held back is sent when the minute is
# up, or when the job ends), and one message when the log has not grown for notify.d/stall
# seconds, one more when it grows again. It writes nothing but notify.last, keeps its state in
# memory, and ends when the job has ended (after its last matches) or its wrapper is gone.
fj_watch() {
  trap '' HUP
  fj_w=$1
  fj_every=$(fj_num every) fj_stall=$(fj_num stall)
  fj_npat=0
  while [ -f "$fj_n/on.$((fj_npat + 1))" ]; do fj_npat=$((fj_npat + 1)); done
  fj_started=$(cat "$fj_job/started")
  fj_next=$((fj_started + fj_every))
  fj_off=0 fj_size=0 fj_grew=$(date +%s) fj_stalled='' fj_over='' fj_tg_id='' fj_max=10
  fj_host=$(fj_hostname)
  fj_name=$(cat "$fj_job/name")
  while :; do
    sleep 1
    if [ -f "$fj_job/exit" ]; then
      fj_over=1
    elif ! kill -0 "$fj_w" 2>/dev/null; then
      # The wrapper is gone and never recorded the end: no end message will come.
      [ -f "$fj_job/exit" ] || fj_lost
      return 0
    fi
    fj_now=$(date +%s)
    fj_sz=$(wc -c < "$fj_job/log" 2>/dev/null)
    fj_sz=$((fj_sz + 0))
    if [ "$fj_sz" -ne "$fj_size" ]; then
      if [ "$fj_sz" -lt "$fj_off" ]; then fj_off=0; fi
      fj_size=$fj_sz fj_grew=$fj_now
      if [ -n "$fj_stalled" ] && [ -z "$fj_over" ]; then
        fj_stalled=
        fj_extra=',"stalled":false'
        fj_event=stall fj_notify "$fj_name on $fj_host is printing again" \
          "$fj_name on $fj_host is printing again (job $fj_id, running for $(fj_human $((fj_now - fj_started))))" \
          running "" $((fj_now - fj_started)) "$(fj_tail 3)"
        fj_extra=
        fj_last running
      fi
    elif [ "$fj_stall" -gt 0 ] && [ -z "$fj_stalled" ] && [ -z "$fj_over" ] &&
      [ $((fj_now - fj_grew)) -ge "$fj_stall" ]; then
      fj_stalled=1
      fj_extra=',"stalled":true'
      fj_event=stall fj_notify "$fj_name on $fj_host has printed nothing for $(fj_human $((fj_now - fj_grew)))" \
        "$fj_name on $fj_host has printed nothing for $(fj_human $((fj_now - fj_grew))), but it still runs (job $fj_id, running for $(fj_human $((fj_now - fj_started))))" \
        stalled "" $((fj_now - fj_started)) "$(fj_tail 3)"
      fj_extra=
      fj_last stall
    fi
    if [ "$fj_npat" -gt 0 ]; then
      if [ "$fj_off" -lt "$fj_size" ]; then fj_scan; fi
      fj_flush
    fi
    if [ -n "$fj_over" ]; then return 0; fi
    if [ "$fj_every" -gt 0 ] && [ "$fj_now" -ge "$fj_next" ]; then
      fj_progress
      fj_next=$((fj_now + fj_every))
    fi
  done
}

# fj_running PID: whether that child is still there (a zombie, not yet waited for, is not).
fj_running() {
  kill -0 "$1" 2>/dev/null || return 1
  fj_st=
  { read -r fj_st < "/proc/$1/stat"; } 2>/dev/null || return 0
  # shellcheck disable=SC2086 # the fields after the command name
  set -- ${fj_st##*) }
  [ "$1" != Z ]
}

# fj_num NAME: the number in notify.d/NAME, 0 when there is none.
fj_num() {
  fj_v=
  read -r fj_v < "$fj_n/$1" 2>/dev/null
  case $fj_v in '' | *[!0-9]*) echo 0 ;; *) echo "$fj_v" ;; esac
}

fj_progress() {
  fj_secs=$((fj_now - fj_started))
  fj_t=$(fj_tail 5)
  fj_g=$(fj_gpus)
  fj_title="$fj_name running on $fj_host for $(fj_human "$fj_secs")"
  fj_event=progress fj_notify "$fj_title" "$(
    echo "$fj_title"
    echo "job $fj_id, updated every $(fj_human "$fj_every")"
    if [ -n "$fj_g" ]; then printf '%s\n' "$fj_g"; fi
    if [ -n "$fj_t" ]; then
      echo "last lines of the log:"
      printf '%s\n' "$fj_t"
    else
      echo "the log is empty"
    fi
  )" running "" "$fj_secs" "$fj_t"
  fj_last progress
}

# fj_scan: the whole lines the log has gained since fj_off (its last megabyte at most; all
# of it once the job has ended) are matched against each pattern; the latest match of
# each waits in fj_pend_N.
fj_scan() {
  fj_len=$((fj_size - fj_off))
  if [ "$fj_len" -gt 1048576 ]; then fj_off=$((fj_size - 1048576)) fj_len=1048576; fi
  fj_chunk=$({ tail -c +$((fj_off + 1)) "$fj_job/log" | head -c "$fj_len"; echo; } 2>/dev/null |
    LC_ALL=C awk -v all="$fj_over" '
      NR > 1 { print prev; used += length(prev) + 1 }
      { prev = $0 }
      END { if (all != "" && prev != "") { print prev; used += length(prev) } print used + 0 }')
  fj_used=$(printf '%s\n' "$fj_chunk" | tail -n 1)
  fj_off=$((fj_off + fj_used))
  fj_lines=$(printf '%s\n' "$fj_chunk" | sed '$d' | tr '\r' '\n')
  [ -n "$fj_lines" ] || return 0
  fj_i=1
  while [ "$fj_i" -le "$fj_npat" ]; do
    fj_m=$(printf '%s\n' "$fj_lines" | grep -E -f "$fj_n/on.$fj_i" 2>/dev/null | tail -n 1 | cut -c1-500 | fj_utf8)
    if [ -n "$fj_m" ]; then eval "fj_pend_$fj_i=\$fj_m"; fi
    fj_i=$((fj_i + 1))
  done
}

# fj_flush: each pattern's held-back match goes once its minute is up (or the job is over).
fj_flush() {
  fj_i=1
  while [ "$fj_i" -le "$fj_npat" ]; do
    fj_at=0
    eval "fj_m=\${fj_pend_$fj_i:-} fj_at=\${fj_sent_$fj_i:-0}"
    if [ -n "$fj_m" ] && { [ -n "$fj_over" ] || [ $((fj_now - fj_at)) -ge 60 ]; }; then
      eval "fj_pend_$fj_i= fj_sent_$fj_i=\$fj_now"
      fj_pat=$(head -n 1 "$fj_n/on.$fj_i")
      fj_extra=",\"pattern\":$(fj_jstr "$fj_pat"),\"line\":$(fj_jstr "$fj_m")"
      fj_event=match fj_notify "$fj_name on $fj_host: $(printf '%s' "$fj_m" | cut -c1-100)" \
        "$(printf '%s on %s (job %s) printed a line that matches %s:\n%s' "$fj_name" "$fj_host" "$fj_id" "$fj_pat" "$fj_m")" \
        running "" $((fj_now - fj_started)) "$fj_m"
      fj_extra=
      fj_last match
    fi
    fj_i=$((fj_i + 1))
  done
}

# fj_lost: the end message of a job whose wrapper is gone without recording its end.
fj_lost() {
  fj_now=$(date +%s)
  fj_title="$fj_name on $fj_host is lost"
  fj_event=end fj_notify "$fj_title" "$(
    echo "$fj_title: its wrapper ended after $(fj_human $((fj_now - fj_started))) without recording how the job ended, so no end message will come (job $fj_id; its processes may still run: see fenton jobs)"
    fj_t=$(fj_tail 10)
    if [ -n "$fj_t" ]; then echo "last lines of the log:"; printf '%s\n' "$fj_t"; fi
  )" lost "" $((fj_now - fj_started)) "$(fj_tail 10)"
  fj_last end
  rm -rf "$fj_n"
}

# The host name as a header may carry it: letters, digits, '.', '-'.
fj_hostname() {
  { hostname 2>/dev/null || uname -n; } | LC_ALL=C tr -cd 'A-Za-z0-9.-'
}

fj_run() {
  # One wrapper per job, and none for a start that `fenton run` gave up on: that one holds
  # the lock, and a tmux that answers late finds it taken.
  mkdir "$fj_job/run.lock" 2>/dev/null || exit 0
  fj_id=${fj_job##*/}
  echo $$ > "$fj_job/wrapper"
  # shellcheck source=/dev/null
  if [ -f "$fj_job/env" ]; then . "$fj_job/env" && rm -f "$fj_job/env"; fi
  fj_cmd=$(cat "$fj_job/cmd")
  # The job gets the umask of the session that started it (fenton's own files are private).
  fj_umask=022
  if [ -f "$fj_job/umask" ]; then read -r fj_umask < "$fj_job/umask" || :; fi
  # The directory as written, less the newline after it (it may end in newlines of its own).
  fj_text "$fj_job/dir"
  fj_dir=$fj_v
  if ! cd "$fj_dir" 2>/dev/null; then
    echo "fenton: cannot enter $fj_dir" >> "$fj_job/log"
    fj_end 1
    rm -rf "$fj_n"
    exit 1
  fi
  fj_text "$fj_job/name"
  printf 'fenton job %s (%s): its output is in %s/log\n' "$fj_id" "$fj_v" "$fj_job"
  # A window closing (HUP) or a ^C typed in it (INT) must not end the wrapper: it records
  # how the job ended. A handler, not '' (ignored), because the job runs in the foreground
  # and so starts with the default handlers: started in the background by a shell without
  # job control, it would have INT and QUIT ignored for good (no KeyboardInterrupt).
  trap : HUP INT
  # The watcher, when progress, matches or stalls were asked for: beside the job, holding
  # none of the window's terminal (so the window closes with the wrapper), in this wrapper's
  # process group, not the job's.
  fj_wpid=
  fj_oom
  fj_oom0=$fj_oomv
  if [ -f "$fj_n/every" ] || [ -f "$fj_n/stall" ] || [ -f "$fj_n/on.1" ]; then
    fj_watch $$ </dev/null >/dev/null 2>&1 &
    fj_wpid=$!
  fi
  # A foreground child of this shell is no process-group leader, so setsid makes it a
  # session and group leader without forking. That shell records its pid, then becomes the
  # job's program (the command is words quoted for sh, so `exec` comes first): no shell stays
  # between the group's leader and this wrapper to die of the SIGTERM meant for the job, or
  # to add a "Terminated" of its own to the log. That shell opens the log itself: the
  # redirections of a command are this shell's while it waits, and it reports a job killed
  # by a signal ("Killed") on its own stderr, which must not be the log.
  # shellcheck disable=SC2016 # expanded by the job's own sh
  setsid sh -c 'exec </dev/null >>"$1/log" 2>&1; umask "$3"
    echo $$ > "$1/pid.tmp" && mv -f "$1/pid.tmp" "$1/pid" && eval "exec $2"' \
    fj "$fj_job" "$fj_cmd" "$fj_umask"
  fj_exit=$?
  cd "$fj_job" || exit 1
  fj_end "$fj_exit"
  if [ -n "$fj_wpid" ]; then
    # The watcher sees the end within a second, sends the matches it held back and goes;
    # its messages come before the end's. 20 s at most (each of its posts has 10), then it
    # is ended.
    fj_t=0
    while fj_running "$fj_wpid" && [ "$fj_t" -lt 20 ]; do
      sleep 1
      fj_t=$((fj_t + 1))
    done
    kill "$fj_wpid" 2>/dev/null
  fi
  [ -d "$fj_n" ] || exit 0

  # A disk with no block left for this wrapper is one the job may have filled: say so. (Or
  # with only what notify.d/reserve gave back, once the watcher has sent with wget.)
  fj_full=false
  if ! { printf '%4096s' '' > "$fj_job/space.probe"; } 2>/dev/null; then fj_full=true; fi
  rm -f "$fj_job/space.probe"
  if [ "$fj_full" = false ] && [ -d "$fj_n" ] && [ ! -f "$fj_n/reserve" ]; then
    fj_free=$(df -Pk "$fj_job" 2>/dev/null | awk 'NR == 2 { print $4 }')
    case $fj_free in '' | *[!0-9]*) ;; *) [ "$fj_free" -lt 64 ] && fj_full=true ;; esac
  fi
  fj_name=$(cat name)
  fj_started=$(cat started)
  fj_secs=$((fj_ended - fj_started))
  fj_host=$(fj_hostname)
  # A job shorter than notify.d/min sends no end message.
  fj_min=$(fj_num min)
  if [ "$fj_secs" -lt "$fj_min" ]; then
    fj_results="not sent: it ran $(fj_human "$fj_secs"), under the $(fj_human "$fj_min") minimum"
    fj_last skipped
    rm -rf "$fj_n"
    exit 0
  fi
  fj_sig=
  if [ "$fj_exit" -gt 128 ] && [ "$fj_exit" -le 192 ]; then
    fj_sig=$(kill -l $((fj_exit - 128)) 2>/dev/null | LC_ALL=C tr -cd 'A-Z0-9')
  fi
  if [ -f killed ]; then
    fj_state=killed fj_what="was killed"
  elif [ "$fj_exit" -eq 0 ]; then
    fj_state=succeeded fj_what=succeeded
  elif [ "$fj_sig" = KILL ] && fj_oom && [ "$fj_oomv" != "$fj_oom0" ]; then
    fj_state=oom fj_what="was killed by the kernel: out of memory"
  elif [ "$fj_sig" = KILL ]; then
    fj_state=signal fj_what="was killed by SIGKILL (out of memory?)"
  elif [ -n "$fj_sig" ]; then
    fj_state=signal fj_what="was killed by signal SIG$fj_sig"
  else
    fj_state=failed fj_what="failed (exit $fj_exit)"
  fi
  fj_title="$fj_name $fj_what on $fj_host"
  if [ "$fj_full" = true ]; then fj_title="$fj_title: disk full"; fi
  fj_tail=$(fj_tail 10)
  fj_err=
  if [ "$fj_state" != succeeded ] && [ "$fj_state" != killed ]; then fj_err=$(fj_error_lines); fi
  fj_text=$(
    echo "$fj_title"
    echo "job $fj_id, exit status $fj_exit, ran $(fj_human "$fj_secs") ($fj_secs s)"
    if [ "$fj_full" = true ]; then
      echo "disk full: no space left on the box at $fj_job (the log may have lost its end)"
    fi
    if [ -n "$fj_err" ]; then
      echo "around the first error in the log:"
      printf '%s\n' "$fj_err"
    elif [ -n "$fj_tail" ]; then
      echo "last lines of the log:"
      printf '%s\n' "$fj_tail"
    else
      echo "the log is empty"
    fi
  )
  fj_notify "$fj_title" "$fj_text" "$fj_state" "$fj_exit" "$fj_secs" "$fj_tail" "$fj_full"
  fj_set notify.result "$fj_results"
  fj_last end
  rm -rf "$fj_n"
}

fj_test() {
  fj_id=test fj_name=test
  fj_host=$(fj_hostname)
  fj_event='test'
  fj_notify "fenton test from $fj_host" \
    "fenton on $fj_host can reach you: this is a test message." test "" "" ""
  printf '%s\n' "$fj_results"
}

case ${1:-} in
  run) fj_run ;;
  ended)
    [ -f "$fj_job/exit" ] || fj_end "$2"
    rm -rf "$fj_n"
    ;;
  test) fj_test ;;
  *) echo "usage: sh job.sh run|ended STATUS|test (in the job's directory)" >&2; exit 2 ;;
esac
