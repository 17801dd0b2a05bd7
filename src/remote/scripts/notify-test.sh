# `fenton notify test`: a scratch directory under remote_dir, into which fenton's appended
# lines write job.sh and notify.d (checked by fj_written); fj_go sends a test message on every
# channel there, prints one result a line, and removes the directory (and the secrets with it).
umask 077
mkdir -p "$fj_root" 2>/dev/null || fj_nospace "$fj_root"
fj_files=$(mktemp -d "$fj_root/notify-test.XXXXXX" 2>/dev/null) || fj_nospace "$fj_root"
trap 'rm -rf "$fj_files"' EXIT
# A dropped link or a Ctrl-C must not leave the secrets behind: end through the EXIT trap.
trap 'exit 1' HUP INT TERM PIPE
mkdir "$fj_files/notify.d" 2>/dev/null || fj_nospace "$fj_root"

fj_go() {
  (cd "$fj_files" && sh ./job.sh test)
}
