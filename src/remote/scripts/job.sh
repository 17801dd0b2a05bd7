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
# secret. Prints "CHANNEL ok ..." or "CHANNEL failed ...".
fj_send() {
  fj_ch=$1 fj_body=$2
  shift 2
  if command -v curl >/dev/null 2>&1; then
    for fj_h do shift; set -- "$@" -H "$fj_h"; done
    fj_code=$(printf '%s' "$fj_body" | curl -sS -o /dev/null -w '%{http_code}' --max-time 30 \
      -K "$fj_n/$fj_ch.curl" -X POST --data-binary @- "$@" 2>/dev/null)
    fj_rc=$?
    if [ "$fj_rc" -ne 0 ]; then
      echo "$fj_ch failed: curl exit $fj_rc$(fj_curl_why "$fj_rc")"
    else
      case $fj_code in
        2??) echo "$fj_ch ok: HTTP $fj_code" ;;
        *) echo "$fj_ch failed: HTTP $fj_code" ;;
      esac
    fi
  elif command -v wget >/dev/null 2>&1; then
    for fj_h do shift; set -- "$@" --header="$fj_h"; done
    # wget posts only from a file: this one needs the space that notify.d/reserve kept.
    rm -f "$fj_n/reserve"
    if ! { printf '%s' "$fj_body" > "$fj_n/body"; } 2>/dev/null; then
      echo "$fj_ch failed: no space left on the box at $fj_n for the message (wget posts from a file; curl would not need one)"
      return
    fi
    wget -q -O /dev/null -T 30 -t 1 --config="$fj_n/$fj_ch.wgetrc" \
      --post-file="$fj_n/body" -i "$fj_n/$fj_ch.url" "$@" 2>/dev/null
    fj_rc=$?
    case $fj_rc in
      0) echo "$fj_ch ok: sent with wget" ;;
      8) echo "$fj_ch failed: the server answered with an error (wget exit 8)" ;;
      4) echo "$fj_ch failed: network failure (wget exit 4)" ;;
      *) echo "$fj_ch failed: wget exit $fj_rc" ;;
    esac
  else
    echo "$fj_ch failed: neither curl nor wget is installed on the box"
  fi
}

# fj_notify TITLE TEXT STATE EXIT DURATION_S LOG_TAIL DISK_FULL: one message on every
# configured channel.
fj_notify() {
  fj_title=$1 fj_text=$2
  fj_jtext=$(fj_jstr "$fj_text")
  if [ -f "$fj_n/telegram.curl" ]; then
    fj_send telegram "$(printf '{"chat_id":%s,"text":%s}' "$(cat "$fj_n/telegram.chat")" "$fj_jtext")" \
      'Content-Type: application/json'
  fi
  if [ -f "$fj_n/ntfy.curl" ]; then
    case $3 in
      succeeded) fj_tags=white_check_mark fj_prio=default ;;
      test) fj_tags=bell fj_prio=default ;;
      *) fj_tags=x fj_prio=high ;;
    esac
    fj_send ntfy "$fj_text" 'Content-Type: text/plain; charset=utf-8' "Title: $fj_title" \
      "Priority: $fj_prio" "Tags: fenton,$fj_tags"
  fi
  if [ -f "$fj_n/webhook.curl" ]; then
    fj_send webhook "$(printf '{"source":"fenton","host":%s,"id":%s,"name":%s,"state":"%s","exit":%s,"duration_s":%s,"duration":"%s","disk_full":%s,"title":%s,"text":%s,"log_tail":%s}' \
      "$(fj_jstr "$fj_host")" "$(fj_jstr "$fj_id")" "$(fj_jstr "$fj_name")" "$3" "${4:-null}" \
      "${5:-null}" "$(fj_human "${5:-0}")" "${7:-false}" "$(fj_jstr "$fj_title")" "$fj_jtext" \
      "$(fj_jstr "$6")")" 'Content-Type: application/json'
  fi
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
  fj_dir=$(cat "$fj_job/dir" && echo .)
  fj_dir=${fj_dir%?.}
  if ! cd "$fj_dir" 2>/dev/null; then
    echo "fenton: cannot enter $fj_dir" >> "$fj_job/log"
    fj_end 1
    rm -rf "$fj_n"
    exit 1
  fi
  printf 'fenton job %s (%s): its output is in %s/log\n' "$fj_id" "$(cat "$fj_job/name")" "$fj_job"
  # A window closing (HUP) or a ^C typed in it (INT) must not end the wrapper: it records
  # how the job ended. A handler, not '' (ignored), because the job runs in the foreground
  # and so starts with the default handlers: started in the background by a shell without
  # job control, it would have INT and QUIT ignored for good (no KeyboardInterrupt).
  trap : HUP INT
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
  [ -d "$fj_n" ] || exit 0

  # A disk with no block left for this wrapper is one the job may have filled: say so.
  fj_full=false
  if ! { printf '%4096s' '' > "$fj_job/space.probe"; } 2>/dev/null; then fj_full=true; fi
  rm -f "$fj_job/space.probe"
  fj_name=$(cat name)
  fj_started=$(cat started)
  fj_secs=$((fj_ended - fj_started))
  fj_host=$(fj_hostname)
  if [ -f killed ]; then
    fj_state=killed fj_what="was killed"
  elif [ "$fj_exit" -eq 0 ]; then
    fj_state=succeeded fj_what=succeeded
  else
    fj_state=failed fj_what="failed (exit $fj_exit)"
  fi
  fj_title="$fj_name $fj_what on $fj_host"
  if [ "$fj_full" = true ]; then fj_title="$fj_title: disk full"; fi
  fj_tail=$(tail -c 65536 log 2>/dev/null | tr '\r' '\n' | grep -v '^[[:space:]]*$' | tail -n 10 |
    tail -c 3000 | fj_utf8)
  fj_text=$(
    echo "$fj_title"
    echo "job $fj_id, exit status $fj_exit, ran $(fj_human "$fj_secs") ($fj_secs s)"
    if [ "$fj_full" = true ]; then
      echo "disk full: no space left on the box at $fj_job (the log may have lost its end)"
    fi
    if [ -n "$fj_tail" ]; then
      echo "last lines of the log:"
      printf '%s\n' "$fj_tail"
    else
      echo "the log is empty"
    fi
  )
  fj_results=$(fj_notify "$fj_title" "$fj_text" "$fj_state" "$fj_exit" "$fj_secs" "$fj_tail" "$fj_full")
  fj_set notify.result "$fj_results"
  rm -rf "$fj_n"
}

fj_test() {
  fj_id=test fj_name=test
  fj_host=$(fj_hostname)
  fj_notify "fenton test from $fj_host" \
    "fenton on $fj_host can reach you: this is a test message." test "" "" ""
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
