# Nothing lost: thousands of `fenton exec` runs whose stdout and stderr (100 KB to 10 MB) go
# to a pipe or a file, eight at a time, each compared byte for byte with what the command
# wrote; then the same runs through plain `ssh -S` on a master of its own. STRESS_RUNS sets
# the number of runs per client (default 2000).

stress_runs=${STRESS_RUNS:-2000}
stress=$BENCH_WORK/stress
mkdir -p "$stress/expected" "$stress/got"
# seq counts: about 108 KB, 349 KB, 1 MB, 2.7 MB and 10 MB on stdout, a quarter on stderr.
stress_sizes="20000 60000 150000 400000 1400000"
for n in $stress_sizes; do
  seq 1 "$n" > "$stress/expected/$n.out"
  seq 1 $((n / 4)) > "$stress/expected/$n.err"
done

# A box of its own whose login shell greets every command on both streams, as a chatty
# .bashrc does: what arrives must be that banner and every byte the command wrote, in order.
mkdir -p "$stress/home"
printf 'echo "Welcome to the box"\necho "a warning" >&2\n' > "$stress/home/.bashrc"
"$root/scripts/sandbox" start --dir "$stress/box" --no-profile --env "HOME=$stress/home" >/dev/null
cleanups+=("'$root/scripts/sandbox' stop --dir '$stress/box' >/dev/null")
stress_ssh_config=$stress/box/ssh_config
stress_config=$stress/config.toml
printf '[profile.stress]\nhost = "%s"\nssh_config = "%s"\nremote_dir = "%s"\n' \
  "$HOST" "$stress_ssh_config" "$stress/remote" > "$stress_config"
chmod 600 "$stress_config"
for n in $stress_sizes; do
  { echo "Welcome to the box"; cat "$stress/expected/$n.out"; } > "$stress/expected/$n.out.new"
  { echo "a warning"; cat "$stress/expected/$n.err"; } > "$stress/expected/$n.err.new"
  mv "$stress/expected/$n.out.new" "$stress/expected/$n.out"
  mv "$stress/expected/$n.err.new" "$stress/expected/$n.err"
done

stress_master=$BENCH_WORK/stress-master
ssh -F "$stress_ssh_config" -o ControlMaster=yes -o ControlPath="$stress_master" -o ControlPersist=60 -fN "$HOST"
cleanups+=("ssh -F '$stress_ssh_config' -o ControlPath='$stress_master' -O exit '$HOST' 2>/dev/null")
FENTON_CONFIG=$stress_config "$FENTON" connect -q
cleanups+=("FENTON_CONFIG='$stress_config' '$FENTON' disconnect -q 2>/dev/null")

# stress_one CLIENT I: one run; prints "ok", or "short BYTES-LOST" / "bad" for a wrong answer.
stress_one() {
  local client=$1 i=$2 sizes n line out err status lost
  read -ra sizes <<< "$stress_sizes"
  n=${sizes[i % ${#sizes[@]}]}
  line="seq 1 $n; seq 1 $((n / 4)) >&2"
  out=$stress/got/$client.$i.out err=$stress/got/$client.$i.err
  if [ "$client" = fenton ]; then
    set -- env FENTON_CONFIG="$stress_config" "$FENTON" exec -- sh -c "$line"
  else
    set -- ssh -F "$stress_ssh_config" -S "$stress_master" "$HOST" "$line"
  fi
  if [ $((i % 2)) = 0 ]; then
    "$@" > "$out" 2> "$err" < /dev/null
    status=$?
  else
    # To a pipe: the reader is cat, which writes what it got to the file.
    { { "$@" < /dev/null; echo $? > "$out.status"; } 2>&1 >&3 3>&- | cat > "$err"; } 3>&1 | cat > "$out"
    status=$(cat "$out.status")
  fi
  if cmp -s "$out" "$stress/expected/$n.out" && cmp -s "$err" "$stress/expected/$n.err" && [ "$status" = 0 ]; then
    echo ok
  else
    lost=$(( $(wc -c < "$stress/expected/$n.out") + $(wc -c < "$stress/expected/$n.err") - $(cat "$out" "$err" | wc -c) ))
    echo "short $lost status=$status"
  fi
  rm -f "$out" "$err" "$out.status"
}
export -f stress_one
export stress stress_sizes stress_master stress_config stress_ssh_config

for client in fenton ssh; do
  start=$(date +%s.%N)
  seq 0 $((stress_runs - 1)) | xargs -P 8 -I{} bash -c "stress_one $client {}" > "$stress/$client.results"
  took=$(python3 -c "import time,sys; print('%.0f' % (time.time() - float(sys.argv[1])))" "$start")
  total=$(wc -l < "$stress/$client.results")
  bad=$(grep -vc '^ok$' "$stress/$client.results" || true)
  lost=$(awk '$1 == "short" { s += $2 } END { print s + 0 }' "$stress/$client.results")
  printf '%-7s %5d runs in %4s s: %d wrong, %d bytes lost\n' "$client" "$total" "$took" "$bad" "$lost"
done
